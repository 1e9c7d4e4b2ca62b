"""Step 4: wait until the token controller has filled the Secret, then decode it.

The controller usually fills a new Secret within 5-20 ms. The Secret as just
created is the first check; then one watch of that Secret from the version
created (as `kubectl wait` watches), which answers the moment the controller
writes the token: no polling interval to sit out, one request. Should the
watch not answer within 1 s (a slow or stopped controller), be refused (no
`watch` permission) or fail, tenacity polls: 5, 10, 20, 25, 25... ms apart,
every 25 ms up to 2 s, every 100 ms up to 10 s, then every 500 ms, so a
controller that is slow or down is not hammered. Transient API failures are
retried inside each request (see `client`); a vanished Secret or a refused
GET ends the wait at once.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bootstrap.errors import ApiError, ConflictError, NotFoundError, WaitTimeout
from bootstrap.kube.client import Api, Deadline, DeadlineReached
from bootstrap.steps.manifests import segment

if TYPE_CHECKING:
    import tenacity

log = logging.getLogger("bootstrap")

# (elapsed seconds below which, poll interval cap): fast first, then gentler.
SCHEDULE = ((2.0, 0.025), (10.0, 0.1), (float("inf"), 0.5))
WATCH_WINDOW = 1.0  # seconds the watch may take before the wait polls instead


@dataclass(frozen=True)
class Token:
    token: str
    ca_pem: bytes | None
    namespace: str

    def __repr__(self) -> str:
        return f"Token(<redacted>, namespace={self.namespace!r})"


class _NotYet(Exception):
    pass


def wait_for_token(
    api: Api,
    namespace: str,
    secret: str,
    deadline: Deadline,
    first: dict[str, Any] | None = None,
    on_poll: Callable[[float], None] | None = None,
) -> Token:
    """Return the decoded token once `data.token` is set; `first` is the Secret as just applied."""
    path = f"/api/v1/namespaces/{segment(namespace)}/secrets/{segment(secret)}"
    started = time.monotonic()
    reused = first is not None and bool((first.get("data") or {}).get("token"))
    pending: list[dict[str, Any]] = [first] if first is not None else []

    def poll() -> Token:
        body = pending.pop() if pending else _get(api, path, namespace, secret)
        data = body.get("data") or {}
        if not data.get("token"):
            if on_poll:
                on_poll(time.monotonic() - started)
            raise _NotYet()
        return decode(data, namespace, secret)

    def backoff(retry_state: tenacity.RetryCallState) -> float:
        elapsed = time.monotonic() - started
        cap = next(interval for limit, interval in SCHEDULE if elapsed < limit)
        delay: float = min(cap, 0.005 * 2.0 ** (retry_state.attempt_number - 1))
        return max(0.0, min(delay, deadline.remaining() - 0.05))

    try:
        try:
            token = poll()  # the Secret as applied, or a first GET: often ready already
        except _NotYet as not_yet:
            watched = _watch(api, path, namespace, secret, first)
            if watched is not None:
                token = watched
            else:
                token = _poll_with_tenacity(not_yet, poll, backoff, deadline)
    except (_NotYet, DeadlineReached):
        raise WaitTimeout(
            f"timed out after {deadline.seconds:g} s waiting for the token controller to fill "
            f"Secret {namespace}/{secret}: it seems not to be running (kube-controller-manager "
            "needs --service-account-private-key-file and the serviceaccount-token controller); "
            "check the controller manager, or raise --timeout"
        ) from None
    if reused:  # nothing was waited for: say so, not "filled after 0 ms"
        log.info("reusing Secret %s/%s, token already present", namespace, secret)
    else:
        log.info(
            "token controller filled Secret %s/%s after %.0f ms",
            namespace,
            secret,
            (time.monotonic() - started) * 1000,
        )
    # Wall-clock moment of the pick-up, to measure the latency against a watcher.
    log.debug("token picked up at %.3f (unix time)", time.time())
    return token


def _poll_with_tenacity(
    first_miss: _NotYet,
    poll: Callable[[], Token],
    backoff: Callable[[tenacity.RetryCallState], float],
    deadline: Deadline,
) -> Token:
    """tenacity from here (imported now: most runs never come here): the first miss is
    replayed as its attempt 1, so the backoff starts where it would."""
    import tenacity

    replay: list[BaseException] = [first_miss]

    def attempt() -> Token:
        if replay:
            raise replay.pop()
        return poll()

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_NotYet),
        stop=lambda _: deadline.remaining() <= 0.05,
        wait=backoff,
        reraise=True,
    )
    token: Token = retrying(attempt)
    return token


def _watch(
    api: Api, path: str, namespace: str, secret: str, first: dict[str, Any] | None
) -> Token | None:
    """The token from a watch of the Secret, from the version just created: None when
    the watch gives nothing (the polls then look, and report what is wrong)."""
    name = path.rsplit("/", 1)[1]
    version = ((first or {}).get("metadata") or {}).get("resourceVersion")
    query = f"?fieldSelector=metadata.name%3D{name}&watch=1&timeoutSeconds={WATCH_WINDOW:.0f}"
    if isinstance(version, str) and version.isascii() and version.isdigit():
        query += f"&resourceVersion={version}"

    def filled_or_gone(event: dict[str, Any]) -> bool:
        return event.get("type") == "DELETED" or bool(_data(event).get("token"))

    try:
        event = api.watch_for(
            path.rsplit("/", 1)[0] + query,
            f"watch secrets in namespace {namespace}",
            WATCH_WINDOW,
            filled_or_gone,
        )
    except ApiError as e:  # e.g. 403: a bootstrapper without `watch` polls instead
        log.debug("watching Secret %s/%s failed (%s): polling", namespace, secret, e)
        return None
    if event is None:
        return None
    if event.get("type") == "DELETED":
        raise ConflictError(_GONE.format(namespace=namespace, secret=secret))
    return decode(_data(event), namespace, secret)


def _data(event: dict[str, Any]) -> dict[str, Any]:
    """The Secret's data in a watch event; {} for anything else (an ERROR's Status...)."""
    secret = event.get("object")
    data = secret.get("data") if isinstance(secret, dict) else None
    return data if isinstance(data, dict) else {}


_GONE = (
    "Secret {namespace}/{secret} disappeared while waiting for its token: the token "
    "controller deletes a token Secret whose ServiceAccount is missing or was "
    "replaced (or someone deleted it); check the ServiceAccount and run again"
)


def _get(api: Api, path: str, namespace: str, secret: str) -> dict[str, Any]:
    try:
        return api.get(path, f"get secrets in namespace {namespace}")
    except NotFoundError:
        raise ConflictError(_GONE.format(namespace=namespace, secret=secret)) from None


def decode(data: dict[str, Any], namespace: str, secret: str) -> Token:
    """Base64-decode token and ca.crt; a malformed value is an error, not a crash."""
    where = f"Secret {namespace}/{secret}"
    try:
        token = base64.b64decode(str(data["token"]), validate=True).decode("ascii").strip()
    except (binascii.Error, ValueError) as e:
        raise ApiError(f"{where}: data.token is not valid base64 text") from e
    if not token or any(c.isspace() for c in token):
        raise ApiError(f"{where}: data.token does not hold a token")
    ca_pem = None
    if data.get("ca.crt"):
        try:
            ca_pem = base64.b64decode(str(data["ca.crt"]), validate=True)
        except (binascii.Error, ValueError) as e:
            raise ApiError(f"{where}: data.ca.crt is not valid base64") from e
    ns = namespace
    if data.get("namespace"):
        try:
            ns = base64.b64decode(str(data["namespace"]), validate=True).decode() or namespace
        except (binascii.Error, ValueError, UnicodeDecodeError):
            ns = namespace
    return Token(token=token, ca_pem=ca_pem, namespace=ns)
