"""A fault-injection HTTPS proxy for tests: it sits between the tool and a kube-apiserver.

Design
------
The proxy terminates TLS with its own server certificate (issue one from the
cluster's CA with `issue_cert`, so the tool's CA verification still passes), so it
sees every HTTP request and can answer it itself, delay it, drop it, or forward it
and rewrite the answer. It is stdlib only:

* A `socketserver.TCPServer` on 127.0.0.1 accepts plain TCP connections in one
  thread ("faultproxy-serve"). Each connection gets its own thread
  ("faultproxy-conn-N") that does the TLS handshake (so a stuck client cannot block
  the accept loop) and then runs a `BaseHTTPRequestHandler` speaking HTTP/1.1 with
  keep-alive, as urllib3 reuses its connection.
* The proxy asks for a client certificate (CERT_OPTIONAL, verified against
  `client_ca`, by default the upstream CA) but does not require one. It cannot
  forward a certificate it has no key for, so a request that authenticated with a
  client certificate and carries no Authorization header is sent upstream with
  `upstream_client_cert` (the admin's) instead. A request with an Authorization
  header (Bearer token, basic auth) is forwarded with it and no client
  certificate; a request with neither is forwarded anonymously.
* Each request is forwarded on a new upstream HTTPS connection (verified against
  `upstream_ca`), with its method, path, headers and body; the answer is read
  whole and relayed with its status and headers (hop-by-hop headers dropped,
  Content-Length recomputed, Accept-Encoding not forwarded so bodies are plain).
  An upstream failure is answered with 502 and a Kubernetes Status.
* Fault rules are added from the test thread at any time (a lock guards them):
  `fail`, `reset`, `delay`, `silent`, `respond` and `mutate_json`. A rule applies
  to the next `times` matching requests (default 1) or, given `window`, to every
  matching request for that many seconds from now (given both, whichever runs out
  first); `method` and `path` (a regex searched in the request target, path plus
  query) narrow what matches. The first live matching rule, in the order added,
  wins. A `mutate_json` rule is spent only when it rewrites something: a 2xx
  answer whose body is a JSON object.
* Every request is recorded as an `Exchange(method, path, status, fault)`, before
  its answer is sent, so a test that has its response can assert on the record.
* `stop()` stops accepting, releases held (`silent`) and delayed requests, shuts
  down every downstream and upstream socket and joins every thread it started.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
import secrets
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

log = logging.getLogger("faultproxy")

StrPath = str | os.PathLike[str]
JsonFn = Callable[[dict[str, Any]], dict[str, Any]]

HANDSHAKE_TIMEOUT = 5.0
IDLE_TIMEOUT = 60.0  # a keep-alive connection idle this long is closed
JOIN_TIMEOUT = 5.0

_REQUEST_DROP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
    }
)
_WATCH = re.compile(r"[?&]watch=(1|true)(&|$)")
_RESPONSE_DROP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class Exchange(NamedTuple):
    """One request the proxy saw. `status` is None when no answer was sent
    (reset, silent); `fault` names the rule applied, or is None."""

    method: str
    path: str
    status: int | None
    fault: str | None


@dataclass(frozen=True)
class _Canned:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(eq=False)
class Rule:
    """One fault rule, as returned by the FaultProxy method that added it.

    `hits` counts the requests it was applied to; `remaining` is what is left of
    `times` (None: unlimited within the window)."""

    kind: str
    method: str | None
    path: re.Pattern[str] | None
    remaining: int | None
    expires: float | None  # time.monotonic() deadline
    canned: _Canned | None = None
    seconds: float = 0.0  # delay's latency, or silent's hold
    mutate: JsonFn | None = None
    hits: int = 0

    def live(self, now: float) -> bool:
        return (self.remaining is None or self.remaining > 0) and (
            self.expires is None or now < self.expires
        )

    def matches(self, method: str, target: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return self.path is None or self.path.search(target) is not None

    def _spend(self) -> None:
        self.hits += 1
        if self.remaining is not None:
            self.remaining -= 1


def status_body(status: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """A Kubernetes `Status` object, as the apiserver sends with an error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason if reason is not None else _REASONS.get(status, "Unknown"),
        "code": status,
    }


def _json_bytes(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document).encode()


