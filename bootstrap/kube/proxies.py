"""Proxies the way Go's net/http uses them: which one (the kubeconfig's proxy-url,
else `httpproxy.FromEnvironment` with its NO_PROXY rules) and how to tunnel
through it (HTTP CONNECT for http and https proxies, SOCKS5 with the host name
sent to the proxy). A small hand-written SOCKS5 client (RFC 1928/1929, CONNECT
only) keeps the tool free of a dependency for some forty lines.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from bootstrap.sanitize import visible

if TYPE_CHECKING:
    from bootstrap.kube.endpoint import Endpoint

PROXY_SCHEMES = ("http", "https", "socks5")


class ProxyFailure(ConnectionError):
    """The proxy could not be used or refused the tunnel; the text says why."""


@dataclass(frozen=True)
class Proxy:
    scheme: str  # http, https or socks5
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # the password stays out of tracebacks
        return f"Proxy({self.scheme}://{self.host}:{self.port})"

    def basic_auth(self) -> str:
        """The Proxy-Authorization value for the URL's user and password."""
        pair = f"{self.username or ''}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    @property
    def display(self) -> str:
        """For messages: no credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_proxy_url(url: str) -> Proxy:
    """A kubeconfig proxy-url (client-go: http, https or socks5); ValueError says why not."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise ValueError(f"unsupported scheme {scheme!r}, must be http, https, or socks5")
    return _proxy_from_parts(url, scheme)


