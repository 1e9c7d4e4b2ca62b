"""Proxies that record what clients ask them for: HTTP CONNECT (plain or over TLS,
i.e. an `https://` proxy) and SOCKS5. `host_map` resolves names that only the
proxy knows (e.g. `kubernetes.default.svc` -> 127.0.0.1): a client that reaches
the API server through such a name has provably gone through the proxy."""

from __future__ import annotations

import base64
import socket
import ssl
import struct
from collections.abc import Mapping

from tests.conformance.relay import RelayServer, pipe


def _split_host_port(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


class _Proxy(RelayServer):
    def __init__(self, host_map: Mapping[str, str] | None = None) -> None:
        super().__init__("127.0.0.1")
        self.host_map = dict(host_map or {})

    def _connect(self, host: str, port: int) -> socket.socket:
        self.connections.append(f"{host}:{port}")
        return socket.create_connection((self.host_map.get(host, host), port), timeout=5)


class ConnectProxy(_Proxy):
    """An HTTP proxy that only does CONNECT; with `tls`, clients speak TLS to it first;
    with `credentials` ("user:password"), a CONNECT without them gets 407."""

    def __init__(
        self,
        host_map: Mapping[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        credentials: str | None = None,
    ) -> None:
        super().__init__(host_map)
        self.tls = tls
        self.authorization = (
            base64.b64encode(credentials.encode()).decode() if credentials else None
        )

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"

    def handle(self, client: socket.socket) -> None:
        if self.tls:
            client = self.tls.wrap_socket(client, server_side=True)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > 65536:
                return
            head += chunk
        request, *headers = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        method, target, _ = request.split(" ", 2)
        given = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in headers)}
        scheme, _, token = given.get("proxy-authorization", "").partition(" ")
        if self.authorization and (scheme.lower(), token.strip()) != ("basic", self.authorization):
            self.connections.append(f"407 {target}")
            client.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="conform"\r\nContent-Length: 0\r\n\r\n'
            )
            return
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            upstream = self._connect(*_split_host_port(target))
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            pipe(client, upstream)


class Socks5Proxy(_Proxy):
    """SOCKS5, CONNECT only (RFC 1928); with `credentials` ("user:password") it wants
    username/password authentication (RFC 1929), else none."""

    def __init__(
        self, host_map: Mapping[str, str] | None = None, credentials: str | None = None
    ) -> None:
        super().__init__(host_map)
        self.credentials = credentials

    @property
    def url(self) -> str:
        return f"socks5://{self.address}"

    def handle(self, client: socket.socket) -> None:
        def read(n: int) -> bytes:
            data = b""
            while len(data) < n:
                chunk = client.recv(n - len(data))
                if not chunk:
                    raise ConnectionError("client went away")
                data += chunk
            return data

        version, methods = read(2)
        offered = read(methods)
        if version != 5:
            return
        if not self.credentials:
            client.sendall(b"\x05\x00")
        elif b"\x02" not in offered:
            self.connections.append("no credentials offered")
            client.sendall(b"\x05\xff")
            return
        else:
            client.sendall(b"\x05\x02")
            read(1)  # sub-negotiation version
            user = read(read(1)[0]).decode()
            password = read(read(1)[0]).decode()
            if f"{user}:{password}" != self.credentials:
                self.connections.append(f"bad credentials {user}")
                client.sendall(b"\x01\x01")
                return
            client.sendall(b"\x01\x00")
        _, command, _, kind = read(4)
        if kind == 1:
            host = socket.inet_ntoa(read(4))
        elif kind == 3:
            host = read(read(1)[0]).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET6, read(16))
        (port,) = struct.unpack("!H", read(2))
        if command != 1:
            client.sendall(b"\x05\x07\x00\x01" + bytes(6))
            return
        try:
            upstream = self._connect(host, port)
        except OSError:
            client.sendall(b"\x05\x04\x00\x01" + bytes(6))  # host unreachable
            return
        with upstream:
            client.sendall(b"\x05\x00\x00\x01" + bytes(6))
            pipe(client, upstream)