class FaultProxy:
    """A TLS-terminating HTTP proxy to a kube-apiserver that injects faults.

    `upstream` is the apiserver's URL (https://host:port[/prefix]), `upstream_ca` its
    CA file; `cert`/`key` are the proxy's own serving certificate and key;
    `upstream_client_cert` is an optional (cert, key) pair used upstream for
    requests that authenticated to the proxy with a client certificate and carry no
    Authorization header; `client_ca` verifies downstream client certificates
    (default: `upstream_ca`).
    """

    def __init__(
        self,
        upstream: str,
        upstream_ca: StrPath,
        cert: StrPath,
        key: StrPath,
        *,
        upstream_client_cert: tuple[StrPath, StrPath] | None = None,
        client_ca: StrPath | None = None,
        upstream_timeout: float = 30.0,
        port: int = 0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"upstream must be an https:// URL, not {upstream!r}")
        self.upstream = upstream
        self._host = parts.hostname
        self._upstream_port = parts.port or 443
        self._prefix = parts.path.rstrip("/")
        self._upstream_timeout = upstream_timeout
        self._port = port

        self._downstream_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._downstream_context.load_cert_chain(os.fspath(cert), os.fspath(key))
        self._downstream_context.verify_mode = ssl.CERT_OPTIONAL
        self._downstream_context.load_verify_locations(
            cafile=os.fspath(client_ca if client_ca is not None else upstream_ca)
        )
        self._downstream_context.set_alpn_protocols(["http/1.1"])

        self._anonymous_context = ssl.create_default_context(cafile=os.fspath(upstream_ca))
        self._anonymous_context.verify_flags &= ~ssl.VERIFY_X509_STRICT  # 3.13, as the tool does
        self._cert_context: ssl.SSLContext | None = None
        if upstream_client_cert is not None:
            self._cert_context = ssl.create_default_context(cafile=os.fspath(upstream_ca))
            self._cert_context.verify_flags &= ~ssl.VERIFY_X509_STRICT
            self._cert_context.load_cert_chain(
                os.fspath(upstream_client_cert[0]), os.fspath(upstream_client_cert[1])
            )

        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._log: list[Exchange] = []
        self._release = threading.Event()  # set by clear()/stop(): silent requests let go
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._threads: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()
        self._connections = 0

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen on 127.0.0.1 (a free port unless `port` was given) and serve."""
        if self._server is not None:
            raise RuntimeError("the proxy is already running")
        self._stopping.clear()
        self._release = threading.Event()
        self._server = _Server(self, ("127.0.0.1", self._port))
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="faultproxy-serve",
            daemon=True,
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop every connection and join every thread. Idempotent."""
        server, serve_thread = self._server, self._serve_thread
        if server is None or serve_thread is None:
            return
        self._stopping.set()
        with self._lock:
            self._release.set()
        server.shutdown()  # returns once the accept loop has exited
        server.server_close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            _shutdown(sock)
        deadline = time.monotonic() + JOIN_TIMEOUT
        for thread in [*threads, serve_thread]:
            thread.join(max(0.0, deadline - time.monotonic()))
        leaked = [t.name for t in threads if t.is_alive()]
        if leaked:
            log.warning("faultproxy: threads still running after stop: %s", leaked)
        self._server = self._serve_thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """How many downstream connections were accepted so far."""
        with self._lock:
            return self._connections

    # -- fault rules -------------------------------------------------------------

    def fail(
        self,
        status: int,
        retry_after: float | None = None,
        body: bytes | Mapping[str, Any] | None = None,
        *,
        reason: str | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        times: int | None = None,
        window: float | None = None,
    ) -> Rule:
        """Answer with `status` and a Kubernetes Status (or `body`) without going upstream.

        `retry_after` (seconds) sets the Retry-After header and details.retryAfterSeconds."""
        if body is None:
            document = status_body(status, message or f"injected fault: HTTP {status}", reason)
            if retry_after is not None:
                document["details"] = {"retryAfterSeconds": max(1, round(retry_after))}
            body = document
        payload = body if isinstance(body, bytes) else _json_bytes(body)
        extra: list[tuple[str, str]] = [("Content-Type", "application/json")]
        if retry_after is not None:
            extra.append(("Retry-After", f"{retry_after:g}"))
        extra += list((headers or {}).items())
        canned = _Canned(status, tuple(extra), payload)
        return self._add("fail", method, path, times, window, canned=canned)

    def respond(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        *,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        times: int | None = None,
        window: float | None = None,
    ) -> Rule:
        """Answer with an arbitrary canned response, without going upstream."""
        extra = (("Content-Type", content_type), *(headers or {}).items())
        canned = _Canned(status, extra, body)
        return self._add("respond", method, path, times, window, canned=canned)

    def reset(
        self,
        *,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        times: int | None = None,
        window: float | None = None,
    ) -> Rule:
        """Read the request, then abort the connection with a TCP RST, answering nothing."""
        return self._add("reset", method, path, times, window)

    def delay(
        self,
        seconds: float,
        *,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        times: int | None = None,
        window: float | None = None,
    ) -> Rule:
        """Wait `seconds` before forwarding the request upstream."""
        return self._add("delay", method, path, times, window, seconds=seconds)

    def silent(
        self,
        *,
        hold: float | None = None,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        times: int | None = None,
        window: float | None = None,
    ) -> Rule:
        """Read the request and never answer it; close the connection (no response)
        after `hold` seconds if given, else when the rule's `window` ends, else on
        `clear()` or `stop()`."""
        return self._add("silent", method, path, times, window, seconds=hold or 0.0)

    def mutate_json(
        self,
        fn: JsonFn,
        *,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        times: int | None = None,
        window: float | None = None,
    ) -> Rule:
        """Forward upstream, then pass a 2xx JSON-object answer through `fn`.

        Other answers are relayed unchanged and do not spend the rule."""
        return self._add("mutate_json", method, path, times, window, mutate=fn)

    def clear(self) -> None:
        """Remove every rule, and let go of requests held by `silent`."""
        with self._lock:
            self._rules.clear()
            self._release.set()
            self._release = threading.Event()

    def _add(
        self,
        kind: str,
        method: str | None,
        path: str | re.Pattern[str] | None,
        times: int | None,
        window: float | None,
        **action: Any,
    ) -> Rule:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        if window is not None and window <= 0:
            raise ValueError("window must be positive")
        rule = Rule(
            kind=kind,
            method=method.upper() if method else None,
            path=re.compile(path) if isinstance(path, str) else path,
            remaining=times if times is not None or window is not None else 1,
            expires=time.monotonic() + window if window is not None else None,
            **action,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def _select(self, method: str, target: str) -> tuple[Rule | None, threading.Event]:
        """The rule for this request (spent, unless mutate_json), and the release event."""
        with self._lock:
            now = time.monotonic()
            self._rules = [rule for rule in self._rules if rule.live(now)]
            for rule in self._rules:
                if rule.matches(method, target):
                    if rule.kind != "mutate_json":
                        rule._spend()
                    return rule, self._release
            return None, self._release

    def _spend(self, rule: Rule) -> bool:
        """Spend a mutate_json rule, if it is still live."""
        with self._lock:
            if rule in self._rules and rule.live(time.monotonic()):
                rule._spend()
                return True
            return False

    # -- the record ------------------------------------------------------------

    @property
    def requests(self) -> list[Exchange]:
        """Every request seen so far, in order, as Exchange(method, path, status, fault)."""
        with self._lock:
            return list(self._log)

    def count(
        self,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        *,
        fault: str | None = None,
    ) -> int:
        """How many recorded requests match `method`, `path` (regex search) and `fault`."""
        pattern = re.compile(path) if isinstance(path, str) else path
        return sum(
            1
            for seen in self.requests
            if (method is None or seen.method == method.upper())
            and (pattern is None or pattern.search(seen.path))
            and (fault is None or seen.fault == fault)
        )

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, method: str, target: str, status: int | None, fault: str | None) -> None:
        with self._lock:
            self._log.append(Exchange(method, target, status, fault))

    # -- connections -----------------------------------------------------------

    def _spawn(self, sock: socket.socket, address: Any) -> None:
        """Called by the accept loop: serve this connection in a thread of its own."""
        with contextlib.suppress(OSError):  # headers and body go out as separate writes
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._connections += 1
            self._sockets.add(sock)
            thread = threading.Thread(
                target=self._serve_connection,
                args=(sock, address),
                name=f"faultproxy-conn-{self._connections}",
                daemon=True,
            )
            self._threads.add(thread)
        thread.start()

    def _serve_connection(self, raw: socket.socket, address: Any) -> None:
        sock = raw
        try:
            with self._lock:
                self._sockets.discard(raw)
                if self._stopping.is_set():
                    return
                sock = self._downstream_context.wrap_socket(
                    raw, server_side=True, do_handshake_on_connect=False
                )  # raw is detached from its descriptor now
                self._sockets.add(sock)
            assert isinstance(sock, ssl.SSLSocket)
            sock.settimeout(HANDSHAKE_TIMEOUT)
            sock.do_handshake()
            server = self._server
            if server is not None:
                _Handler(sock, address, server)
        except Exception as e:
            log.debug("faultproxy: connection from %s ended: %r", address, e)
        finally:
            with self._lock:
                self._sockets.discard(sock)
                self._threads.discard(threading.current_thread())
            with contextlib.suppress(OSError):
                sock.close()

    def _upstream_context(self, headers: Message, client_cert: bool) -> ssl.SSLContext:
        if client_cert and self._cert_context is not None and "Authorization" not in headers:
            return self._cert_context
        return self._anonymous_context

    def _ask_upstream(
        self, method: str, target: str, headers: Message, body: bytes | None, client_cert: bool
    ) -> tuple[http.client.HTTPSConnection, http.client.HTTPResponse]:
        """Send the request upstream: the connection (give it back with _give_back) and
        the answer, its body not read yet."""
        connection = http.client.HTTPSConnection(
            self._host,
            self._upstream_port,
            timeout=self._upstream_timeout,
            context=self._upstream_context(headers, client_cert),
        )
        try:
            connection.connect()
            with self._lock:
                if self._stopping.is_set():
                    raise ConnectionAbortedError("the proxy is stopping")
                assert connection.sock is not None
                self._sockets.add(connection.sock)
            connection.putrequest(method, self._prefix + target)
            for name, value in headers.items():
                if name.lower() not in _REQUEST_DROP:
                    connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            return connection, connection.getresponse()
        except BaseException:
            self._give_back(connection)
            raise

    def _give_back(self, connection: http.client.HTTPSConnection) -> None:
        with self._lock:
            if connection.sock is not None:
                self._sockets.discard(connection.sock)
        connection.close()

    def _forward(
        self, method: str, target: str, headers: Message, body: bytes | None, client_cert: bool
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send the request upstream; (status, reason, headers, body) of the answer."""
        try:
            connection, response = self._ask_upstream(method, target, headers, body, client_cert)
            try:
                data = response.read()
            finally:
                self._give_back(connection)
            return response.status, response.reason, response.getheaders(), data
        except (OSError, http.client.HTTPException) as e:
            log.debug("faultproxy: %s %s upstream failed: %r", method, target, e)
            document = status_body(502, f"faultproxy: upstream request failed: {e!r}")
            return 502, "Bad Gateway", [("Content-Type", "application/json")], _json_bytes(document)

    def _relay_watch(
        self,
        target: str,
        headers: Message,
        client_cert: bool,
        downstream: _Handler,
        fault: str | None,
    ) -> None:
        """Relay a watch upstream -> downstream as its bytes come (chunked), recorded as
        soon as its head is back (a watch may stream long after the client has what it
        wanted); a 502, as _forward sends, if the upstream request failed."""
        try:
            connection, response = self._ask_upstream("GET", target, headers, None, client_cert)
        except (OSError, http.client.HTTPException) as e:
            log.debug("faultproxy: watch %s upstream failed: %r", target, e)
            self._record("GET", target, 502, fault)
            document = status_body(502, f"faultproxy: upstream request failed: {e!r}")
            downstream._send(502, "Bad Gateway", [], _json_bytes(document))
            return
        self._record("GET", target, response.status, fault)
        try:
            downstream.send_response_only(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in _RESPONSE_DROP:
                    downstream.send_header(name, value)
            downstream.send_header("Transfer-Encoding", "chunked")
            downstream.end_headers()
            while piece := response.read1(65536):
                downstream.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            downstream.wfile.write(b"0\r\n\r\n")
        except (OSError, http.client.HTTPException) as e:  # either side went away
            log.debug("faultproxy: watch %s ended: %r", target, e)
        finally:
            self._give_back(connection)


class _Server(socketserver.TCPServer):
    """Accepts TCP connections; FaultProxy._spawn does TLS and HTTP in a thread."""

    request_queue_size = 64

    def __init__(self, proxy: FaultProxy, address: tuple[str, int]) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.proxy._spawn(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("faultproxy: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """One downstream connection: HTTP/1.1 requests, one after another."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("faultproxy: %s " + format, self.address_string(), *args)

    def do_any(self) -> None:
        try:
            self._serve()
        except (OSError, ValueError) as e:  # the client went away, or sent nonsense
            log.debug("faultproxy: %s %s: %r", self.command, self.path, e)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_any

    def _serve(self) -> None:
        proxy = self.server.proxy
        method, target = self.command, self.path
        body = self._read_body()
        rule, release = proxy._select(method, target)
        kind = rule.kind if rule is not None else None

        if rule is not None and rule.canned is not None:  # fail, respond
            canned = rule.canned
            proxy._record(method, target, canned.status, rule.kind)
            self._send(canned.status, None, canned.headers, canned.body)
            return
        if kind == "reset":
            proxy._record(method, target, None, "reset")
            self._reset()
            return
        if rule is not None and kind == "silent":
            proxy._record(method, target, None, "silent")
            self.close_connection = True
            if rule.seconds > 0:
                release.wait(rule.seconds)
            elif rule.expires is not None:
                release.wait(max(0.0, rule.expires - time.monotonic()))
            else:
                release.wait()
            return
        if rule is not None and kind == "delay" and proxy._stopping.wait(rule.seconds):
            proxy._record(method, target, None, "delay")
            self.close_connection = True
            return

        if method == "GET" and _WATCH.search(target) and (rule is None or rule.mutate is None):
            # A watch is relayed as it streams (a buffering proxy would hold every event
            # until the watch ends); the faults above apply to it as to any request.
            fault = "delay" if kind == "delay" else None
            proxy._relay_watch(target, self.headers, self._client_cert(), self, fault)
            self.close_connection = True
            return
        forwarded = body if body or method in ("POST", "PUT", "PATCH") else None
        status, reason, headers, data = proxy._forward(
            method, target, self.headers, forwarded, self._client_cert()
        )
        fault = "delay" if kind == "delay" else None
        if rule is not None and rule.mutate is not None and 200 <= status < 300:
            document = _json_object(data)
            if document is not None and proxy._spend(rule):
                fault = "mutate_json"
                try:
                    data = _json_bytes(rule.mutate(document))
                except Exception as e:  # a bug in the test: make it loud, not a hang
                    log.exception("faultproxy: the mutate_json function failed")
                    status, reason = 500, "Internal Server Error"
                    headers = [("Content-Type", "application/json")]
                    message = f"faultproxy: the mutate_json function raised {e!r}"
                    data = _json_bytes(status_body(500, message))
        proxy._record(method, target, status, fault)
        self._send(status, reason, headers, data)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return _read_chunked(self.rfile)
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0:
            return b""
        data = self.rfile.read(length)
        if len(data) != length:
            raise ConnectionError("request body cut short")
        return data

    def _client_cert(self) -> bool:
        return isinstance(self.connection, ssl.SSLSocket) and bool(self.connection.getpeercert())

    def _send(
        self, status: int, reason: str | None, headers: Iterable[tuple[str, str]], body: bytes
    ) -> None:
        self.send_response_only(status, reason)
        head = self.command == "HEAD"
        for name, value in headers:
            if name.lower() not in _RESPONSE_DROP or (head and name.lower() == "content-length"):
                self.send_header(name, value)
        if not head and status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _reset(self) -> None:
        """Abort the connection: SO_LINGER 0 makes close() send RST, not FIN."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The descriptor closes when the last user does: the reader holds one.
        with contextlib.suppress(OSError):
            self.rfile.close()
        with contextlib.suppress(OSError):
            self.connection.close()


def _read_chunked(stream: Any) -> bytes:
    chunks: list[bytes] = []
    while True:
        line = stream.readline(65537)
        if not line.endswith(b"\n"):
            raise ConnectionError("chunked request body cut short")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while stream.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        chunk = stream.read(size + 2)
        if len(chunk) != size + 2:
            raise ConnectionError("chunked request body cut short")
        chunks.append(chunk[:size])


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


def _shutdown(sock: socket.socket) -> None:
    """Wake whoever blocks on this socket, TLS or not, without touching its TLS state."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def issue_cert(
    ca_crt: Path, ca_key: Path, out_dir: Path, *, name: str = "faultproxy", client: bool = False
) -> tuple[Path, Path]:
    """Issue a certificate from the CA with the openssl CLI: (cert path, key path).

    By default a serving certificate (serverAuth, SANs IP:127.0.0.1 and
    DNS:localhost, CN=name); with `client=True` a client certificate (clientAuth)
    with CN=name. The key is an EC P-256 key, mode 0600. Nothing is written next to
    the CA (the serial is random).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    crt, key = out_dir / f"{name}.crt", out_dir / f"{name}.key"
    csr, ext = out_dir / f"{name}.csr", out_dir / f"{name}.ext"
    usage = (
        "extendedKeyUsage=clientAuth\n"
        if client
        else "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        f"{usage}subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    try:
        _openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}",
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
            "-set_serial", str(secrets.randbits(63) | 1), "-days", "7",
            "-out", str(crt), "-extfile", str(ext),
        )  # fmt: skip
    finally:
        csr.unlink(missing_ok=True)
        ext.unlink(missing_ok=True)
    key.chmod(0o600)
    return crt, key


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")
