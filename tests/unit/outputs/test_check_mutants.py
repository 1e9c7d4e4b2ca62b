"""check.py rules that mutants of it survived: the JWT payload decoding, the token's
kind and expiry, reading FILE (stdin's bound, its words), the CA file beside it, the
verdict at its boundaries, what is asked of the server and how its refusals are taken,
and the exact words of the report. Literal expectations; runs as root (fakes
`os.geteuid` for a file of another user)."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bootstrap.errors import ApiError, AuthError, NotFoundError, UsageError
from bootstrap.kube import client
from bootstrap.outputs import check
from bootstrap.outputs.readback import FileCredentials
from bootstrap.steps.rules import Rules
from tests.unit.outputs.test_check import LEGACY, REQUEST, jwt, result
from tests.unit.outputs.test_check_rules import REVIEW_CALL, WHOAMI
from tests.unit.outputs.test_check_rules import FakeApi as Answering

UTC = timezone.utc
EXP = datetime(2030, 1, 1, tzinfo=UTC)  # REQUEST's exp
OPAQUE = "opaque-token-5c1e9a"


class FakeApi(Answering):
    """test_check_rules' fake client.Api that also records how it was made and that it
    was closed. Its answers and calls live on Answering, which its methods read."""

    made: ClassVar[list[tuple[tuple[Any, ...], dict[str, Any]]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        FakeApi.made.append((args, kwargs))

    def close(self) -> None:
        Answering.calls.append(("close",))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> type[FakeApi]:
    monkeypatch.setattr(client, "Api", FakeApi)
    Answering.answers = {check.REVIEW_PATH: WHOAMI, "/api": {"versions": ["v1"]}}
    Answering.calls = []
    FakeApi.made = []
    return FakeApi


def creds(token: str, **changes: Any) -> FileCredentials:
    return FileCredentials(format="env", server="https://a", token=token, **changes)


# --- the token's payload -------------------------------------------------------------------


def _b64(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "payload",
    ['{"a":1}', '{"ab":1}', '{"abc":1}', '{"abcd":1}', '{"a":"\\u00ff?>"}'],
)
def test_claims_decodes_every_padding_length(payload: str) -> None:
    assert check.claims(f"h.{_b64(payload)}.s") == json.loads(payload)


@pytest.mark.parametrize(
    "token",
    [
        "a.b",  # two parts
        f"h.{_b64('{}')}.s.x",  # four
        "h.b.s",  # one base64 character: binascii.Error
        f"h.{_b64('not json')}.s",
        f"h.{_b64('[1]')}.s",  # not an object
        f"{_b64('{}')}.{_b64('{')}.{_b64('{}')}",  # the payload, not the header, is read
    ],
)
def test_claims_of_what_is_not_a_jwt_payload_is_none(token: str) -> None:
    assert check.claims(token) is None


def test_a_binascii_error_is_no_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    import binascii

    def decode(text: str) -> bytes:
        raise binascii.Error("bad")

    monkeypatch.setattr(check.base64, "urlsafe_b64decode", decode)
    assert check.claims("h.e30.s") is None


def test_token_kind_of_each_payload() -> None:
    assert check.token_kind({"kubernetes.io/serviceaccount/secret.name": "s"}) == "secret"
    assert check.token_kind({"kubernetes.io": {"namespace": "ci"}}) == "request"
    assert check.token_kind({"kubernetes.io": "ci"}) == "unknown"
    assert check.token_kind({}) == "unknown"
    assert check.token_kind(None) == "unknown"


def test_expiry_from_exp_or_from_the_file() -> None:
    assert check.expiry({"exp": 1893456000.5}, None) == datetime(2030, 1, 1, 0, 0, 0, 500000, UTC)
    assert check.expiry({"exp": 1893456000}, "2031-01-01T00:00:00Z") == EXP
    # A boolean or a string `exp` is no expiry: what the file says is used.
    assert check.expiry({"exp": True}, "2031-05-06T07:08:09Z") == datetime(
        2031, 5, 6, 7, 8, 9, tzinfo=UTC
    )
    assert check.expiry({"exp": "1893456000"}, None) is None
    assert check.expiry({}, "2031-05-06T09:08:09+02:00") == datetime(
        2031, 5, 6, 7, 8, 9, tzinfo=UTC
    )
    assert check.expiry(None, "2031-05-06T07:08:09Z").tzinfo == UTC  # type: ignore[union-attr]
    assert check.expiry(None, "next tuesday") is None
    assert check.expiry(None, "") is None
    assert check.expiry(None, None) is None


# --- reading FILE --------------------------------------------------------------------------


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)
        self.asked: list[int] = []
        real = self.buffer.read

        def read(size: int = -1) -> bytes:
            self.asked.append(size)
            return real(size)

        self.buffer.read = read  # type: ignore[method-assign]


def test_stdin_is_read_up_to_16_mib_and_one_byte(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    stdin = _Stdin(b"x" * (16 * 1024 * 1024))
    monkeypatch.setattr(sys, "stdin", stdin)
    text, base, label = check.read_file("-")
    assert stdin.asked == [16 * 1024 * 1024 + 1]
    assert (len(text), base, label) == (16 * 1024 * 1024, tmp_path, "stdin")


def test_more_than_16_mib_on_stdin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(b"x" * (16 * 1024 * 1024 + 1)))
    with pytest.raises(UsageError) as e:
        check.read_file("-")
    assert str(e.value) == "cannot read stdin: more than 16 MiB, not an output of bootstrap-token"


def test_stdin_that_is_not_utf8_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(b"TOKEN=\xff\n"))
    with pytest.raises(UsageError) as e:
        check.read_file("-")
    assert str(e.value) == "cannot read stdin: not UTF-8 text"


def test_a_file_is_read_with_its_directory_and_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "dev.env").write_bytes("A='é'\n".encode())
    monkeypatch.chdir(tmp_path)
    assert check.read_file("sub/dev.env") == ("A='é'\n", tmp_path / "sub", "sub/dev.env")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert check.read_file("~/sub/dev.env") == ("A='é'\n", tmp_path / "sub", "~/sub/dev.env")
    (tmp_path / "empty.env").write_bytes(b"")
    assert check.read_file("empty.env") == ("", tmp_path, "empty.env")


def test_a_missing_or_non_utf8_file_in_words(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        check.read_file(str(tmp_path / "none.env"))
    assert str(e.value) == f"cannot read {tmp_path}/none.env: it does not exist"
    (tmp_path / "bad.env").write_bytes(b"\xff")
    with pytest.raises(UsageError) as e:
        check.read_file(str(tmp_path / "bad.env"))
    assert str(e.value) == f"cannot read {tmp_path}/bad.env: not UTF-8 text"


# --- the CA file beside it -------------------------------------------------------------------


def test_the_ca_file_written_beside_it_is_read_in(tmp_path: Path) -> None:
    (tmp_path / "dev.ca.crt").write_bytes(b"PEM\n")
    got = check.own_ca(creds("t", ca_file=f"{tmp_path}/x/../dev.ca.crt"), tmp_path)
    assert (got.ca_pem, got.ca_file, got.token) == (b"PEM\n", None, "t")


def test_no_ca_at_all_stays_none(tmp_path: Path) -> None:
    got = check.own_ca(creds("t"), tmp_path)
    assert (got.ca_pem, got.ca_file) == (None, None)


@pytest.mark.parametrize("name", ["dev.crt", "dev.ca.pem", "ca.crt.bak"])
def test_a_ca_file_not_named_ca_crt_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"PEM\n")
    with pytest.raises(UsageError) as e:
        check.own_ca(creds("t", ca_file=str(tmp_path / name)), tmp_path)
    assert str(e.value) == (
        f"it names the CA file {tmp_path}/{name}, not one bootstrap-token wrote beside it "
        f"(NAME.ca.crt in {tmp_path}): only credentials written inside the file are used"
    )


@pytest.mark.parametrize("where", ["other", "missing"])
def test_a_ca_file_in_another_directory_is_refused(tmp_path: Path, where: str) -> None:
    if where == "other":
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "dev.ca.crt").write_bytes(b"PEM\n")
    with pytest.raises(UsageError) as e:
        check.own_ca(creds("t", ca_file=f"{tmp_path}/{where}/dev.ca.crt"), tmp_path)
    assert str(e.value) == (
        f"it names the CA file {tmp_path}/{where}/dev.ca.crt, not one bootstrap-token wrote "
        f"beside it (NAME.ca.crt in {tmp_path}): only credentials written inside the file are used"
    )


def test_a_symlinked_ca_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real.pem").write_bytes(b"PEM\n")
    (tmp_path / "dev.ca.crt").symlink_to(tmp_path / "real.pem")
    with pytest.raises(UsageError) as e:
        check.own_ca(creds("t", ca_file=str(tmp_path / "dev.ca.crt")), tmp_path)
    assert str(e.value) == (
        f"cannot read the CA file {tmp_path}/dev.ca.crt: it is a symlink, not a regular file"
    )


def test_a_ca_file_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dev.ca.crt").write_bytes(b"PEM\n")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(UsageError) as e:
        check.own_ca(creds("t", ca_file=str(tmp_path / "dev.ca.crt")), tmp_path)
    assert str(e.value) == (
        f"cannot read the CA file {tmp_path}/dev.ca.crt: it is owned by uid 0, not by you (uid 1000)"
    )


def test_a_ca_file_over_4_mib_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dev.ca.crt").write_bytes(b"x" * (4 * 1024 * 1024 + 1))
    with pytest.raises(UsageError) as e:
        check.own_ca(creds("t", ca_file=str(tmp_path / "dev.ca.crt")), tmp_path)
    assert str(e.value) == (
        f"cannot read the CA file {tmp_path}/dev.ca.crt: it is 4194305 bytes, "
        "more than the 4 MiB allowed"
    )


# --- asking the server -----------------------------------------------------------------------


def test_the_client_is_made_from_the_files_credentials_only(api: type[FakeApi]) -> None:
    got = check.check(
        creds(
            OPAQUE,
            ca_pem=b"PEM",
            ca_file="/etc/passwd",
            tls_server_name="k8s",
            proxy_url="http://p:3128",
        ),
        timeout=7.5,
    )
    assert got.ok is True
    ((args, kwargs),) = api.made
    assert args[0] == "https://a"
    assert args[1].token == OPAQUE
    assert args[2].seconds == 7.5
    assert kwargs == {
        "ca_data": b"PEM",
        "ca_file": None,
        "insecure": False,
        "tls_server_name": "k8s",
        "proxy_url": "http://p:3128",
        "who": "the file's token",
    }
    assert api.calls == [REVIEW_CALL, ("close",)]


def test_an_insecure_file_is_warned_about(
    api: type[FakeApi], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bootstrap"):
        check.check(creds(OPAQUE, insecure=True))
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        (
            "bootstrap",
            "warning: the file turns TLS verification off (insecure-skip-tls-verify) for https://a",
        )
    ]
    assert api.made[0][1]["insecure"] is True


def test_a_valid_opaque_token(api: type[FakeApi]) -> None:
    got = check.check(creds(OPAQUE, namespace="ns"), expires_within=10**9)
    assert got == check.Result(
        status="valid",
        server="https://a",
        format="env",
        identity="system:serviceaccount:ci:bot",
        token_kind="unknown",
        expires_at=None,
        seconds_left=None,
        last_used=None,
        secret=None,
        namespace="ns",
        reason=None,
    )


def test_the_files_expiry_counts_for_an_opaque_token(api: type[FakeApi]) -> None:
    now = datetime(2029, 12, 31, tzinfo=UTC)
    got = check.check(
        creds(OPAQUE, expires_at="2030-01-01T00:00:00Z"), now=now, expires_within=86400
    )
    assert (got.status, got.seconds_left, got.reason) == (
        "expires-soon",
        86400,
        "expires at 2030-01-01T00:00:00Z, within 1d",
    )
    got = check.check(creds(OPAQUE, expires_at="2030-01-01T00:00:00Z"), now=now)
    assert (got.status, got.seconds_left) == ("valid", 86400)


def test_a_401_at_the_expiry_second_is_expired(api: type[FakeApi]) -> None:
    api.answers[check.REVIEW_PATH] = AuthError("Unauthorized", 401)
    got = check.check(creds(REQUEST), now=EXP)
    assert (got.status, got.reason, got.identity) == (
        "expired",
        "expired at 2030-01-01T00:00:00Z",
        None,
    )
    got = check.check(creds(REQUEST), now=EXP - timedelta(seconds=1))
    assert got.status == "invalid"
    got = check.check(creds(OPAQUE), now=EXP)
    assert (got.status, got.reason) == (
        "invalid",
        "rejected (401 Unauthorized): revoked, or not a token of this cluster",
    )


@pytest.mark.parametrize("status", [400, 402, 403, 500])
def test_an_auth_error_other_than_401_is_raised(api: type[FakeApi], status: int) -> None:
    error = AuthError("refused", status)
    api.answers[check.REVIEW_PATH] = error
    api.answers["/api"] = error
    with pytest.raises(AuthError) as e:
        check.check(creds(REQUEST), now=datetime(2040, 1, 1, tzinfo=UTC))
    assert e.value is error


def test_a_401_on_get_api_is_the_verdict(api: type[FakeApi]) -> None:
    api.answers[check.REVIEW_PATH] = NotFoundError("nf", 404)
    api.answers["/api"] = AuthError("Unauthorized", 401)
    got = check.check(creds(OPAQUE))
    assert got.status == "invalid"
    assert api.calls == [REVIEW_CALL, ("get", "/api", None, "get /api")]


@pytest.mark.parametrize(
    "review",
    [
        {},
        {"status": None},
        {"status": {"userInfo": None}},
        {"status": {"userInfo": {"username": 5}}},
    ],
)
def test_a_review_without_a_username_is_no_identity(api: type[FakeApi], review: Any) -> None:
    api.answers[check.REVIEW_PATH] = review
    got = check.check(creds(OPAQUE))
    assert (got.status, got.identity) == ("valid", None)


def test_the_last_used_label_is_asked_only_for_a_secret_token(api: type[FakeApi]) -> None:
    check.check(creds(REQUEST), now=datetime(2029, 1, 1, tzinfo=UTC))
    assert api.calls == [REVIEW_CALL, ("close",)]
    Answering.calls = []
    check.check(creds(LEGACY), want_last_used=False)
    assert api.calls == [REVIEW_CALL, ("close",)]


@pytest.mark.parametrize(
    ("payload", "namespace"),
    [
        ({"kubernetes.io/serviceaccount/secret.name": "s"}, None),
        ({"kubernetes.io/serviceaccount/namespace": "ci"}, "ci"),
        ({"kubernetes.io/serviceaccount/namespace": "ci", "kubernetes.io/serviceaccount/secret.name": 5}, "ci"),
    ],
)  # fmt: skip
def test_no_last_used_request_without_namespace_and_secret_name(
    api: type[FakeApi], payload: dict[str, Any], namespace: str | None
) -> None:
    token = jwt({"iss": "kubernetes/serviceaccount", **payload})
    got = check.check(creds(token))
    assert (got.token_kind, got.namespace, got.last_used) == ("secret", namespace, None)
    assert api.calls == [REVIEW_CALL, ("close",)]


def test_the_secrets_path_is_quoted(api: type[FakeApi]) -> None:
    token = jwt(
        {
            "kubernetes.io/serviceaccount/namespace": "c i",
            "kubernetes.io/serviceaccount/secret.name": "a/b",
        }
    )
    api.answers["/api/v1/namespaces/c%20i/secrets/a%2Fb"] = {
        "metadata": {"labels": {"kubernetes.io/legacy-token-last-used": "2026-12-02"}}
    }
    got = check.check(creds(token))
    assert got.last_used == "2026-12-02"
    assert api.calls[1] == (
        "get",
        "/api/v1/namespaces/c%20i/secrets/a%2Fb",
        None,
        "get secrets in namespace c i",
    )


SECRET_PATH = "/api/v1/namespaces/ci/secrets/bot-token"


@pytest.mark.parametrize(
    "answer",
    [
        AuthError("forbidden", 403),
        NotFoundError("nf", 404),
        {},
        {"metadata": None},
        {"metadata": {"labels": None}},
        {"metadata": {"labels": {"kubernetes.io/legacy-token-last-used": 5}}},
    ],
)
def test_no_last_used_when_the_secret_cannot_tell(api: type[FakeApi], answer: Any) -> None:
    api.answers[SECRET_PATH] = answer
    got = check.check(creds(LEGACY))
    assert (got.status, got.last_used) == ("valid", None)


def test_a_failed_secret_read_is_logged_at_debug(
    api: type[FakeApi], caplog: pytest.LogCaptureFixture
) -> None:
    api.answers[SECRET_PATH] = ApiError("boom", 500)
    with caplog.at_level(logging.DEBUG, logger="bootstrap"):
        got = check.check(creds(LEGACY))
    assert got.last_used is None
    (record,) = caplog.records
    assert (record.levelno, record.getMessage()) == (
        logging.DEBUG,
        "could not read the token's own Secret",
    )
    assert record.exc_info is not None and record.exc_info[1] is api.answers[SECRET_PATH]


RULES_PATH = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"


def test_can_and_groups_are_asked_and_kept(api: type[FakeApi]) -> None:
    api.answers[RULES_PATH] = {
        "status": {"resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}
    }
    api.answers["/apis"] = {"groups": [{"name": "apps"}]}
    got = check.check(creds(OPAQUE), want_can=True, want_groups=True)
    assert got.can is not None and got.can.namespace == "default"
    assert got.groups == ("", "apps")
    assert api.calls[1][:2] == ("post", RULES_PATH)
    assert api.calls[1][2]["spec"] == {"namespace": "default"}
    assert api.calls[-1] == ("close",)


def test_can_and_groups_that_fail_are_warned_about(
    api: type[FakeApi], caplog: pytest.LogCaptureFixture
) -> None:
    api.answers[RULES_PATH] = ApiError("no rules", 500)
    api.answers["/apis"] = ApiError("no groups", 500)
    with caplog.at_level(logging.WARNING, logger="bootstrap"):
        got = check.check(creds(OPAQUE), want_can=True, want_groups=True)
    assert (got.can, got.groups) == (None, None)
    assert [r.getMessage() for r in caplog.records] == [
        "warning: could not find out what the token can do: no rules",
        "warning: could not list the API groups the token can discover: no groups",
    ]


# --- the verdict -------------------------------------------------------------------------


def test_stamp_is_utc_to_the_second() -> None:
    moment = datetime(2030, 1, 1, 2, 3, 4, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert check.stamp(moment) == "2030-01-01T00:03:04Z"


def test_human_at_each_unit_boundary() -> None:
    assert [check.human(s) for s in (-5, 0, 1, 59, 60, 3599, 3600, 86399, 86400, 86401)] == [
        "0s",
        "0s",
        "1s",
        "59s",
        "1m",
        "59m59s",
        "1h",
        "23h59m59s",
        "1d",
        "1d1s",
    ]


def test_until_with_no_seconds_left_is_past() -> None:
    assert check.until(result("valid", expires_at=EXP, seconds_left=0)) == (
        "2030-01-01T00:00:00Z (past)"
    )
    assert check.until(result("valid", expires_at=EXP, seconds_left=1)) == (
        "2030-01-01T00:00:00Z (in 1s)"
    )


def test_each_failure_in_words_with_its_exit_code() -> None:
    invalid = check.failure(result("invalid", reason="r"), "dev.env")
    assert invalid is not None and invalid.exit_code == 11
    assert str(invalid) == (
        "the token in dev.env is rejected by https://a (401): it was revoked (its Secret or "
        "ServiceAccount deleted) or is not a token of this cluster; issue a new one"
    )
    expired = check.failure(result("expired", reason="expired at 2030-01-01T00:00:00Z"), "f")
    assert expired is not None and expired.exit_code == 12
    assert str(expired) == "the token in f expired at 2030-01-01T00:00:00Z; issue a new one"
    soon = check.failure(result("expires-soon", reason="expires at X, within 1h"), "f")
    assert soon is not None and soon.exit_code == 13
    assert str(soon) == "the token in f expires at X, within 1h (--expires-within)"
    assert check.failure(result("valid"), "f") is None


def test_a_result_is_ok_only_when_valid() -> None:
    assert [result(s).ok for s in ("valid", "expires-soon", "expired", "invalid")] == [
        True,
        False,
        False,
        False,
    ]


def test_text_of_an_invalid_token_says_no_expiry_and_the_reason() -> None:
    text = check.render_text(
        result("invalid", identity=None, token_kind="request", secret=None, last_used=None,
               expires_at=EXP, seconds_left=-5, reason="rejected"),
        "f",
    )  # fmt: skip
    assert text == (
        "f: invalid\n"
        "  apiserver:  https://a\n"
        "  format:     env\n"
        "  identity:   -\n"
        "  token:      TokenRequest token\n"
        "  reason:     rejected\n"
    )


def test_text_of_foreign_values_is_made_visible() -> None:
    text = check.render_text(
        result("expires-soon", server="https://a\x1b]0;x\x07", identity="me\rroot",
               expires_at=EXP, seconds_left=60, reason="soon"),
        "f\x1b[2J",
    )  # fmt: skip
    assert text == (
        "f\\x1b[2J: expires-soon\n"
        "  apiserver:  https://a\\x1b]0;x\\x07\n"
        "  format:     env\n"
        "  identity:   me\\x0droot\n"
        "  token:      legacy Secret token (Secret ci/bot-token)\n"
        "  expires:    2030-01-01T00:00:00Z (in 1m)\n"
        "  last used:  2026-11-29\n"
        "  reason:     soon\n"
    )


CAN = Rules(
    namespace="ci",
    can=({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},),
    incomplete=True,
    evaluation_error="webhook down",
)


def test_text_and_json_with_what_the_token_can_do() -> None:
    from bootstrap.steps import rules

    with_can = result("valid", can=CAN, groups=("", "apps"))
    plain = check.render_text(result("valid"), "f")
    assert check.render_text(with_can, "f") == plain + rules.render(CAN, ("", "apps"))
    document = json.loads(check.render_json(with_can, "f"))
    assert (document["can"], document["can_incomplete"], document["can_evaluation_error"]) == (
        [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
        True,
        "webhook down",
    )


@pytest.mark.parametrize(
    ("status", "valid"),
    [("valid", True), ("expires-soon", True), ("expired", False), ("invalid", False)],
)
def test_json_valid_is_true_while_the_token_works(status: str, valid: bool) -> None:
    document = json.loads(check.render_json(result(status, expires_at=EXP), "f"))
    assert (document["status"], document["valid"], document["expires_at"]) == (
        status,
        valid,
        "2030-01-01T00:00:00Z",
    )
    assert check.render_json(result(status), "f").endswith("\n}\n")


# --- second pass: what the full run still let through ----------------------------------------


def test_the_payloads_padding_comes_from_the_payload_not_the_header() -> None:
    # A four-character header would add no padding to a payload that needs two.
    payload = _b64('{"a":1}')
    assert len(payload) % 4 == 2
    assert check.claims(f"abcd.{payload}.s") == {"a": 1}


def test_a_z_expiry_is_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert check.expiry(None, "2031-05-06T07:08:09Z") == datetime(
            2031, 5, 6, 7, 8, 9, tzinfo=UTC
        )
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_result_cannot_be_changed() -> None:
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        result("valid").status = "invalid"  # type: ignore[misc]


def test_a_request_tokens_namespace_wins_over_the_files(api: type[FakeApi]) -> None:
    got = check.check(creds(REQUEST, namespace="other"), now=datetime(2029, 1, 1, tzinfo=UTC))
    assert (got.token_kind, got.namespace) == ("request", "ci")


@pytest.mark.parametrize("answer", [AuthError("forbidden", 403), NotFoundError("nf", 404)])
def test_a_secret_the_token_may_not_read_is_not_logged(
    api: type[FakeApi], caplog: pytest.LogCaptureFixture, answer: ApiError
) -> None:
    api.answers[SECRET_PATH] = answer
    with caplog.at_level(logging.DEBUG, logger="bootstrap"):
        got = check.check(creds(LEGACY))
    assert got.last_used is None
    assert caplog.records == []
