"""Byte relays for the conformance suite: a threaded TCP server base, the pipe
between two sockets, and a TCP forwarder bound on any loopback address
(127.0.0.x), whose IP is not in the API server's certificate."""

from __future__ import annotations

import contextlib
import selectors
import socket
import socketserver
import threading
from typing import Any


def pipe(a: socket.socket, b: socket.socket, timeout: float = 30.0) -> None:
    """Copy bytes both ways until one side closes (or nothing moves for `timeout`)."""
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while True:
            events = selector.select(timeout)
            if not events:
                return
            for key, _ in events:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                # A TLS socket may hold decrypted bytes that select() cannot see.
                pending = getattr(source, "pending", lambda: 0)()
                if pending:
                    data += source.recv(pending)
                try:
                    key.data.sendall(data)
                except OSError:
                    return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class RelayServer:
    """A threaded TCP server on (host, free port); subclasses implement `handle`.
    `connections` lists what each client asked for (target "host:port")."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError):
                    owner.handle(self.request)

        self.connections: list[str] = []
        self._server = _Server((host, 0), Handler)
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def handle(self, client: socket.socket) -> None:
        raise NotImplementedError


class Forwarder(RelayServer):
    """Accepts on host:free port and forwards every connection to `target`."""

    def __init__(self, target: tuple[str, int], host: str = "127.0.0.2") -> None:
        super().__init__(host)
        self.target = target

    def handle(self, client: socket.socket) -> None:
        self.connections.append(f"{self.target[0]}:{self.target[1]}")
        with socket.create_connection(self.target, timeout=5) as upstream:
            pipe(client, upstream)
