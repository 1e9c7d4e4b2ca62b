"""The only module that speaks HTTP to the API server.

One kept-alive HTTPS connection per credential (the standard library's
http.client) serves every request of a run. Kubeconfig users with a token, token file, basic auth or client
certificate are handled here directly; users whose credentials come from an
exec plugin or auth provider are resolved by the official `kubernetes` client,
imported only in that case because importing it costs most of a second.

Every request has a per-request timeout bounded by the run's deadline.
Transient failures (connection errors, 429, 5xx) are retried with backoff,
honouring Retry-After, until the deadline; 4xx other than 429 never are.
Error messages carry the API's Status message, never a request or token.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tenacity

from bootstrap.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ConflictError,
    NotFoundError,
    TLSVerificationError,
    TransientError,
    UnreachableError,
)
from bootstrap.kubeconfig import data_field
from bootstrap.target import Target

log = logging.getLogger("bootstrap")

MAX_BODY = 4 * 1024 * 1024  # a Secret or Status is a few KB; anything this big is hostile
REQUEST_TIMEOUT = 10.0
# Retries stop this long before the deadline so the last attempt has time to fail
# for its real reason (e.g. "connection refused") rather than a squeezed timeout.
_LAST_TRY = 0.25


class DeadlineReached(UnreachableError):
    """The run's --timeout ran out before a request could be sent."""


class Deadline:
    """The overall --timeout, shared by every step of a run."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())


@dataclass(frozen=True)
class Credentials:
    """How to authenticate: a bearer token, basic auth, and/or a client certificate."""

    token: str | None = None
    basic: tuple[str, str] | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __repr__(self) -> str:  # never print secrets, even in a --debug traceback
        return "Credentials(<redacted>)"


def credentials_for(target: Target) -> Credentials:
    """The bootstrap (admin) credentials of the selected context's user."""
    user = target.user
    if "exec" in user or "auth-provider" in user:
        return _credentials_from_official_client(target)
    token = user.get("token") or None
    if not token and user.get("tokenFile"):
        try:
            token = Path(user["tokenFile"]).read_text().strip()
        except OSError as e:
            raise ConfigError(
                f"user {target.user_name!r}: cannot read tokenFile {user['tokenFile']}: {e.strerror}"
            ) from e
    basic = None
    if user.get("username") and user.get("password"):
        basic = (str(user["username"]), str(user["password"]))
    where = f"user {target.user_name!r}"
    cert_pem = data_field(user.get("client-certificate-data"), f"{where}: client-certificate-data")
    key_pem = data_field(user.get("client-key-data"), f"{where}: client-key-data")
    return Credentials(
        token=token,
        basic=basic,
        cert_pem=cert_pem,
        key_pem=key_pem,
        cert_file=user.get("client-certificate") or None,
        key_file=user.get("client-key") or None,
    )


