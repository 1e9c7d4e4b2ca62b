"""The only module that sends requests to the API server: requests and watches.

One kept-alive connection per credential serves every request of a run; how it
is opened (TLS, proxies, the deadline watchdog) is transport.py's business, the
bytes on it http1.py's, which credentials and headers it carries credentials.py's,
what an answer or failure means failures.py's and the retry loop retry.py's.

Every request is bounded by a per-request timeout and by the run's deadline, for
the whole exchange (a server trickling bytes is cut off, see transport.Watchdog).
Transient failures (connection errors, 429, 5xx) are retried with backoff,
honouring Retry-After, until the deadline, except for a server that has not
answered once in this run: it gets NEVER_REACHED_GRACE seconds, then the run
fails with the reason. 4xx other than 429 are never retried. Error messages
carry the API's Status message, never a request or token.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bootstrap.errors import (
    ApiError,
    ConfigError,
    TLSVerificationError,
    TransientError,
    UnreachableError,
)
from bootstrap.kube import failures, http1, transport
from bootstrap.kube.credentials import Credentials, Deadline

if TYPE_CHECKING:
    from collections.abc import Callable

    from bootstrap.kube.proxies import Proxy

__all__ = ["Api", "Credentials", "Deadline", "DeadlineReached"]

log = logging.getLogger("bootstrap")

_KILL_AT = "_BOOTSTRAP_TOKEN_KILL_AT"  # killpoint.VARIABLE, read without importing it


MAX_BODY = 4 * 1024 * 1024  # a Secret or Status is a few KB; anything this big is hostile
REQUEST_TIMEOUT = 10.0
WHAT_TO_CHECK = (
    "the server URL, the network or VPN, and the proxy settings "
    "(HTTPS_PROXY, NO_PROXY, the cluster's proxy-url)"
)
NEVER_REACHED_GRACE = 5.0  # seconds of retrying a server that has not answered once
# Retries stop this long before the deadline so the last attempt has time to fail
# for its real reason (e.g. "connection refused") rather than a squeezed timeout.
_LAST_TRY = 0.25
# Servers (with their proxy) that answered in this run: worth waiting for if they go away.
_ANSWERED: set[str] = set()
_ANSWERED_LOCK = threading.Lock()


class DeadlineReached(UnreachableError):
    """The run's --timeout ran out before a request could be sent or answered."""


def _answered() -> None:
    """A kill point of the tests (killpoint.py): SIGKILL between two requests. Outside
    tests the variable is unset and killpoint is never imported."""
    if _KILL_AT in os.environ:
        from bootstrap import killpoint

        killpoint.reached("request")


