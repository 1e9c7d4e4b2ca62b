"""renew.py's decisions in-process, with `check.check` replaced by a stub (no server): each
reason to renew or keep, the exact messages, and what `renew_or_keep` hands back."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest

from bootstrap.errors import ConfigError, TLSVerificationError, UsageError
from bootstrap.kube.target import Target
from bootstrap.outputs import check, renew
from bootstrap.outputs.emit import Issued, render_env
from bootstrap.run import Options
from tests.unit.outputs.test_renew_rules import TOKEN

SERVER = "https://k:6443"
TARGET = Target(
    cluster="c", server=SERVER, context="x", user_name="u", user={}, ca_data=None,
    ca_file=None, insecure=False, tls_server_name=None, proxy_url=None,
)  # fmt: skip


def _result(status: str, reason: str | None = None) -> check.Result:
    return check.Result(
        status=status, server=SERVER, format="env",
        identity="system:serviceaccount:default:default", token_kind="secret",
        expires_at=None, seconds_left=None, last_used=None, secret="default-token",
        namespace="default", reason=reason,
    )  # fmt: skip


@pytest.fixture
def answer(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What the stubbed check.check returns (or raises): answer[0]."""
    box: list[Any] = [_result("valid")]

    def fake(*args: Any, **kwargs: Any) -> check.Result:
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]

    monkeypatch.setattr(check, "check", fake)
    return box


def _write(tmp_path: Path, server: str = SERVER) -> Path:
    out = tmp_path / "prod.env"
    issued = Issued(
        cluster="c", server=server, namespace="default", service_account="default",
        secret="default-token", token=TOKEN, ca_pem=None,
        identity="system:serviceaccount:default:default",
    )  # fmt: skip
    out.write_text(render_env(issued, None))
    out.chmod(0o600)
    return out


def _options(out: Path, **flags: Any) -> Options:
    return Options(cluster="c", out=str(out), timeout=5, **flags)


def test_a_decision_is_frozen_and_not_fresh_by_default(tmp_path: Path, answer: list[Any]) -> None:
    # Imported here, and made by decide() (a line of renew.py): scripts/mutation serves an
    # import-time mutant (the dataclass's frozen=True) to a fresh import, in the tests
    # that run a line of the module.
    from bootstrap.outputs import renew as fresh

    out = tmp_path / "prod.env"
    decision = fresh.decide(_options(out), SERVER, tmp_path, 3600, TARGET)
    assert decision.fresh is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.keep = True  # type: ignore[misc]


def test_a_missing_file_is_renewed_under_the_same_name(tmp_path: Path, answer: list[Any]) -> None:
    out = tmp_path / "prod.env"
    got = renew.decide(_options(out), SERVER, tmp_path, 3600, TARGET)
    assert got == renew.Decision(False, f"{out} does not exist yet", fresh=False)


def test_a_trailing_slash_in_the_file_is_the_same_server(tmp_path: Path, answer: list[Any]) -> None:
    out = _write(tmp_path, SERVER + "/")
    got = renew.decide(_options(out), SERVER, tmp_path, 3600, TARGET)
    assert got.keep is True


@pytest.mark.parametrize(
    "error", [TLSVerificationError("certificate verify failed"), ConfigError("bad proxy")]
)
def test_a_file_that_cannot_be_checked_is_renewed(
    tmp_path: Path, answer: list[Any], error: Exception
) -> None:
    out = _write(tmp_path)
    answer[0] = error
    got = renew.decide(_options(out), SERVER, tmp_path, 3600, TARGET)
    assert got == renew.Decision(False, f"{out} cannot be checked: {error}")


def test_an_expired_or_soon_expiring_token_is_renewed(tmp_path: Path, answer: list[Any]) -> None:
    out = _write(tmp_path)
    answer[0] = _result("expires-soon", "expires at 2030-01-01T00:00:00Z, within 1h")
    got = renew.decide(_options(out), SERVER, tmp_path, 3600, TARGET)
    assert got == renew.Decision(
        False, f"the token in {out} expires at 2030-01-01T00:00:00Z, within 1h"
    )


def test_renew_or_keep_keeps_a_good_file(tmp_path: Path, answer: list[Any]) -> None:
    out = _write(tmp_path)
    options = _options(out)
    got = renew.renew_or_keep(options, TARGET, tmp_path, "0s")
    assert got[0] is options
    assert got[1] == (
        f"{out} is still valid: does not expire (a Secret token: valid until its Secret is "
        "deleted); nothing to do (renewed only within 0s of expiry)"
    )


def test_renew_or_keep_compares_with_the_emitted_server(tmp_path: Path, answer: list[Any]) -> None:
    out = _write(tmp_path, "https://public:443")
    options = _options(out, emit_server="https://public:443")
    assert renew.renew_or_keep(options, TARGET, tmp_path, "1h")[1].startswith(
        f"{out} is still valid: "
    )


def test_renew_or_keep_names_its_flag(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        renew.renew_or_keep(_options(tmp_path / "f"), TARGET, tmp_path, "soon")
    assert str(e.value) == ("--renew-before 'soon' is not a duration like 1h, 30m, 1h30m or 3600s")


def test_a_revoked_secret_token_is_rotated_and_logged(
    tmp_path: Path, answer: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    out = _write(tmp_path)
    answer[0] = _result("invalid", "rejected")
    with caplog.at_level(logging.DEBUG, logger="bootstrap"):
        options, kept = renew.renew_or_keep(_options(out), TARGET, tmp_path, "1h")
    assert (options.rotate, kept) == (True, "")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("bootstrap", f"renewing: the token in {out} is rejected by the server (revoked)")
    ]


def test_an_expired_token_is_renewed_without_rotating(tmp_path: Path, answer: list[Any]) -> None:
    out = _write(tmp_path)
    answer[0] = _result("expired", "expired at 2030-01-01T00:00:00Z")
    options, kept = renew.renew_or_keep(_options(out), TARGET, tmp_path, "1h")
    assert (options.rotate, kept) == (False, "")
