"""bootstrap.redact and every place the tool prints: no registered secret survives
in a log line, a traceback, an `error:` line, the fleet summary or the progress line."""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bootstrap import redact
from bootstrap.commands import boundary, jobs
from bootstrap.errors import ApiError, VerifyError
from bootstrap.kube.client import Credentials

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    redact.clear()
    yield
    redact.clear()


# Secrets as kubeconfigs hold them: opaque tokens, passwords with any character.
secrets_ = st.text(min_size=redact.MIN_LENGTH, max_size=40).filter(lambda s: s.strip())
filler = st.text(max_size=30)


@st.composite
def text_with_secrets(draw: st.DrawFn) -> tuple[list[str], str]:
    secrets = draw(st.lists(secrets_, min_size=1, max_size=4))
    parts = [draw(filler)]
    for _ in range(draw(st.integers(1, 6))):
        parts += [draw(st.sampled_from(secrets)), draw(filler)]
    return secrets, "".join(parts)


@settings(max_examples=300, deadline=None)
@given(text_with_secrets())
def test_no_registered_secret_survives_redact(case: tuple[list[str], str]) -> None:
    secrets, text = case
    redact.clear()
    for secret in secrets:
        redact.register(secret)
    out = redact.redact(text)
    for secret in secrets:
        assert secret not in out
        assert secret[: redact.PARTIAL] not in out or len(secret) <= redact.PARTIAL


@settings(max_examples=200, deadline=None)
@given(secrets_, st.integers(0, 60), filler, filler)
def test_a_secret_cut_short_is_redacted_too(secret: str, cut: int, before: str, after: str) -> None:
    """A server truncates its message in the middle of the echoed secret."""
    redact.clear()
    redact.register(secret)
    out = redact.redact(before + secret[: redact.PARTIAL + cut] + after)
    if len(secret) > redact.PARTIAL:
        assert secret[: redact.PARTIAL] not in out
    assert secret not in out


def capture_stderr(action: Callable[[], Any]) -> str:
    saved, sys.stderr = sys.stderr, io.StringIO()
    try:
        with contextlib.suppress(SystemExit):
            action()
        return sys.stderr.getvalue()
    finally:
        sys.stderr = saved
        logging.getLogger("bootstrap").handlers.clear()


def every_rendering(text: str) -> str:
    """Everything the tool prints, each sink fed `text`: the lines as the user sees them."""

    def raises(error: BaseException) -> Callable[[], int]:
        def job() -> int:
            raise error

        return job

    def logs() -> int:
        log = logging.getLogger("bootstrap")
        log.info("retrying: %s", text)
        log.warning(text)
        try:
            raise RuntimeError(text)
        except RuntimeError:
            log.debug("traceback follows", exc_info=True)
        return 0

    def fleet() -> int:
        def one(cluster: str, account: str) -> str:
            if cluster == "a":
                raise ApiError(f"cannot get secrets: {text}")
            return f"{text} -> dev.env"

        return jobs.run_jobs([("a", "x"), ("b", "x")], one, {"parallel": 2})

    def progress() -> int:
        shown = jobs.Progress(quiet=False)
        shown.tty = True
        redact.register(f"Secret... {0.5:.1f} s")  # even the fixed text is filtered
        shown.update(0.5)
        return 0

    quiet = {"debug": False, "quiet": False}
    debug = {"debug": True, "quiet": False}
    return "".join(
        [
            capture_stderr(lambda: boundary.boundary(debug, logs)),
            capture_stderr(lambda: boundary.boundary(quiet, raises(ApiError(text)))),
            capture_stderr(lambda: boundary.boundary(debug, raises(ApiError(text)))),
            capture_stderr(lambda: boundary.boundary(debug, raises(KeyError(text)))),
            capture_stderr(lambda: boundary.boundary(quiet, fleet)),
            capture_stderr(lambda: boundary.boundary(quiet, progress)),
        ]
    )


@settings(max_examples=60, deadline=None)
@given(text_with_secrets())
def test_no_registered_secret_survives_any_rendering(case: tuple[list[str], str]) -> None:
    secrets, text = case
    redact.clear()
    for secret in secrets:
        redact.register(secret)
    printed = every_rendering(text)
    for secret in secrets:
        assert secret not in printed