class Api:
    """JSON requests against one API server with one set of credentials."""

    def __init__(
        self,
        server: str,
        credentials: Credentials,
        deadline: Deadline,
        *,
        ca_data: bytes | None = None,
        ca_file: str | None = None,
        insecure: bool = False,
        tls_server_name: str | None = None,
        proxy_url: str | None = None,
        environ: Mapping[str, str] | None = None,
        who: str = "the bootstrap credentials",
    ) -> None:
        self.server = server.rstrip("/")
        self.deadline = deadline
        self.who = who
        try:
            self._endpoint = transport.parse_server(self.server)
        except ValueError as e:
            raise ConfigError(f"server {self.server!r} is not a valid URL: {e}") from None
        self._headers = [("Accept", "application/json"), ("User-Agent", "bootstrap-token")]
        self._headers += credentials.headers()
        try:
            self._proxy = _proxy_for(
                self._endpoint, proxy_url, os.environ if environ is None else environ
            )
        except ValueError as e:
            raise ConfigError(f"proxy for {self.server}: {e}") from None
        # An http:// server through an http(s) proxy: absolute-form requests, no tunnel.
        self._absolute = (
            self._proxy is not None
            and self._proxy.scheme != "socks5"
            and self._endpoint.scheme == "http"
        )
        if self._absolute and self._proxy is not None and self._proxy.username is not None:
            self._headers.append(("Proxy-Authorization", self._proxy.basic_auth()))
        self._key = f"{self.server}|{self._proxy.display if self._proxy else ''}"
        self._tls_server_name = tls_server_name or self._endpoint.host
        self._context: ssl.SSLContext | None = None
        needs_tls = self._endpoint.scheme == "https" or (
            self._proxy is not None and self._proxy.scheme == "https"
        )
        if needs_tls:
            ca_pem, source = ca_data, "the cluster's certificate-authority-data"
            if ca_pem is None and ca_file:
                source = f"the CA file {ca_file}"
                from bootstrap.inputs import MAX_PEM_BYTES, read_input

                ca_pem = read_input(ca_file, "the CA file", limit=MAX_PEM_BYTES)
            try:
                self._context = transport.tls_context(
                    ca_pem,
                    source,
                    insecure,
                    credentials.cert_pem,
                    credentials.key_pem,
                    credentials.cert_files,
                )
            except ValueError as e:
                raise ConfigError(str(e)) from None
        self._connection: http1.Connection | None = None
        self._unreached_since: float | None = None
        self._retry_logged = False

    def fork(self) -> Api:
        """The same server, credentials and deadline on a connection of its own, for
        requests sent concurrently with this one's (close it when done)."""
        twin = copy.copy(self)
        twin._connection = None
        twin._unreached_since = None
        return twin

    @property
    def answered(self) -> bool:
        with _ANSWERED_LOCK:
            return self._key in _ANSWERED

    def get(self, path: str, what: str) -> dict[str, Any]:
        return self.request("GET", path, what)

    def post(self, path: str, body: Mapping[str, Any], what: str) -> dict[str, Any]:
        return self.request("POST", path, what, body)

    def delete(self, path: str, what: str) -> dict[str, Any]:
        return self.request("DELETE", path, what)

    def request(
        self,
        method: str,
        path: str,
        what: str,
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One logical request, retried while transient and the deadline allows.

        `what` names the action for error messages, e.g. "create secrets in namespace ns".
        `content_type` of the JSON body: e.g. application/apply-patch+yaml (JSON is YAML)
        for a server-side apply.
        """
        try:
            try:
                result: dict[str, Any] = self._once(method, path, what, body, content_type)
            except (TransientError, UnreachableError) as first:
                from bootstrap.kube.retry import retried

                result = retried(
                    first,
                    lambda: self._once(method, path, what, body, content_type),
                    self.deadline,
                    self.grace_left,
                    _LAST_TRY,
                    self._log_retry,
                )
        except UnreachableError as e:
            if self.answered or str(e).startswith("TLS"):
                raise
            # Never reached: say what to look at (the retries themselves are -v lines).
            hint = f"check {WHAT_TO_CHECK}"
            if isinstance(e, DeadlineReached) or self.deadline.remaining() <= _LAST_TRY:
                raise type(e)(f"{e}; {hint}") from None
            raise UnreachableError(
                f"{e}; it has not answered once in this run, so bootstrap-token gave up after "
                f"{NEVER_REACHED_GRACE:.0f} s; {hint}"
            ) from None
        _answered()
        return result

    def _log_retry(self, error: BaseException | None, delay: float) -> None:
        level = logging.DEBUG if self._retry_logged else logging.INFO
        self._retry_logged = True
        log.log(level, "%s; retrying in %.2f s (further retries: --debug)", error, delay)

    def _once(
        self,
        method: str,
        path: str,
        what: str,
        body: Mapping[str, Any] | None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        timeout = min(REQUEST_TIMEOUT, self.deadline.remaining())
        if timeout <= 0:
            raise DeadlineReached(f"no time left to {what} (--timeout reached)")
        headers = list(self._headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers += [("Content-Type", content_type), ("Content-Length", str(len(payload)))]
        started = time.perf_counter()
        url = self._prefix_path(path)
        with transport.Watchdog(timeout) as dog:
            try:
                status, response_headers, data = self._exchange(
                    method, url, payload, headers, timeout, dog
                )
                if dog.fired:  # the cut-off can look like a short but complete answer
                    self.close()
                    raise TimeoutError("cut off by the watchdog")
            except ssl.SSLCertVerificationError as e:
                # A certificate that does not verify will not verify on a retry either.
                raise TLSVerificationError(failures.tls_message(self.server, e)) from None
            except http1.RequestRefused as e:  # what a kubeconfig put in a header, say
                raise ConfigError(
                    f"cannot {what}: {e}; check the credentials (token, user names) and the "
                    "server of the kubeconfig"
                ) from None
            except OSError as e:
                self._note_failure()
                if dog.fired:
                    if self.deadline.remaining() <= _LAST_TRY:
                        raise DeadlineReached(
                            f"the API server {self.server} did not answer in time to {what}: "
                            f"no response before --timeout ({self.deadline.seconds:g} s) ran out"
                        ) from None
                    raise UnreachableError(
                        f"cannot reach the API server {self.server} to {what}: "
                        "no response within the request timeout"
                    ) from None
                if isinstance(e, ssl.SSLError):
                    raise UnreachableError(failures.tls_message(self.server, e)) from None
                via = f" through the proxy {self._proxy.display}" if self._proxy else ""
                raise UnreachableError(
                    f"cannot reach the API server {self.server}{via} to {what}: "
                    f"{failures.network_reason(e)}"
                ) from None
        with _ANSWERED_LOCK:
            _ANSWERED.add(self._key)
        log.debug(
            "%s %s -> %s (%.1f ms)", method, path, status, (time.perf_counter() - started) * 1000
        )
        if len(data) > MAX_BODY:
            raise ApiError(
                f"the API server sent an oversized response (> {MAX_BODY} bytes) to {what}"
            )
        return failures.answer(status, response_headers, data, what, self.server, self.who)

    def _prefix_path(self, path: str) -> str:
        full = self._endpoint.prefix + path
        if self._absolute:
            return f"http://{self._endpoint.hostport}{full}"
        return full

    def _note_failure(self) -> None:
        if self._unreached_since is None and not self.answered:
            self._unreached_since = time.monotonic()

    def grace_left(self) -> float | None:
        """Seconds left for a server that never answered; None once it has."""
        if self.answered:
            return None
        if self._unreached_since is None:
            return NEVER_REACHED_GRACE
        return NEVER_REACHED_GRACE - (time.monotonic() - self._unreached_since)

    def _exchange(
        self,
        method: str,
        url: str,
        payload: bytes | None,
        headers: list[tuple[str, str]],
        timeout: float,
        dog: transport.Watchdog,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One HTTP exchange on the kept-alive connection. A connection the server
        closed while idle fails before any answer: that one case is retried at once
        on a fresh connection (our requests are all safe to repeat)."""
        for attempt in (1, 2):
            reused = self._connection is not None
            connection = self._connection or self._connect(timeout, dog)
            self._connection = connection
            dog.watch(connection.raw)
            dog.watch(connection.sock)
            try:
                connection.sock.settimeout(timeout)
                response = connection.exchange(method, url, headers, payload, MAX_BODY)
                if response.will_close:
                    self.close()
                return response.status, response.headers, response.body
            except (http1.ClosedBeforeAnswer, BrokenPipeError, ConnectionResetError):
                self.close()
                if not reused or attempt == 2 or dog.fired:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect(self, timeout: float, dog: transport.Watchdog) -> http1.Connection:
        grace = self.grace_left()
        connect_timeout = timeout if grace is None else max(0.2, min(timeout, grace))
        raw, sock = transport.connect(
            self._endpoint,
            self._proxy,
            self._context,
            self._tls_server_name,
            connect_timeout,
            timeout,
            dog,
        )
        return http1.Connection(sock, raw, self._endpoint.host_field)

    def watch_for(
        self, path: str, what: str, seconds: float, found: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """A watch (path with ?watch=1...) for at most `seconds`: the first event that
        `found` accepts, or None when the window passes, the watch ends first or the
        connection fails (the caller then polls, which tells those apart). An answer
        other than 2xx raises as request() would (403: no `watch` permission). The
        connection is closed after it: an open watch cannot be cut short otherwise."""
        timeout = min(seconds, self.deadline.remaining() - _LAST_TRY)
        if timeout <= 0:
            return None
        started = time.perf_counter()
        with transport.Watchdog(timeout) as dog:
            try:
                connection = self._connection or self._connect(timeout, dog)
            except OSError:
                return None
            self._connection = None  # the watch uses it up
            dog.watch(connection.raw)
            dog.watch(connection.sock)
            try:
                connection.sock.settimeout(timeout)
                head, lines = connection.stream(
                    self._prefix_path(path), self._headers, MAX_BODY, MAX_BODY
                )
                if not 200 <= head.status < 300:
                    failures.answer(
                        head.status, head.headers, head.body, what, self.server, self.who
                    )
                for line in lines:
                    event = json.loads(line)
                    if dog.fired:  # after the cut-off, nothing read counts
                        break
                    if isinstance(event, dict) and found(event):
                        log.debug(
                            "watch %s -> %s (%.1f ms)",
                            path,
                            event.get("type"),
                            (time.perf_counter() - started) * 1000,
                        )
                        _answered()
                        return event
            except (OSError, ValueError, RecursionError):  # cut off, or not a watch
                pass
            finally:
                connection.close()
        log.debug("watch %s: nothing after %.0f ms", path, (time.perf_counter() - started) * 1000)
        return None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


def _proxy_for(
    endpoint: transport.Endpoint, proxy_url: str | None, environ: Mapping[str, str]
) -> Proxy | None:
    """proxies.choose_proxy, imported only when a proxy could apply (most runs have none)."""
    if not proxy_url and not any(environ.get(name) for name in _PROXY_VARIABLES):
        return None
    from bootstrap.kube import proxies

    return proxies.choose_proxy(endpoint, proxy_url, environ)
