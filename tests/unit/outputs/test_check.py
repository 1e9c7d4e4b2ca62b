"""bootstrap.outputs.readback and bootstrap.outputs.check's pure parts: format detection and parsing of every output format,
JWT claims read without verification, the verdict texts, exit codes and json schema."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from bootstrap.errors import EXIT_CODES, UsageError
from bootstrap.outputs.check import (
    Result,
    claims,
    expiry,
    failure,
    human,
    render_json,
    render_text,
    token_kind,
)
from bootstrap.outputs.readback import detect, parse
from bootstrap.steps.tokenrequest import parse_duration

UTC = timezone.utc


def jwt(payload: dict[str, object]) -> str:
    def part(document: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(payload)}.c2lnbmF0dXJl"


LEGACY = jwt(
    {
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": "ci",
        "kubernetes.io/serviceaccount/secret.name": "bot-token",
        "sub": "system:serviceaccount:ci:bot",
    }
)
REQUEST = jwt(
    {
        "iss": "https://kubernetes.default.svc",
        "exp": 1893456000,  # 2030-01-01T00:00:00Z
        "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "bot", "uid": "u"}},
        "sub": "system:serviceaccount:ci:bot",
    }
)


def test_detect_each_format() -> None:
    assert detect("# c\nexport APISERVER='x'\nexport TOKEN='y'\n") == "env"
    assert detect("APISERVER=x\nTOKEN=y\n") == "dotenv"
    assert detect('{"apiserver": "x"}') == "json"
    assert detect("apiVersion: v1\nkind: Config\n") == "kubeconfig"


def test_env_with_hostile_quoting_and_a_relative_cacert(tmp_path: Path) -> None:
    text = (
        "# bootstrap-token: x\n"
        "export APISERVER='https://h:6443'\n"
        f"export TOKEN='{LEGACY}'\n"
        "export CACERT='dev.ca.crt'\n"
        "export NAMESPACE='it'\"'\"'s'\n"
    )
    creds = parse(text, tmp_path)
    assert (creds.format, creds.server, creds.token) == ("env", "https://h:6443", LEGACY)
    assert creds.ca_file == str(tmp_path / "dev.ca.crt")
    assert creds.namespace == "it's"
    assert LEGACY not in repr(creds)


def test_env_prefix_is_found_or_must_be_given(tmp_path: Path) -> None:
    one = "export DEV_APISERVER='https://a'\nexport DEV_TOKEN='t1'\n"
    assert parse(one, tmp_path).server == "https://a"
    two = one + "export PROD_APISERVER='https://b'\nexport PROD_TOKEN='t2'\n"
    with pytest.raises(UsageError, match=r"several credentials .* DEV_, PROD_"):
        parse(two, tmp_path)
    assert parse(two, tmp_path, prefix="PROD_").token == "t2"


def test_dotenv_takes_values_verbatim(tmp_path: Path) -> None:
    creds = parse("APISERVER=https://a\nTOKEN=abc'd\nEXPIRES_AT=2030-01-01T00:00:00Z\n", tmp_path)
    assert (creds.format, creds.token, creds.expires_at) == (
        "dotenv",
        "abc'd",
        "2030-01-01T00:00:00Z",
    )


def test_json_v1_reads_ca_pem_and_cacert_path(tmp_path: Path) -> None:
    v1 = {"apiVersion": "bootstrap-token/v1", "apiserver": "https://a", "token": "t"}
    embedded = parse(json.dumps({**v1, "ca_pem": "PEM", "cacert_path": None}), tmp_path)
    assert (embedded.ca_pem, embedded.ca_file) == (b"PEM", None)
    on_disk = parse(json.dumps({**v1, "ca_pem": None, "cacert_path": "dev.ca.crt"}), tmp_path)
    assert (on_disk.ca_pem, on_disk.ca_file) == (None, str(tmp_path / "dev.ca.crt"))


def test_json_with_embedded_ca_and_new_fields(tmp_path: Path) -> None:
    """Files written before schema v1 named the CA `ca_crt` (PEM) and `cacert` (path)."""
    text = json.dumps(
        {
            "apiserver": "https://a",
            "token": "t",
            "ca_crt": "PEM",
            "cacert": None,
            "tls_server_name": "kubernetes",
            "proxy_url": "http://proxy:3128",
        }
    )
    creds = parse(text, tmp_path)
    assert (creds.format, creds.ca_pem, creds.ca_file) == ("json", b"PEM", None)
    assert (creds.tls_server_name, creds.proxy_url) == ("kubernetes", "http://proxy:3128")


def test_kubeconfig_current_or_named_context(tmp_path: Path) -> None:
    document = {
        "apiVersion": "v1",
        "clusters": [
            {
                "name": "dev",
                "cluster": {
                    "server": "https://a",
                    "certificate-authority": "ca.crt",
                    "tls-server-name": "kubernetes",
                },
            }
        ],
        "users": [{"name": "u1", "user": {"token": "t1"}}, {"name": "u2", "user": {"token": "t2"}}],
        "contexts": [
            {"name": "one", "context": {"cluster": "dev", "user": "u1", "namespace": "ci"}},
            {"name": "two", "context": {"cluster": "dev", "user": "u2"}},
        ],
        "current-context": "one",
    }
    text = yaml.safe_dump(document)
    creds = parse(text, tmp_path)
    assert (creds.token, creds.namespace, creds.tls_server_name) == ("t1", "ci", "kubernetes")
    assert creds.ca_file == str(tmp_path / "ca.crt")
    assert parse(text, tmp_path, context="two").token == "t2"
    with pytest.raises(UsageError, match="no context 'three'"):
        parse(text, tmp_path, context="three")


@pytest.mark.parametrize(
    "text",
    ["", "hello", "export FOO='x'\n", '{"apiserver": 1}', "[1, 2]", "export A='unterminated\n"],
)
def test_files_without_credentials_are_usage_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(UsageError):
        parse(text, tmp_path)


def test_claims_kind_and_expiry() -> None:
    assert token_kind(claims(LEGACY)) == "secret"
    assert expiry(claims(LEGACY), None) is None
    assert token_kind(claims(REQUEST)) == "request"
    assert expiry(claims(REQUEST), None) == datetime(2030, 1, 1, tzinfo=UTC)
    assert claims("opaque-token") is None
    assert token_kind(None) == "unknown"
    assert expiry(None, "2031-05-06T07:08:09Z") == datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_human_durations() -> None:
    assert [human(s) for s in (0, 59, 3600, 5400, 90061)] == [
        "0s",
        "59s",
        "1h",
        "1h30m",
        "1d1h1m1s",
    ]


def test_duration_parser_is_shared_with_days_and_the_flag_name() -> None:
    assert parse_duration("7d", "--renew-before", minimum=0) == 604800
    assert parse_duration("0s", "--expires-within", minimum=0) == 0
    with pytest.raises(UsageError, match=r"^--expires-within 'soon' is not a duration"):
        parse_duration("soon", "--expires-within", minimum=0)
    with pytest.raises(UsageError, match=r"^--duration '5m' is too short"):
        parse_duration("5m")


def result(status: str, **changes: object) -> Result:
    fields: dict[str, object] = {
        "status": status,
        "server": "https://a",
        "format": "env",
        "identity": "system:serviceaccount:ci:bot",
        "token_kind": "secret",
        "expires_at": None,
        "seconds_left": None,
        "last_used": "2026-11-29",
        "secret": "bot-token",
        "namespace": "ci",
        "reason": None,
    }
    fields.update(changes)
    return Result(**fields)  # type: ignore[arg-type]


def test_exit_codes() -> None:
    assert failure(result("valid"), "f") is None
    codes = {s: failure(result(s, reason="r"), "f") for s in ("invalid", "expired", "expires-soon")}
    assert {s: e.exit_code for s, e in codes.items() if e} == {
        "invalid": 11,
        "expired": 12,
        "expires-soon": 13,
    }
    assert EXIT_CODES[11].startswith("check: the token is rejected")
    assert EXIT_CODES[12] == "check: the token has expired"


def test_text_says_a_secret_token_does_not_expire() -> None:
    assert render_text(result("valid"), "dev.env").splitlines() == [
        "dev.env: valid",
        "  apiserver:  https://a",
        "  format:     env",
        "  identity:   system:serviceaccount:ci:bot",
        "  token:      legacy Secret token (Secret ci/bot-token)",
        "  expires:    does not expire (a Secret token: valid until its Secret is deleted)",
        "  last used:  2026-11-29",
    ]


def test_json_schema() -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    document = json.loads(
        render_json(
            result(
                "expires-soon",
                token_kind="request",
                expires_at=expires,
                seconds_left=60,
                secret=None,
                last_used=None,
                reason="expires at 2030-01-01T00:00:00Z, within 2h",
            ),
            "stdin",
        )
    )
    assert document == {
        "apiVersion": "bootstrap-token/v1",
        "kind": "TokenCheck",
        "file": "stdin",
        "format": "env",
        "apiserver": "https://a",
        "status": "expires-soon",
        "valid": True,
        "identity": "system:serviceaccount:ci:bot",
        "token_kind": "request",
        "expires_at": "2030-01-01T00:00:00Z",
        "expires_in_seconds": 60,
        "last_used": None,
        "secret": None,
        "namespace": "ci",
        "reason": "expires at 2030-01-01T00:00:00Z, within 2h",
        "can": None,
        "can_incomplete": None,
        "can_evaluation_error": None,
    }


def test_each_command_shows_its_flags_in_help_and_help_stays_lazy() -> None:
    import subprocess
    import sys

    def helped(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "bootstrap", *args, "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert "--renew-before DURATION" in helped("issue")
    listed = helped("list")
    for flag in ("--unmanaged", "--all-namespaces", "--all-clusters", "-o, --output wide|json"):
        assert flag in listed
    checked = helped("check")
    for text in ("--expires-within DURATION", "-o, --output text|json", "13 expires within"):
        assert text in checked
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, bootstrap.commands.cli; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lazy = (
        "bootstrap.outputs.check",
        "bootstrap.outputs.readback",
        "bootstrap.steps.inventory",
        "bootstrap.outputs.renew",
    )
    for heavy in (*lazy, "bootstrap.kube.client"):
        assert f"'{heavy}'" not in loaded
