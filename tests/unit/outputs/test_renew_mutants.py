"""renew.py rules that mutants of it survived: the file read as the caller's own, what
makes it unreadable or foreign, the server and mode compared, where its token is
checked (the kubeconfig's endpoint, never the file's), what check.check is asked, the
identity compared, and when a revoked token is rotated. `check.check` is a spy (no
server); literal expectations."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bootstrap.errors import UsageError
from bootstrap.kube.target import Target
from bootstrap.outputs import check, renew
from bootstrap.outputs.emit import Issued, render_env, render_kubeconfig
from bootstrap.run import Options
from tests.unit.outputs.test_renew_decisions import SERVER, TARGET, _result, _write
from tests.unit.outputs.test_renew_rules import TOKEN

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
SECRET_ID = "system:serviceaccount:default:default"


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """asked[0]: what check.check returns (or raises); then (creds, kwargs) per call."""
    box: list[Any] = [_result("valid")]

    def fake(creds: Any, **kwargs: Any) -> check.Result:
        box.append((creds, kwargs))
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]

    monkeypatch.setattr(check, "check", fake)
    return box


def options(out: Path, **flags: Any) -> Options:
    return Options(cluster="c", out=str(out), timeout=7, **flags)


def decide(out: Path, window: int = 3600, target: Target = TARGET, **flags: Any) -> renew.Decision:
    return renew.decide(options(out, **flags), SERVER, out.parent, window, target)


def test_without_an_output_file_renew_before_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        renew.decide(options(Path("-")), SERVER, tmp_path, 60, TARGET)
    assert str(caught.value) == (
        "--renew-before needs an output file (not --out - nor --format github)"
    )


def test_a_file_that_is_not_utf8_or_not_ours_to_parse_is_renewed(tmp_path: Path) -> None:
    out = tmp_path / "prod.env"
    out.write_bytes(b"\xff\n")
    assert decide(out) == renew.Decision(
        False,
        f"{out} cannot be read back ('utf-8' codec can't decode byte 0xff in position 0: "
        "invalid start byte)",
    )
    out.write_text("APISERVER=https://k:6443\n")
    assert decide(out) == renew.Decision(
        False, f"{out} cannot be read back (no APISERVER and TOKEN variables found in the file)"
    )


def test_a_foreign_file_is_renewed(tmp_path: Path, asked: list[Any]) -> None:
    out = _write(tmp_path)
    out.write_text(out.read_text() + "export BASH_ENV='/tmp/x'\n")
    assert decide(out) == renew.Decision(
        False, f"{out} has an unknown line (env line 7): not as bootstrap-token wrote it"
    )
    assert len(asked) == 1  # never checked


def test_another_server_or_mode_is_renewed(tmp_path: Path, asked: list[Any]) -> None:
    out = _write(tmp_path, "https://other:6443")
    assert decide(out) == renew.Decision(False, f"{out} is for https://other:6443, not {SERVER}")
    out = _write(tmp_path)
    assert decide(out, mode="request") == renew.Decision(
        False, f"{out} holds a secret token, not a request one"
    )
    assert len(asked) == 1


def test_the_token_is_checked_at_the_kubeconfigs_endpoint_with_the_window(
    tmp_path: Path, asked: list[Any]
) -> None:
    out = tmp_path / "prod.env"
    issued = Issued(
        cluster="c", server=SERVER, namespace="default", service_account="default",
        secret="default-token", token=TOKEN, ca_pem=None, identity=SECRET_ID,
        tls_server_name="evil-name", proxy_url="http://evil:3128",
    )  # fmt: skip
    out.write_text(render_env(issued, tmp_path / "prod.ca.crt"))
    target = Target(
        cluster="c", server="https://kube:6443", context="x", user_name="u", user={},
        ca_data=PEM, ca_file=None, insecure=False, tls_server_name="kubernetes",
        proxy_url="http://proxy:3128",
    )  # fmt: skip
    assert decide(out, 600, target).keep is True
    creds, kwargs = asked[1]
    assert kwargs == {"expires_within": 600, "timeout": 7, "want_last_used": False}
    assert (creds.server, creds.ca_pem, creds.ca_file, creds.insecure) == (
        "https://kube:6443", PEM, None, False,
    )  # fmt: skip
    assert (creds.tls_server_name, creds.proxy_url, creds.token) == (
        "kubernetes", "http://proxy:3128", TOKEN,
    )  # fmt: skip
    # --server (e.g. kubectl proxy) wins over the kubeconfig's server.
    assert decide(out, 600, target, server="http://127.0.0.1:8001").keep is True
    assert asked[2][0].server == "http://127.0.0.1:8001"


def test_a_kubeconfig_output_is_read_at_its_own_context(tmp_path: Path, asked: list[Any]) -> None:
    issued = Issued(
        cluster="c", server=SERVER, namespace="default", service_account="default",
        secret="default-token", token=TOKEN, ca_pem=None, identity=SECRET_ID,
    )  # fmt: skip
    out = tmp_path / "prod.kubeconfig"
    out.write_text(render_kubeconfig(issued))
    out.chmod(0o600)
    got = decide(out, format="kubeconfig")
    assert got.keep is True, got.message


def test_another_identity_is_renewed_an_unknown_one_kept(tmp_path: Path, asked: list[Any]) -> None:
    out = _write(tmp_path)
    other = _result("valid")
    asked[0] = other.__class__(**{**other.__dict__, "identity": "system:serviceaccount:x:y"})
    assert decide(out) == renew.Decision(
        False, f"{out} authenticates as system:serviceaccount:x:y, not {SECRET_ID}"
    )
    asked[0] = other.__class__(**{**other.__dict__, "identity": None})
    assert decide(out).keep is True


def test_a_revoked_token_is_renewed_fresh(tmp_path: Path, asked: list[Any]) -> None:
    out = _write(tmp_path)
    asked[0] = _result("invalid", "rejected")
    assert decide(out) == renew.Decision(
        False, f"the token in {out} is rejected by the server (revoked)", fresh=True
    )


def test_a_revoked_request_token_is_not_rotated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    revoked = renew.Decision(False, "revoked", fresh=True)
    monkeypatch.setattr(renew, "decide", lambda *args: revoked)
    with caplog.at_level(logging.DEBUG, logger="bootstrap"):
        got, kept = renew.renew_or_keep(
            options(tmp_path / "f", mode="request"), TARGET, tmp_path, "1h"
        )
    assert (got.rotate, kept) == (False, "")
    assert [r.getMessage() for r in caplog.records] == ["renewing: revoked"]
    renewed = renew.Decision(False, "expired", fresh=False)
    monkeypatch.setattr(renew, "decide", lambda *args: renewed)
    assert renew.renew_or_keep(options(tmp_path / "f"), TARGET, tmp_path, "1h")[0].rotate is False


def test_renew_or_keep_passes_the_window_and_the_server_compared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, int]] = []

    def spy(opts: Options, server: str, cwd: Path, window: int, target: Target) -> renew.Decision:
        calls.append((server, window))
        return renew.Decision(True, "kept")

    monkeypatch.setattr(renew, "decide", spy)
    renew.renew_or_keep(options(tmp_path / "f"), TARGET, tmp_path, "1h30m")
    renew.renew_or_keep(options(tmp_path / "f", emit_server="https://pub"), TARGET, tmp_path, "0s")
    assert calls == [(SERVER, 5400), ("https://pub", 0)]


def test_a_server_named_by_the_file_cannot_forge_a_line(tmp_path: Path, asked: list[Any]) -> None:
    out = tmp_path / "prod.json"
    from bootstrap.outputs.emit import render_json

    issued = Issued(
        cluster="c", server="https://a\nerror: forged\x1b[2J", namespace="default",
        service_account="default", secret="default-token", token=TOKEN, ca_pem=None,
        identity=SECRET_ID,
    )  # fmt: skip
    out.write_text(render_json(issued, None))
    assert json.loads(out.read_text())["apiserver"] == "https://a\nerror: forged\x1b[2J"
    assert decide(out, format="json") == renew.Decision(
        False, f"{out} is for https://a\\x0aerror: forged\\x1b[2J, not {SERVER}"
    )


def test_a_yaml_file_the_safe_loader_cannot_construct_is_renewed(tmp_path: Path) -> None:
    out = tmp_path / "prod.kubeconfig"
    out.write_text("kind: Secret\nx: !!int abc\n")
    assert decide(out, format="kubeconfig") == renew.Decision(
        False,
        f"{out} cannot be read back (the file is neither env, dotenv, JSON nor a kubeconfig)",
    )
