"""check.py's verdicts in-process: `check()` against a fake `client.Api` that records what
was asked (no network), and the words of the text and JSON reports. Literal expectations."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bootstrap.errors import ApiError, AuthError, NotFoundError
from bootstrap.kube import client
from bootstrap.outputs import check
from bootstrap.outputs.readback import FileCredentials
from tests.unit.outputs.test_check import LEGACY, REQUEST, jwt, result

UTC = timezone.utc
EXP = datetime(2030, 1, 1, tzinfo=UTC)  # REQUEST's exp
WHOAMI = {"status": {"userInfo": {"username": "system:serviceaccount:ci:bot"}}}
SECRET = {"metadata": {"labels": {"kubernetes.io/legacy-token-last-used": "2026-12-01"}}}


class FakeApi:
    """Stands for client.Api: answers from `answers` (path -> body or exception)."""

    answers: ClassVar[dict[str, Any]] = {}
    calls: ClassVar[list[tuple[str, str, Any, str]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def _answer(self, path: str) -> Any:
        answer = FakeApi.answers[path]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def post(self, path: str, body: Any, what: str) -> Any:
        FakeApi.calls.append(("post", path, body, what))
        return self._answer(path)

    def get(self, path: str, what: str) -> Any:
        FakeApi.calls.append(("get", path, None, what))
        return self._answer(path)

    def close(self) -> None:
        pass


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> type[FakeApi]:
    monkeypatch.setattr(client, "Api", FakeApi)
    FakeApi.answers = {check.REVIEW_PATH: WHOAMI, "/api": {"versions": ["v1"]}}
    FakeApi.calls = []
    return FakeApi


def creds(token: str, namespace: str | None = None) -> FileCredentials:
    return FileCredentials(format="env", server="https://a", token=token, namespace=namespace)


REVIEW_CALL = (
    "post",
    "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    "create selfsubjectreviews",
)


def test_a_legacy_token_reads_its_last_used_label(api: type[FakeApi]) -> None:
    api.answers["/api/v1/namespaces/ci/secrets/bot-token"] = SECRET
    got = check.check(creds(LEGACY))
    assert (got.status, got.identity, got.token_kind) == (
        "valid",
        "system:serviceaccount:ci:bot",
        "secret",
    )
    assert (got.namespace, got.secret, got.last_used) == ("ci", "bot-token", "2026-12-01")
    assert api.calls == [
        REVIEW_CALL,
        ("get", "/api/v1/namespaces/ci/secrets/bot-token", None, "get secrets in namespace ci"),
    ]


def test_the_tokens_namespace_wins_over_the_files(api: type[FakeApi]) -> None:
    got = check.check(creds(LEGACY, namespace="other"), want_last_used=False)
    assert got.namespace == "ci"
    assert api.calls == [REVIEW_CALL]


def test_seconds_left_and_expires_soon(api: type[FakeApi]) -> None:
    now = datetime(2029, 12, 31, 23, 0, tzinfo=UTC)
    got = check.check(creds(REQUEST), now=now, expires_within=3599)
    assert (got.status, got.seconds_left, got.reason) == ("valid", 3600, None)
    got = check.check(creds(REQUEST), now=now, expires_within=3600)
    assert (got.status, got.reason) == (
        "expires-soon",
        "expires at 2030-01-01T00:00:00Z, within 1h",
    )
    # Expiring right now is "soon" even with the default window of 0.
    got = check.check(creds(REQUEST), now=EXP)
    assert (got.status, got.seconds_left, got.reason) == (
        "expires-soon",
        0,
        "expires at 2030-01-01T00:00:00Z, within 0s",
    )


def test_a_401_is_expired_or_invalid(api: type[FakeApi]) -> None:
    api.answers[check.REVIEW_PATH] = AuthError("Unauthorized", 401)
    got = check.check(creds(REQUEST), now=datetime(2030, 1, 2, tzinfo=UTC))
    assert (got.status, got.reason) == ("expired", "expired at 2030-01-01T00:00:00Z")
    got = check.check(creds(REQUEST), now=datetime(2029, 1, 2, tzinfo=UTC))
    assert (got.status, got.reason) == (
        "invalid",
        "rejected (401 Unauthorized): revoked, or not a token of this cluster",
    )


@pytest.mark.parametrize("error", [NotFoundError("nf", 404), AuthError("forbidden", 403)])
def test_without_a_review_get_api_proves_the_token(api: type[FakeApi], error: ApiError) -> None:
    api.answers[check.REVIEW_PATH] = error
    got = check.check(creds(REQUEST), now=datetime(2029, 1, 2, tzinfo=UTC))
    assert (got.status, got.identity) == ("valid", None)
    assert api.calls == [REVIEW_CALL, ("get", "/api", None, "get /api")]


def test_can_is_asked_in_the_tokens_namespace(api: type[FakeApi]) -> None:
    rules_path = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
    api.answers[rules_path] = ApiError("refused", 500)
    got = check.check(creds(LEGACY), want_last_used=False, want_can=True)
    assert got.can is None
    assert api.calls[1][:3] == (
        "post",
        rules_path,
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": "ci"},
        },
    )


def test_an_iss_of_kubernetes_serviceaccount_is_a_secret_token() -> None:
    assert check.token_kind({"iss": "kubernetes/serviceaccount"}) == "secret"
    assert check.token_kind(check.claims(jwt({"iss": "kubernetes/serviceaccount"}))) == "secret"
    assert check.token_kind({"iss": "https://kubernetes.default.svc"}) == "unknown"


def test_own_ca_keeps_an_embedded_ca_and_drops_the_path(tmp_path: Path) -> None:
    embedded = FileCredentials(
        format="env", server="https://a", token="t", ca_pem=b"PEM", ca_file="/etc/passwd"
    )
    got = check.own_ca(embedded, tmp_path)
    assert (got.ca_pem, got.ca_file) == (b"PEM", None)


def test_human_and_until() -> None:
    assert check.human(1) == "1s"
    assert check.until(result("valid", expires_at=EXP, seconds_left=3600)) == (
        "2030-01-01T00:00:00Z (in 1h)"
    )
    assert check.until(result("expired", expires_at=EXP, seconds_left=None)) == (
        "2030-01-01T00:00:00Z (past)"
    )


def test_text_of_a_valid_token_without_identity_or_known_kind() -> None:
    text = check.render_text(
        result("valid", identity=None, token_kind="unknown", secret=None, last_used=None), "f"
    )
    assert text.splitlines() == [
        "f: valid",
        "  apiserver:  https://a",
        "  format:     env",
        "  identity:   (not reported)",
        "  token:      unknown kind",
        "  expires:    unknown (the token carries no expiry)",
    ]


def test_json_is_indented_by_two_and_valid_is_true() -> None:
    text = check.render_json(result("valid"), "f")
    assert text.startswith('{\n  "apiVersion": "bootstrap-token/v1",\n  "kind": "TokenCheck",\n')
    assert '\n  "valid": true,\n' in text
