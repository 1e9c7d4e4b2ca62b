"""Connections to the API server the way client-go's `transport` package makes them.

- Server URLs are checked up front (`parse_server`): a bad port or host is a
  configuration error, not a network failure.
- TLS like Go's crypto/tls: at least TLS 1.2; the CA may be a bundle with text
  around the PEM blocks (only CERTIFICATE blocks count, as in AppendCertsFromPEM);
  every certificate in it is a trust anchor (VERIFY_X509_PARTIAL_CHAIN) and
  OpenSSL's extra X509_STRICT checks (on by default since Python 3.13) are off, so
  a CA without keyUsage, which Go accepts, is accepted.
- Proxies: the cluster's `proxy-url` (http, https, socks5) wins; otherwise Go's
  `httpproxy.FromEnvironment` rules (`choose_proxy`, `bypasses_proxy`).
- A `Watchdog` shuts the socket down when a request's time is up, so a server
  that trickles bytes cannot stretch one read after another past the deadline.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import select
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import unquote, urlsplit

PROXY_SCHEMES = ("http", "https", "socks5")
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.DOTALL)


class ProxyFailure(ConnectionError):
    """The proxy could not be used or refused the tunnel; the text says why."""


@dataclass(frozen=True)
class Endpoint:
    """A parsed server URL."""

    scheme: str  # https or http
    host: str  # without brackets
    port: int
    prefix: str  # path before /api, without trailing slash

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_server(url: str) -> Endpoint:
    """Check a server URL as Go's url.Parse and dialer would; ValueError says what is
    wrong. As in Go, an empty port means the default one and a query is ignored."""
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("it contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        if "IPv6" in str(e):
            raise ValueError(
                "unclosed '[' in the host (an IPv6 address is written [addr])"
            ) from None
        raise ValueError("the port is not a number from 1 to 65535") from None
    if parts.scheme not in ("https", "http"):
        raise ValueError("it must start with https:// or http://")
    if not parts.hostname:
        raise ValueError("it names no host")
    if port == 0:
        raise ValueError("the port is not a number from 1 to 65535")
    return Endpoint(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (443 if parts.scheme == "https" else 80),
        prefix=parts.path.rstrip("/"),
    )


@dataclass(frozen=True)
class Proxy:
    scheme: str  # http, https or socks5
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # the password stays out of tracebacks
        return f"Proxy({self.scheme}://{self.host}:{self.port})"

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


# --- TLS ------------------------------------------------------------------------------


def pem_certificates(data: bytes) -> list[bytes]:
    """The CERTIFICATE blocks of a PEM bundle; text around them is ignored, as Go does."""
    return _PEM_CERT.findall(data)


def tls_context(
    ca_pem: bytes | None,
    ca_source: str,
    insecure: bool,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    cert_files: tuple[str, str] | None = None,
) -> ssl.SSLContext:
    """ValueError names what cannot be loaded (the caller makes it a ConfigError)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        if ca_pem is None:
            context.load_default_certs()
        else:
            loaded = 0
            for block in pem_certificates(ca_pem):
                try:
                    context.load_verify_locations(cadata=block.decode("ascii"))
                    loaded += 1
                except (ssl.SSLError, UnicodeDecodeError, ValueError):
                    continue  # Go skips a block it cannot parse
            if not loaded:
                raise ValueError(f"{ca_source} holds no PEM certificate")
    if cert_files is not None:
        try:
            context.load_cert_chain(*cert_files)
        except (OSError, ssl.SSLError) as e:
            reason = getattr(e, "reason", None) or str(e)
            raise ValueError(f"the client certificate and key cannot be loaded: {reason}") from None
    elif cert_pem and key_pem:
        try:
            with _pem_files(cert_pem, key_pem) as (cert, key):
                context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as e:
            reason = getattr(e, "reason", None) or str(e)
            raise ValueError(f"the client certificate and key cannot be loaded: {reason}") from None
    return context


@contextmanager
def _pem_files(cert: bytes, key: bytes) -> Iterator[tuple[str, str]]:
    """ssl can only load a client key from a file: keep it in a private directory,
    on tmpfs when there is one, for the instant it takes to load."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    directory = tempfile.mkdtemp(prefix="bootstrap-token-", dir=base)
    try:
        paths = []
        for name, data in (("tls.crt", cert), ("tls.key", key)):
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            paths.append(path)
        yield paths[0], paths[1]
    finally:
        for name in ("tls.crt", "tls.key"):
            with suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


# --- sockets ----------------------------------------------------------------------------


class ConnectTimeout(TimeoutError):
    """The TCP connection could not be made in time (as opposed to a slow answer)."""


class Watchdog:
    """Shuts the watched socket down when `seconds` have passed: every blocked or
    later read then ends at once, however the server paces its bytes."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired
        if fired:
            _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def open_tcp(host: str, port: int, timeout: float) -> socket.socket:
    try:
        sock = socket.create_connection((host, port), timeout)
    except TimeoutError as e:
        raise ConnectTimeout(str(e)) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def tunnel_http(sock: socket.socket, proxy: Proxy, target: Endpoint) -> None:
    """HTTP CONNECT through an http(s) proxy, as Go's transport does."""
    lines = [f"CONNECT {target.hostport} HTTP/1.1", f"Host: {target.hostport}"]
    if proxy.username is not None:
        pair = f"{proxy.username}:{proxy.password or ''}".encode()
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(pair).decode())
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
            f"{' '.join(fields[1:])}"
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


def relay_tls(outer: ssl.SSLSocket) -> socket.socket:
    """TLS inside TLS (an https server through an https proxy): Python cannot wrap an
    SSLSocket again, so a socket pair carries the inner stream, pumped by one thread
    (an SSL object must not be read and written from two threads at once)."""
    mine, theirs = socket.socketpair()

    def pump() -> None:
        try:
            while True:
                if not outer.pending():
                    readable, _, _ = select.select([theirs, outer], [], [])
                else:
                    readable = [outer]
                if outer in readable:
                    data = outer.recv(65536)
                    if not data:
                        break
                    theirs.sendall(data)
                if theirs in readable:
                    data = theirs.recv(65536)
                    if not data:
                        break
                    outer.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            _shutdown(theirs)
            _shutdown(outer)
            theirs.close()

    threading.Thread(target=pump, daemon=True).start()
    return mine
