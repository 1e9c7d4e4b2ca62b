"""kube/failures.py and kube/retry.py: what an answer or a failure means, and the retry
loop, with literal answers and errors (the real server's and the fault proxy's are in
tests/cluster/test_faults.py)."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable

import pytest

from bootstrap.errors import (
    ApiError,
    AuthError,
    ConflictError,
    NotFoundError,
    TransientError,
    UnreachableError,
)
from bootstrap.kube import failures, http1, transport
from bootstrap.kube.credentials import Deadline
from bootstrap.kube.retry import retried

STATUS = b'{"kind": "Status", "message": "secrets \\"x\\" is forbidden:\\n  twice\\u001b[31m"}'


def answer(status: int, data: bytes = STATUS, headers: dict[str, str] | None = None) -> object:
    return failures.answer(
        status, headers or {}, data, "get secrets", "https://k:6443", "the token"
    )


def test_the_content_type_of_an_answer_that_is_not_json_is_named() -> None:
    with pytest.raises(ApiError, match="HTTP 200 with text/html, not a JSON object"):
        answer(200, b"<html>", {"content-type": "text/html"})
    with pytest.raises(ApiError, match="HTTP 200 with no content type, not a JSON object"):
        answer(200, b"<html>")


def test_every_2xx_is_a_success() -> None:
    assert answer(200, b"{}") == answer(299, b"{}") == {}


@pytest.mark.parametrize("status", [199, 300, 499])
def test_the_edges_of_success_and_of_transient(status: int) -> None:
    with pytest.raises(ApiError) as error:
        answer(status, b"")
    assert type(error.value) is ApiError
    assert str(error.value) == f"cannot get secrets: HTTP {status} (HTTP {status})"


def test_what_cannot_be_parsed_is_not_json_and_a_content_type_is_bounded() -> None:
    with pytest.raises(ApiError, match="not a JSON object"):
        answer(200, b"[" * 200_000)  # nested past the recursion limit
    with pytest.raises(ApiError) as error:
        answer(200, b"<html>", {"content-type": "t" * 5000})
    assert "t" * 100 + ", not a JSON object" in str(error.value) and "t" * 101 not in str(
        error.value
    )


def test_a_2xx_answer_is_its_json_object() -> None:
    assert answer(200, b'{"kind": "Secret"}') == {"kind": "Secret"}
    assert answer(201, b"") == {}


@pytest.mark.parametrize("data", [b"[1]", b"<html>", b"\xff"])
def test_a_2xx_answer_that_is_not_a_json_object_is_an_error(data: bytes) -> None:
    with pytest.raises(ApiError, match=r"^unexpected response to get secrets from https://k:6443"):
        failures.answer(
            200, {"content-type": "text/html"}, data, "get secrets", "https://k:6443", "x"
        )


def test_each_status_is_its_error_with_the_status_message_on_one_visible_line() -> None:
    message = 'secrets "x" is forbidden: twice\\x1b[31m'
    with pytest.raises(AuthError) as e401:
        answer(401)
    assert str(e401.value) == (
        "the API server rejected the token (401 Unauthorized) while trying to get secrets: "
        f"{message}; the credentials are invalid or expired, refresh them"
    )
    with pytest.raises(AuthError) as e403:
        answer(403)
    assert str(e403.value) == f"forbidden: the token may not get secrets ({message})"
    with pytest.raises(NotFoundError, match=r"^secrets"):
        answer(404)
    with pytest.raises(ConflictError, match=r"^secrets"):
        answer(409)
    with pytest.raises(ApiError) as e418:
        answer(418, b"")
    assert str(e418.value) == "cannot get secrets: HTTP 418 (HTTP 418)"
    assert type(e418.value) is ApiError and e418.value.status == 418


def test_429_and_5xx_are_transient_and_carry_retry_after() -> None:
    with pytest.raises(TransientError) as busy:
        answer(429, headers={"retry-after": "3"})
    assert (busy.value.status, busy.value.retry_after) == (429, 3.0)
    for value, seconds in [("-1", 0.0), ("soon", None), ("", None)]:
        with pytest.raises(TransientError) as e:
            answer(503, headers={"retry-after": value})
        assert e.value.retry_after == seconds
    with pytest.raises(TransientError, match=r"could not get secrets \(HTTP 500\)"):
        answer(500)


def test_a_status_message_is_bounded() -> None:
    assert failures.status_message({"message": "m" * 900}) == "m" * 500
    assert failures.status_message({"message": 7}) is None
    assert failures.status_message(["message"]) is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (socket.gaierror(-2, "Name or service not known"), "host name does not resolve"),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (transport.ConnectTimeout("timed out"), "connection timed out"),
        (TimeoutError("timed out"), "no response within the request timeout"),
        (
            http1.ProtocolError("the server sent an invalid chunk size"),
            "the server sent an invalid chunk size",
        ),
        (http1.ClosedBeforeAnswer("closed"), "connection reset or closed by the server"),
        (
            ConnectionResetError(104, "Connection reset by peer"),
            "connection reset or closed by the server",
        ),
        (OSError(113, "No route to host"), "no route to host"),
        (OSError("odd"), "OSError"),
    ],
)
def test_network_reasons(error: BaseException, reason: str) -> None:
    assert failures.network_reason(error) == reason


def test_a_proxy_failure_is_told_in_its_own_words() -> None:
    from bootstrap.kube.proxies import ProxyFailure  # once a proxy is used, it is imported

    error = ProxyFailure("the proxy http://p:3128 refused to tunnel to k:6443: 403 Forbidden")
    assert failures.network_reason(error) == str(error)


def test_tls_messages() -> None:
    unknown = ssl.SSLCertVerificationError(
        1,
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1006)",
    )
    assert failures.tls_message("https://k", unknown) == (
        "TLS verification of https://k failed (self-signed certificate): the server's certificate "
        "does not match the CA in the kubeconfig; fix the CA, or pass --insecure-skip-tls-verify "
        "if you really trust this network"
    )
    mismatch = ssl.SSLCertVerificationError(
        1,
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, "
        "certificate is not valid for 'k'. (_ssl.c:1006)",
    )
    assert failures.tls_message("https://k", mismatch).startswith(
        "TLS verification of https://k failed (Hostname mismatch, certificate is not valid for 'k'): "
        "the server's certificate is not issued for that name"
    )
    lower_only = ssl.SSLError(1, "certificate verify failed: unable to get local issuer")
    assert failures.tls_message("https://k", lower_only).startswith(
        "TLS verification of https://k failed (unable to get local issuer):"
    )
    assert failures.tls_message("https://k", ssl.SSLError(1, "x" * 300)) == (
        "TLS handshake with https://k failed: " + str(ssl.SSLError(1, "x" * 300))[:200]
    )


# --- retry.py ---------------------------------------------------------------------


def retry(
    first: BaseException,
    attempt: Callable[[], object],
    seconds: float,
    grace: Callable[[], float | None] = lambda: None,
    told: list[tuple[str, float]] | None = None,
) -> object:
    def tell(error: BaseException | None, delay: float) -> None:
        if told is not None:
            told.append((str(error), delay))

    return retried(first, attempt, Deadline(seconds), grace, 0.25, tell)


def test_a_transient_failure_is_retried_until_it_succeeds_and_each_retry_is_told() -> None:
    answers: list[object] = [
        TransientError("busy", 503, None),
        UnreachableError("reset"),
        {"ok": 1},
    ]
    told: list[tuple[str, float]] = []

    def attempt() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    first = TransientError("busy", 503, 0.0)
    result = retried(
        first, attempt, Deadline(10), lambda: None, 0.25, lambda e, d: told.append((str(e), d))
    )
    assert result == {"ok": 1}
    assert [e for e, _ in told] == ["busy", "busy", "reset"]
    assert told[0][1] == 0.0  # the first failure's Retry-After: 0


def test_retry_after_is_honoured_and_the_deadline_is_not_passed() -> None:
    told: list[tuple[str, float]] = []

    def attempt() -> object:
        raise TransientError("busy", 429, 30.0)

    started = time.monotonic()
    with pytest.raises(TransientError):
        retry(TransientError("busy", 429, 30.0), attempt, 0.6, told=told)
    assert time.monotonic() - started < 0.6
    assert told and all(
        delay <= 0.35 for _, delay in told
    )  # not 30 s: the deadline less a last try


def test_other_errors_are_not_retried() -> None:
    calls = []

    def attempt() -> object:
        calls.append(1)
        raise AuthError("forbidden", 403)

    with pytest.raises(AuthError):
        retry(TransientError("busy", 503, 0.0), attempt, 5)
    assert calls == [1]


def test_a_server_that_never_answered_gets_its_grace_and_no_more() -> None:
    grace_until = time.monotonic() + 0.3

    def attempt() -> object:
        raise UnreachableError("connection refused")

    started = time.monotonic()
    with pytest.raises(UnreachableError):
        retry(
            UnreachableError("refused"), attempt, 30, grace=lambda: grace_until - time.monotonic()
        )
    assert 0.25 <= time.monotonic() - started < 0.9  # the grace, not a second more