def _credentials_from_official_client(target: Target) -> Credentials:
    """Run the user's exec plugin / auth provider through the official client."""
    log.debug("resolving credentials of user %r with the kubernetes client", target.user_name)
    try:
        from kubernetes.client import Configuration
        from kubernetes.config.kube_config import KubeConfigLoader

        config = {
            "clusters": [{"name": "c", "cluster": {"server": target.server}}],
            "users": [{"name": "u", "user": dict(target.user)}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
        configuration = Configuration()
        KubeConfigLoader(config_dict=config).load_and_set(configuration)  # type: ignore[no-untyped-call]
    except Exception as e:  # the plugin's own failure, in its own words
        raise ConfigError(
            f"user {target.user_name!r}: getting credentials from its exec plugin or auth "
            f"provider failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from None
    # The key is "BearerToken" in recent client versions, "authorization" in older ones.
    keys = configuration.api_key or {}
    header = str(keys.get("BearerToken") or keys.get("authorization") or "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
    basic = None
    if header.startswith("Basic "):
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        basic = (user, password)
    if not (token or basic or configuration.cert_file):
        raise ConfigError(
            f"user {target.user_name!r}: its exec plugin or auth provider gave no credentials"
        )
    return Credentials(
        token=token, basic=basic, cert_file=configuration.cert_file, key_file=configuration.key_file
    )


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


def ssl_context(
    ca_data: bytes | None, ca_file: str | None, insecure: bool, credentials: Credentials
) -> ssl.SSLContext:
    # Only load the system trust store when nothing else is given: it costs ~20 ms.
    if insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_data:
        try:
            context = ssl.create_default_context(cadata=ca_data.decode("ascii", "replace"))
        except ssl.SSLError as e:
            raise ConfigError(f"the cluster's CA certificate cannot be loaded: {e.reason}") from e
    elif ca_file:
        try:
            context = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"cannot load CA file {ca_file}: {e}") from e
    else:
        context = ssl.create_default_context()
    # Python 3.13 turned on OpenSSL's X509 strict mode by default; Go (kubectl) applies no
    # such checks, and many clusters' CAs lack e.g. keyUsage: verify as Go and 3.10-3.12 do.
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    try:
        if credentials.cert_pem and credentials.key_pem:
            with _pem_files(credentials.cert_pem, credentials.key_pem) as (cert, key):
                context.load_cert_chain(cert, key)
        elif credentials.cert_file and credentials.key_file:
            context.load_cert_chain(credentials.cert_file, credentials.key_file)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"cannot load the client certificate and key: {e}") from None
    return context


class _ConnectTimeout(TimeoutError):
    """The TCP connection could not be made in time (as opposed to a slow answer)."""


class _HTTPSConnection(http.client.HTTPSConnection):
    """HTTPS with our SSL context, and an SNI/verification name that may differ from
    the host (the kubeconfig's tls-server-name)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        context: ssl.SSLContext,
        server_name: str | None,
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._ssl_context = context
        self._server_name = server_name or host

    def connect(self) -> None:
        try:
            self.sock = socket.create_connection((self.host, self.port), self.timeout)
        except TimeoutError as e:
            raise _ConnectTimeout(str(e)) from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._ssl_context.wrap_socket(self.sock, server_hostname=self._server_name)


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
        who: str = "the bootstrap credentials",
    ) -> None:
        self.server = server.rstrip("/")
        self.deadline = deadline
        self.who = who
        self._headers = {"Accept": "application/json", "User-Agent": "bootstrap-token"}
        if credentials.token:
            self._headers["Authorization"] = f"Bearer {credentials.token}"
        elif credentials.basic:
            pair = ":".join(credentials.basic).encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        parts = urlsplit(self.server)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(f"server {self.server!r} is not an https:// or http:// URL")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        self._tls_server_name = tls_server_name
        self._context = (
            ssl_context(ca_data, ca_file, insecure, credentials)
            if parts.scheme == "https"
            else None
        )
        self._connection: http.client.HTTPConnection | None = None

    def get(self, path: str, what: str) -> dict[str, Any]:
        return self.request("GET", path, what)

    def post(self, path: str, body: Mapping[str, Any], what: str) -> dict[str, Any]:
        return self.request("POST", path, what, body)

    def delete(self, path: str, what: str) -> dict[str, Any]:
        return self.request("DELETE", path, what)

    def request(
        self, method: str, path: str, what: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """One logical request, retried while transient and the deadline allows.

        `what` names the action for error messages, e.g. "create secrets in namespace ns".
        """
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((TransientError, UnreachableError)),
            stop=_stop_at_deadline(self.deadline),
            wait=_wait_for_server(self.deadline),
            before_sleep=_log_retry,
            reraise=True,
        )
        result: dict[str, Any] = retrying(self._once, method, path, what, body)
        return result

    def _once(
        self, method: str, path: str, what: str, body: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        timeout = min(REQUEST_TIMEOUT, self.deadline.remaining())
        if timeout <= 0:
            raise DeadlineReached(f"no time left to {what} (--timeout reached)")
        headers = dict(self._headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            status, response_headers, data = self._exchange(
                method, self._prefix + path, payload, headers, timeout
            )
        except ssl.SSLCertVerificationError as e:
            # A certificate that does not verify will not verify on a retry either.
            raise TLSVerificationError(_tls_message(self.server, e)) from None
        except ssl.SSLError as e:
            raise UnreachableError(_tls_message(self.server, e)) from None
        except (OSError, http.client.HTTPException) as e:
            raise UnreachableError(
                f"cannot reach the API server {self.server} to {what}: {_network_reason(e)}"
            ) from None
        log.debug(
            "%s %s -> %s (%.1f ms)", method, path, status, (time.perf_counter() - started) * 1000
        )
        if len(data) > MAX_BODY:
            raise ApiError(
                f"the API server sent an oversized response (> {MAX_BODY} bytes) to {what}"
            )
        return self._result(status, response_headers, data, what)

    def _exchange(
        self, method: str, path: str, payload: bytes | None, headers: dict[str, str], timeout: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One HTTP exchange on the kept-alive connection. A connection the server
        closed while idle fails before any answer: that one case is retried at once
        on a fresh connection (our requests are all safe to repeat)."""
        for attempt in (1, 2):
            reused = self._connection is not None
            connection = self._connection or self._connect(timeout)
            self._connection = connection
            try:
                if connection.sock is not None:
                    connection.sock.settimeout(timeout)
                connection.timeout = timeout
                connection.request(method, path, body=payload, headers=headers)
                response = connection.getresponse()
                data = response.read(MAX_BODY + 1)
                if len(data) > MAX_BODY or response.will_close:
                    self.close()
                header_map = {k.lower(): v for k, v in response.headers.items()}
                return response.status, header_map, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if not reused or attempt == 2:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._context is None:
            return http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        return _HTTPSConnection(
            self._host,
            self._port,
            timeout=timeout,
            context=self._context,
            server_name=self._tls_server_name,
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _result(
        self, status: int, headers: Mapping[str, str], data: bytes, what: str
    ) -> dict[str, Any]:
        document: Any = None
        try:
            document = json.loads(data) if data else {}
        except (ValueError, UnicodeDecodeError):
            document = None
        if 200 <= status < 300:
            if not isinstance(document, dict):
                kind = headers.get("content-type", "no content type")
                raise ApiError(
                    f"unexpected response to {what} from {self.server}: HTTP {status} "
                    f"with {kind}, not a JSON object (is this a Kubernetes API server?)",
                    status,
                )
            return document
        message = _status_message(document) or f"HTTP {status}"
        if status == 401:
            raise AuthError(
                f"the API server rejected {self.who} (401 Unauthorized) while trying to {what}: "
                f"{message}; the credentials are invalid or expired, refresh them",
                status,
            )
        if status == 403:
            raise AuthError(f"forbidden: {self.who} may not {what} ({message})", status)
        if status == 404:
            raise NotFoundError(message, status)
        if status == 409:
            raise ConflictError(message, status)
        if status == 429 or status >= 500:
            raise TransientError(
                f"the API server could not {what} (HTTP {status}): {message}",
                status,
                _retry_after(headers.get("retry-after")),
            )
        raise ApiError(f"cannot {what}: {message} (HTTP {status})", status)


def _status_message(document: Any) -> str | None:
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        return str(document["message"])[:500]
    return None


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _network_reason(error: BaseException) -> str:
    if isinstance(error, socket.gaierror):
        return "host name does not resolve"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, _ConnectTimeout):
        return "connection timed out"
    if isinstance(error, TimeoutError):
        return "no response within the request timeout"
    if isinstance(error, ConnectionError | http.client.HTTPException):
        return "connection reset or closed by the server"
    return (
        error.strerror.lower()
        if isinstance(error, OSError) and error.strerror
        else type(error).__name__
    )


def _tls_message(server: str, error: BaseException) -> str:
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        detail = text.split("certificate verify failed:")[-1].split("(")[0].strip(" )'\"")
        return (
            f"TLS verification of {server} failed ({detail or 'untrusted certificate'}): the "
            "server's certificate does not match the CA in the kubeconfig; fix the CA, or pass "
            "--insecure-skip-tls-verify if you really trust this network"
        )
    return f"TLS handshake with {server} failed: {text[:200]}"


def _stop_at_deadline(deadline: Deadline) -> tenacity.stop.stop_base:
    class StopAtDeadline(tenacity.stop.stop_base):
        def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
            return deadline.remaining() <= _LAST_TRY

    return StopAtDeadline()


def _wait_for_server(deadline: Deadline) -> tenacity.wait.wait_base:
    """Exponential backoff from 50 ms to 2 s, or the server's Retry-After, never past the deadline."""
    backoff = tenacity.wait_exponential(multiplier=0.05, max=2.0)

    class WaitForServer(tenacity.wait.wait_base):
        def __call__(self, retry_state: tenacity.RetryCallState) -> float:
            delay = backoff(retry_state)
            outcome = retry_state.outcome
            error = outcome.exception() if outcome else None
            if isinstance(error, TransientError) and error.retry_after is not None:
                delay = error.retry_after
            return max(0.0, min(delay, deadline.remaining() - _LAST_TRY))

    return WaitForServer()


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    error = retry_state.outcome.exception() if retry_state.outcome else None
    delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
    log.info("%s; retrying in %.2f s", error, delay)