def _proxy_from_parts(url: str, scheme: str) -> Proxy:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("it names no host")
    default = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}[scheme]
    return Proxy(
        scheme="socks5" if scheme == "socks5h" else scheme,
        host=parts.hostname,
        port=port or default,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def choose_proxy(
    endpoint: Endpoint, proxy_url: str | None, environ: Mapping[str, str]
) -> Proxy | None:
    """The proxy for this server: proxy-url if given, else Go's ProxyFromEnvironment.

    Environment: HTTPS_PROXY (or https_proxy) for https servers, HTTP_PROXY (or
    http_proxy) for http ones, the upper-case name first; NO_PROXY / no_proxy
    exempts hosts (see `bypasses_proxy`); localhost and loopback IPs never use an
    environment proxy. A value without a scheme means http://.
    """
    if proxy_url:
        return parse_proxy_url(proxy_url)
    names = (
        ("HTTPS_PROXY", "https_proxy")
        if endpoint.scheme == "https"
        else ("HTTP_PROXY", "http_proxy")
    )
    if endpoint.scheme == "http" and environ.get("REQUEST_METHOD"):
        return None  # Go ignores HTTP_PROXY under CGI (httpoxy)
    value = next((environ[n] for n in names if environ.get(n)), "")
    if not value:
        return None
    no_proxy = environ.get("NO_PROXY") or environ.get("no_proxy") or ""
    if bypasses_proxy(endpoint.host, endpoint.port, no_proxy):
        return None
    scheme = urlsplit(value).scheme.lower() if "://" in value else ""
    if not scheme:
        value, scheme = "http://" + value, "http"
    if scheme not in (*PROXY_SCHEMES, "socks5h"):
        raise ValueError(f"unsupported proxy scheme {scheme!r} in the environment")
    return _proxy_from_parts(value, scheme)


def bypasses_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Go's httpproxy useProxy, inverted: True when the server is reached directly."""
    host = host.lower().strip()
    if host == "localhost":
        return True
    ip = _ip(host)
    if ip is not None and ip.is_loopback:
        return True
    for entry in no_proxy.split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                network = None
            if network is not None:
                if ip is not None and ip in network:
                    return True
                continue
        entry_host, entry_port = _split_host_port(entry)
        if entry_host is None:
            continue
        entry_ip = _ip(entry_host)
        if entry_ip is not None:
            if ip is not None and ip == entry_ip and entry_port in ("", str(port)):
                return True
            continue
        if entry_host.startswith("*."):
            entry_host = entry_host[1:]
        match_host = not entry_host.startswith(".")
        suffix = entry_host if not match_host else "." + entry_host
        if (host.endswith(suffix) or (match_host and host == suffix[1:])) and entry_port in (
            "",
            str(port),
        ):
            return True
    return False


def _split_host_port(entry: str) -> tuple[str | None, str]:
    """Go's net.SplitHostPort where it succeeds, else the entry as a host without port."""
    if entry.startswith("["):
        end = entry.find("]")
        if end > 0 and entry[end + 1 : end + 2] == ":":
            return entry[1:end] or None, entry[end + 2 :]
        return entry, ""
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return (host or None), port
    return entry, ""


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


# --- tunnels ---------------------------------------------------------------------------


def tunnel_http(sock: socket.socket, proxy: Proxy, target: Endpoint) -> None:
    """HTTP CONNECT through an http(s) proxy, as Go's transport does."""
    lines = [f"CONNECT {target.hostport} HTTP/1.1", f"Host: {target.hostport}"]
    if proxy.username is not None:
        lines.append("Proxy-Authorization: " + proxy.basic_auth())
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ProxyFailure(f"the proxy {proxy.display} closed the connection during CONNECT")
        head += chunk
        if len(head) > 65536:
            raise ProxyFailure(f"the proxy {proxy.display} sent an oversized CONNECT response")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[1].isdigit():
        raise ProxyFailure(f"the proxy {proxy.display} sent a malformed CONNECT response")
    if not 200 <= int(fields[1]) < 300:
        raise ProxyFailure(
            f"the proxy {proxy.display} refused to tunnel to {target.hostport}: "
            f"{visible(' '.join(fields[1:])[:200])}"
        )


_SOCKS_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


def tunnel_socks5(sock: socket.socket, proxy: Proxy, target: Endpoint) -> None:
    """SOCKS5 CONNECT (RFC 1928/1929). Like Go's dialer, a host name is sent to the
    proxy as is, so the proxy resolves it (what curl calls socks5h)."""
    where = f"the SOCKS5 proxy {proxy.display}"
    methods = b"\x00\x02" if proxy.username is not None else b"\x00"
    sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
    reply = _recv_exactly(sock, 2, where)
    if reply[0] != 5:
        raise ProxyFailure(f"{where} did not answer as a SOCKS5 proxy")
    if reply[1] == 2:
        user = (proxy.username or "").encode()
        password = (proxy.password or "").encode()
        if len(user) > 255 or len(password) > 255:
            raise ProxyFailure(f"{where}: user name or password longer than 255 bytes")
        sock.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
        if _recv_exactly(sock, 2, where)[1] != 0:
            raise ProxyFailure(f"{where} rejected the user name and password")
    elif reply[1] != 0:
        raise ProxyFailure(f"{where} accepts none of our authentication methods")
    ip = _ip(target.host)
    if isinstance(ip, ipaddress.IPv4Address):
        address = b"\x01" + ip.packed
    elif isinstance(ip, ipaddress.IPv6Address):
        address = b"\x04" + ip.packed
    else:
        name = target.host.encode("idna")
        if len(name) > 255:
            raise ProxyFailure(f"{where}: host name too long")
        address = b"\x03" + bytes([len(name)]) + name
    sock.sendall(b"\x05\x01\x00" + address + target.port.to_bytes(2, "big"))
    head = _recv_exactly(sock, 4, where)
    if head[0] != 5:
        raise ProxyFailure(f"{where} sent a malformed reply")
    if head[1] != 0:
        reason = _SOCKS_REPLIES.get(head[1], f"error {head[1]}")
        raise ProxyFailure(f"{where} could not connect to {target.hostport}: {reason}")
    size = {1: 4, 4: 16}.get(head[3])
    if size is None:
        size = _recv_exactly(sock, 1, where)[0]
    _recv_exactly(sock, size + 2, where)


def _recv_exactly(sock: socket.socket, size: int, where: str) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ProxyFailure(f"{where} closed the connection")
        data += chunk
    return data
