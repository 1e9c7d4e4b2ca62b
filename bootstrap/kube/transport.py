"""Connections to the API server the way client-go's `transport` package makes them.

- Server URLs are checked up front (`parse_server`): a bad port or host is a
  configuration error, not a network failure.
- TLS like Go's crypto/tls: at least TLS 1.2; the CA may be a bundle with text
  around the PEM blocks (only CERTIFICATE blocks count, as in AppendCertsFromPEM);
  every certificate in it is a trust anchor (VERIFY_X509_PARTIAL_CHAIN) and
  OpenSSL's extra X509_STRICT checks (on by default since Python 3.13) are off, so
  a CA without keyUsage, which Go accepts, is accepted.
- Server URLs live in endpoint.py. Proxies (chosen and tunnelled through by proxies.py): `connect` opens the
  connection through one; an https server behind an https proxy is TLS inside TLS.
- A `Watchdog` shuts the socket down when a request's time is up, so a server
  that trickles bytes cannot stretch one read after another past the deadline.
"""

from __future__ import annotations

import os
import re
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import TYPE_CHECKING

from bootstrap.kube.endpoint import Endpoint, parse_server

if TYPE_CHECKING:
    from bootstrap.kube.proxies import Proxy

__all__ = ["Endpoint", "parse_server"]  # kept here for the callers that knew them here

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.DOTALL)


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
    directory = _private_directory()
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


def _private_directory() -> str:
    """A new directory only we can enter (mode 0700), on tmpfs when there is one: what
    tempfile.mkdtemp does (mkdir fails on a name that exists, so nothing planted is
    reused), without the import of tempfile, shutil and random it costs every run."""
    shm = "/dev/shm"
    bases = [shm] if os.path.isdir(shm) and os.access(shm, os.W_OK) else []
    bases.append(os.environ.get("TMPDIR") or "/tmp")
    for _ in range(100):
        for base in bases:
            directory = os.path.join(base, f"bootstrap-token-{os.urandom(6).hex()}")
            try:
                os.mkdir(directory, 0o700)
                return directory
            except FileExistsError:
                continue
            except OSError:
                if base == bases[-1]:
                    raise
    raise FileExistsError("no free name for a private directory")


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
    """Wake whoever blocks on `sock`: reads end at once. socket.socket's own shutdown,
    not SSLSocket's, which drops the TLS layer and would let later reads return the
    raw (encrypted) bytes still queued."""
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def open_tcp(host: str, port: int, timeout: float) -> socket.socket:
    try:
        sock = socket.create_connection((host, port), timeout)
    except TimeoutError as e:
        raise ConnectTimeout(str(e)) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


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


def connect(
    endpoint: Endpoint,
    proxy: Proxy | None,
    context: ssl.SSLContext | None,
    tls_server_name: str,
    connect_timeout: float,
    timeout: float,
    dog: Watchdog,
) -> tuple[socket.socket, socket.socket]:
    """(raw TCP socket, socket to speak HTTP on): through the proxy if any, TLS for
    https servers (and https proxies), every socket watched by `dog`."""
    host, port = (proxy.host, proxy.port) if proxy else (endpoint.host, endpoint.port)
    raw = open_tcp(host, port, connect_timeout)
    dog.watch(raw)
    raw.settimeout(timeout)
    sock: socket.socket = raw
    try:
        if proxy is not None and proxy.scheme == "https" and context is not None:
            sock = context.wrap_socket(raw, server_hostname=proxy.host)
        if proxy is not None:  # imported only when a proxy is configured
            from bootstrap.kube.proxies import tunnel_http, tunnel_socks5

            if proxy.scheme == "socks5":
                tunnel_socks5(raw, proxy, endpoint)
            elif endpoint.scheme == "https":
                tunnel_http(sock, proxy, endpoint)
        if endpoint.scheme == "https" and context is not None:
            if isinstance(sock, ssl.SSLSocket):
                sock = relay_tls(sock)
                dog.watch(sock)
                sock.settimeout(timeout)
            sock = context.wrap_socket(sock, server_hostname=tls_server_name)
    except BaseException:
        raw.close()
        raise
    return raw, sock