def test_renderings_do_print_the_rest() -> None:
    """The sinks above really print their text (else the property proves nothing)."""
    redact.register("s3cr3t-admin-token")
    printed = every_rendering("the server said: Bearer s3cr3t-admin-token, 42")
    assert "error: the server said: Bearer <redacted>, 42" in printed
    assert "bootstrap-token: retrying: the server said: Bearer <redacted>, 42" in printed
    assert "RuntimeError: the server said: Bearer <redacted>, 42" in printed  # traceback
    assert "KeyError: 'the server said: Bearer <redacted>, 42'" in printed
    assert "a       FAILED  cannot get secrets: the server said: Bearer <redacted>, 42" in printed
    assert "bootstrap-token: waiting for the token controller to fill the <redacted>" in printed
    assert "s3cr3t" not in printed


def test_credentials_register_their_secrets() -> None:
    Credentials(token="admin-bearer-token-1")
    Credentials(basic=("alice", "pa ss:word"))
    header = base64.b64encode(b"alice:pa ss:word").decode()
    line = f"token admin-bearer-token-1, password pa ss:word, header Basic {header}"
    assert redact.redact(line) == "token <redacted>, password <redacted>, header Basic <redacted>"


def test_json_escaped_form_and_jwts_are_redacted() -> None:
    redact.register('pa"ss\\word')
    assert redact.redact('{"message": "pa\\"ss\\\\word"}') == '{"message": "<redacted>"}'
    assert redact.redact(f"Bearer {JWT}.") == "Bearer <redacted>."


def test_truncated_echo_of_a_token() -> None:
    token = "0123456789abcdefghijklmnopqrstuvwxyz"
    redact.register(token)
    assert redact.redact(f"(Authorization: Bearer {token[:20]})") == (
        "(Authorization: Bearer <redacted>)"
    )
    assert redact.redact("0123456 is not enough") == "0123456 is not enough"


def test_short_values_are_not_registered() -> None:
    redact.register("abc")
    redact.register("")
    redact.register(None)
    assert redact.redact("abc abcd") == "abc abcd"


def test_a_secret_the_marker_could_rebuild_withholds_the_line() -> None:
    redact.register("<redacted>")
    assert redact.redact("x <redacted> y") == "<output withheld: it contained a secret>"


@pytest.mark.parametrize(
    "token",
    [
        JWT,
        "k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8_QWN0aW9uPUdldENhbGxlcklkZW50aXR5",
        "ya29.a0AfB_byC-token~value+/=",
        "abcdef.0123456789abcdef",
    ],
)
def test_plain_tokens_pass(token: str) -> None:
    redact.check_plain_token(token, "the new token")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "eyJh.eyJ.sig\n::set-env name=NODE_OPTIONS::--require /tmp/x",
        "eyJh.eyJ.sig::warning::pwned",
        "two words",
        "tab\there",
        "quote'd",
        'quote"d',
        "dollar$x",
        "back\\slash",
        "nul\x00",
        "é-unicode",
        "x" * (redact.MAX_TOKEN + 1),
    ],
)
def test_tokens_that_are_not_plain_are_refused(token: str) -> None:
    with pytest.raises(VerifyError) as e:
        redact.check_plain_token(token, "the new token")
    assert str(e.value).startswith("the new token is not a plain bearer token")
    assert e.value.exit_code == 8


def test_an_unregistered_jwt_sharing_a_registered_ones_header_is_redacted_whole() -> None:
    """All JWTs of one issuer start with the same header: a registered token's start must
    not be cut out of another JWT first, leaving its payload and signature printable."""
    header = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImFiYyJ9"
    registered = f"{header}.eyJzdWIiOiJvbmUifQ.c2lnbmF0dXJlLW9uZQ"
    other = f"{header}.eyJzdWIiOiJ0d28ifQ.c2lnbmF0dXJlLXR3bw"
    redact.register(registered)
    assert redact.redact(f"a {other} b") == "a <redacted> b"
    assert redact.redact(f"cut: {registered[:20]}") == "cut: <redacted>"
