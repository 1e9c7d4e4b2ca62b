"""exec_plugin.py rules that mutants of it survived: the exact words of each refusal,
the exact environment and KUBERNETES_EXEC_INFO a plugin is given, its stdin and its
session, the deadline and the kill, and the bounds and sanitising of the stderr replay.
Literal expectations; a real tiny shell script stands for the plugin."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bootstrap.errors import ConfigError
from bootstrap.kube import exec_plugin
from bootstrap.kube.exec_plugin import ExecError, ExecResult, exec_config, parse_output

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"
BASE = {"command": "x", "apiVersion": V1, "interactiveMode": "Never"}
PATH = "/usr/bin:/bin"
CREDENTIAL = '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"plugin-token-0123"}}'


def _script(tmp_path: Path, body: str, name: str = "plugin") -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def _config(command: str, **extra: Any) -> exec_plugin.ExecConfig:
    return exec_config({**BASE, "command": command, **extra}, "u")


def _result(token: str | None = None, key: bytes | None = None) -> ExecResult:
    return ExecResult(token=token, cert_pem=b"C" if key else None, key_pem=key, expires_at=None)


# --- the exec block ----------------------------------------------------------------------


def test_every_problem_of_an_exec_block_is_named_in_one_message() -> None:
    with pytest.raises(ConfigError) as e:
        exec_config({"command": "", "apiVersion": 7, "env": [{"name": ""}]}, "u")
    assert str(e.value) == (
        "user 'u': invalid configuration: "
        "command must be specified for u to use exec authentication plugin; "
        "apiVersion must be specified for u to use exec authentication plugin; "
        "env variable name must be specified for u to use exec authentication plugin; "
        "interactiveMode must be specified for u to use exec authentication plugin"
    )


def test_an_unknown_interactive_mode_and_api_version_in_words() -> None:
    with pytest.raises(ConfigError) as e:
        exec_config({**BASE, "interactiveMode": "Sometimes"}, "u")
    assert (
        str(e.value)
        == "user 'u': invalid configuration: invalid interactiveMode for u: 'Sometimes'"
    )
    with pytest.raises(ConfigError) as e:
        exec_config({**BASE, "apiVersion": "client.authentication.k8s.io/v1alpha1"}, "u")
    assert str(e.value) == (
        "user 'u': exec plugin: invalid apiVersion 'client.authentication.k8s.io/v1alpha1'"
    )


def test_only_v1beta1_defaults_the_interactive_mode() -> None:
    config = exec_config({"command": "x", "apiVersion": V1BETA1}, "u")
    assert config.interactive_mode == "IfAvailable"
    assert exec_config({**BASE, "apiVersion": V1BETA1}, "u").interactive_mode == "Never"
    for mode in ("Never", "IfAvailable", "Always"):
        assert exec_config({**BASE, "interactiveMode": mode}, "u").interactive_mode == mode


def test_the_whole_exec_config() -> None:
    config = exec_config(
        {
            **BASE,
            "args": ["get", "token"],
            "env": [{"name": "A", "value": "1"}],
            "provideClusterInfo": True,
            "installHint": "apt install x",
        },
        "u",
    )
    assert config == exec_plugin.ExecConfig(
        command="x",
        args=("get", "token"),
        env=(("A", "1"),),
        api_version=V1,
        interactive_mode="Never",
        provide_cluster_info=True,
        install_hint="apt install x",
    )
    plain = exec_config(dict(BASE), "u")
    assert (plain.args, plain.env, plain.provide_cluster_info, plain.install_hint) == (
        (),
        (),
        False,
        "",
    )
    # Only the boolean true provides the cluster, as in client-go.
    assert exec_config({**BASE, "provideClusterInfo": "true"}, "u").provide_cluster_info is False


# --- what the plugin is told ---------------------------------------------------------------


def test_cluster_info_keeps_only_true_booleans_and_the_named_extension() -> None:
    cluster = {
        "insecure-skip-tls-verify": True,
        "disable-compression": True,
        "tls-server-name": "",
        "extensions": [
            "not a mapping",
            {"name": "client.authentication.k8s.io/exec", "extension": 1},
        ],
    }
    assert exec_plugin.cluster_info(cluster, "https://s", None) == {
        "server": "https://s",
        "insecure-skip-tls-verify": True,
        "disable-compression": True,
        "config": 1,
    }
    falsy = {"insecure-skip-tls-verify": "true", "disable-compression": 1, "extensions": None}
    assert exec_plugin.cluster_info(falsy, "https://s", b"") == {"server": "https://s"}


def test_exec_info_is_compact_json() -> None:
    config = _config("x", provideClusterInfo=True)
    assert exec_plugin.exec_info(config, True, {"server": "s"}) == (
        '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1",'
        '"spec":{"interactive":true,"cluster":{"server":"s"}}}'
    )
    assert exec_plugin.exec_info(config, False, None) == (
        '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1",'
        '"spec":{"interactive":false}}'
    )


def test_always_is_interactive_on_a_terminal() -> None:
    assert exec_plugin.is_interactive("Always", True) is True
    assert exec_plugin.is_interactive("Never", False) is False
    with pytest.raises(ExecError) as e:
        exec_plugin.is_interactive("Always", False)
    assert str(e.value) == (
        "exec plugin cannot support interactive mode: standard input is not a terminal"
    )


# --- what the plugin printed -----------------------------------------------------------------


def test_a_certificate_pair_and_an_expiry() -> None:
    stdout = json.dumps(
        {
            "apiVersion": V1,
            "kind": "ExecCredential",
            "status": {
                "clientCertificateData": "CERT",
                "clientKeyData": "KEY",
                "expirationTimestamp": "2030-01-01T00:00:00Z",
            },
        }
    ).encode()
    got = parse_output(stdout, V1)
    assert (got.token, got.cert_pem, got.key_pem, got.expires_at) == (
        None,
        b"CERT",
        b"KEY",
        "2030-01-01T00:00:00Z",
    )
    token = parse_output(CREDENTIAL.encode(), V1)
    assert (token.token, token.cert_pem, token.key_pem, token.expires_at) == (
        "plugin-token-0123",
        None,
        None,
        None,
    )
    assert repr(token) == "ExecResult(<redacted>)"


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        (b"not json", "decoding stdout: Expecting value: line 1 column 1 (char 0)"),
        (b"a\xff", "decoding stdout: 'utf-8' codec can't decode byte 0xff in position 1: invalid start byte"),
        (b"- a\n- b\n", "decoding stdout: Expecting value: line 1 column 1 (char 0)"),
        (b"{\"apiVersion\": \"" + V1.encode() + b"\", \"kind\": \"ExecCredential\", \"status\": 1}", "exec plugin didn't return a status field"),
        (b"{\"apiVersion\": \"" + V1.encode() + b"\", \"kind\": \"ExecCredential\", \"status\": {\"token\": 5}}", "decoding stdout: status fields must be strings"),
        (b"{\"apiVersion\": \"" + V1.encode() + b"\", \"kind\": \"ExecCredential\", \"status\": {\"clientKeyData\": \"K\"}}", "exec plugin returned only certificate or key, not both"),
        (b"{\"apiVersion\": \"" + V1.encode() + b"\", \"kind\": \"ExecCredential\", \"status\": {}}", "exec plugin didn't return a token or cert/key pair"),
        (b"{\"apiVersion\": \"" + V1BETA1.encode() + b"\", \"kind\": \"ExecCredential\", \"status\": {\"token\": \"t\"}}",
         f"exec plugin is configured to use API version {V1}, plugin returned version {V1BETA1}"),
        (b"{\"apiVersion\": \"\", \"kind\": \"ExecCredential\", \"status\": {\"token\": \"t\"}}",
         "decoding stdout: not an ExecCredential (kind or apiVersion missing)"),
    ],
)  # fmt: skip
def test_each_refusal_of_the_output_in_words(stdout: bytes, message: str) -> None:
    with pytest.raises(ExecError) as e:
        parse_output(stdout, V1)
    assert str(e.value) == message


def test_the_decoding_error_is_cut_at_300_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    def loads(data: bytes) -> Any:
        raise ValueError("v" * 400)

    monkeypatch.setattr(exec_plugin.json, "loads", loads)
    with pytest.raises(ExecError) as e:
        parse_output(b"{", V1)
    assert str(e.value) == "decoding stdout: " + "v" * 283
    assert len(str(e.value)) == 300


@pytest.mark.parametrize(
    "text",
    [b"a: [", b"\xff: 1", b"a: 1\n" + b"[" * 2000],
)
def test_output_yaml_cannot_decode_is_none(text: bytes) -> None:
    assert exec_plugin._yaml(text) is None


def test_yaml_that_raises_value_error_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    def boom(text: str) -> Any:
        raise ValueError("bad")

    monkeypatch.setattr(yaml, "safe_load", boom)
    assert exec_plugin._yaml(b"a: 1") is None


def test_yaml_output_tags_are_refused_not_run() -> None:
    stdout = b"!!python/object/apply:os.getpid []\n"
    assert exec_plugin._yaml(stdout) is None
    assert exec_plugin._yaml(b"a: 1\n") == {"a": 1}


# --- running it ----------------------------------------------------------------------------


def test_the_plugin_gets_exactly_its_environment(tmp_path: Path) -> None:
    out = tmp_path / "env"
    command = _script(
        tmp_path,
        f'for v in A B PATH KUBERNETES_EXEC_INFO; do eval "echo $v=\\${{$v-unset}}"; done > {out}\n'
        f"echo '{CREDENTIAL}'\n",
    )
    config = _config(command, env=[{"name": "A", "value": "from-exec"}])
    exec_plugin.run(config, None, 10, {"PATH": PATH, "A": "outer", "B": "b"}, False)
    assert out.read_text() == (
        "A=from-exec\n"
        "B=b\n"
        f"PATH={PATH}\n"
        'KUBERNETES_EXEC_INFO={"kind":"ExecCredential","apiVersion":'
        '"client.authentication.k8s.io/v1","spec":{"interactive":false}}\n'
    )


def test_a_bare_command_is_found_on_the_environments_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir, f"echo '{CREDENTIAL}'\n", name="my-plugin")
    got = exec_plugin.run(_config("my-plugin"), None, 10, {"PATH": f"{bin_dir}:{PATH}"}, False)
    assert got.token == "plugin-token-0123"
    with pytest.raises(ExecError) as e:
        exec_plugin.run(_config("my-plugin"), None, 10, {"PATH": PATH}, False)
    assert str(e.value) == (
        "exec: executable my-plugin not found\n\n"
        "It looks like you are trying to use a client-go credential plugin that is not "
        "installed.\n\nTo learn more about this feature, consult the documentation available at:\n"
        "      https://kubernetes.io/docs/reference/access-authn-authz/authentication/"
        "#client-go-credential-plugins"
    )
    with pytest.raises(ExecError) as e:
        exec_plugin.run(
            _config("my-plugin", installHint="apt install my-plugin"),
            None,
            10,
            {"PATH": PATH},
            False,
        )
    assert str(e.value).endswith("#client-go-credential-plugins\n\napt install my-plugin")


def test_a_non_interactive_plugin_has_no_stdin_and_its_own_session(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = _script(
        tmp_path,
        f"cat > {out}.stdin; ps -o sid= -p $$ | tr -d ' ' > {out}.sid; echo $$ > {out}.pid\n"
        f"echo '{CREDENTIAL}'\n",
    )
    reader, writer = os.pipe()
    os.write(writer, b"our stdin\n")
    os.close(writer)
    saved = os.dup(0)
    os.dup2(reader, 0)
    try:
        exec_plugin.run(_config(command), None, 10, {"PATH": PATH}, False)
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(reader)
    assert Path(f"{out}.stdin").read_bytes() == b""
    assert Path(f"{out}.sid").read_text() == Path(f"{out}.pid").read_text()


def test_an_interactive_plugin_shares_our_stdin_stderr_and_session(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    command = _script(
        tmp_path,
        f"cat > {out}.stdin; ps -o sid= -p $$ | tr -d ' ' > {out}.sid\n"
        "echo 'prompt: ' >&2\n"
        f"echo '{CREDENTIAL}'\n",
    )
    config = _config(command, interactiveMode="IfAvailable")
    reader, writer = os.pipe()
    os.write(writer, b"typed\n")
    os.close(writer)
    saved = os.dup(0)
    os.dup2(reader, 0)
    try:
        got = exec_plugin.run(config, None, 10, {"PATH": PATH}, True)
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(reader)
    assert got.token == "plugin-token-0123"
    assert Path(f"{out}.stdin").read_bytes() == b"typed\n"
    assert Path(f"{out}.sid").read_text().strip() == str(os.getsid(0))
    assert capfd.readouterr().err == "prompt: \n"


def test_whether_stdin_is_a_terminal_is_asked_only_when_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "info"
    command = _script(tmp_path, f"echo \"$KUBERNETES_EXEC_INFO\" > {out}\necho '{CREDENTIAL}'\n")
    config = _config(command, interactiveMode="IfAvailable")
    monkeypatch.setattr(exec_plugin, "_stdin_is_terminal", lambda: True)
    monkeypatch.setattr(exec_plugin.subprocess, "DEVNULL", subprocess.DEVNULL)
    exec_plugin.run(config, None, 10, {"PATH": PATH}, False)
    assert json.loads(out.read_text())["spec"] == {"interactive": False}
    monkeypatch.setattr(exec_plugin, "_stdin_is_terminal", lambda: False)
    exec_plugin.run(config, None, 10, {"PATH": PATH})
    assert json.loads(out.read_text())["spec"] == {"interactive": False}
    asked: list[bool] = []
    monkeypatch.setattr(exec_plugin, "_stdin_is_terminal", lambda: asked.append(True) or False)
    exec_plugin.run(config, None, 10, {"PATH": PATH})
    exec_plugin.run(config, None, 10, {"PATH": PATH}, False)
    assert asked == [True]


def test_a_plugin_past_the_deadline_is_killed_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = _script(tmp_path, f"sleep 30 & echo $! > {pids}\nsleep 30\n")
    start = time.monotonic()
    with pytest.raises(ExecError) as e:
        exec_plugin.run(_config(command), None, 0.5, {"PATH": PATH}, False)
    assert time.monotonic() - start < 5
    assert str(e.value) == (
        f"exec: executable {command} did not finish before --timeout; killed it"
    )
    child = int(pids.read_text())
    time.sleep(0.2)
    state = Path(f"/proc/{child}/stat")
    assert not state.exists() or state.read_text().split(") ")[1].startswith("Z")


def test_an_exit_code_with_the_last_line_of_stderr(tmp_path: Path) -> None:
    command = _script(tmp_path, "echo 'no \x1b[31mluck' >&2\nexit 1\n")
    with pytest.raises(ExecError) as e:
        exec_plugin.run(_config(command), None, 10, {"PATH": PATH}, False)
    assert str(e.value) == f"exec: executable {command} failed with exit code 1: no \\x1b[31mluck"


def test_stderr_of_a_successful_plugin_is_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = _script(tmp_path, f"echo 'said this' >&2\necho '{CREDENTIAL}'\n")
    got = exec_plugin.run(_config(command), None, 10, {"PATH": PATH}, False)
    assert got.token == "plugin-token-0123"
    assert capsys.readouterr().err == "said this\n"
    quiet = _script(tmp_path, f"echo '{CREDENTIAL}'\n", name="quiet")
    assert exec_plugin.run(_config(quiet), None, 10, {"PATH": PATH}, False) == got
    assert capsys.readouterr().err == ""


# --- the stderr replay ----------------------------------------------------------------------


def test_replay_is_bounded_to_64_kib_and_counts_the_rest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert exec_plugin.MAX_STDERR == 65536
    exec_plugin.replay_stderr(b"x" * 65536, _result())
    assert capsys.readouterr().err == "x" * 65536 + "\n"
    exec_plugin.replay_stderr(b"x" * 65537 + b"\n", _result())
    assert capsys.readouterr().err == (
        "x" * 65536 + "\n[exec plugin stderr: 2 more bytes not shown]\n"
    )


def test_replay_makes_control_characters_visible_line_by_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    exec_plugin.replay_stderr(b"a\x1b]52;c;x\x07\n\nb\rc\xff", _result())
    assert capsys.readouterr().err == "a\\x1b]52;c;x\\x07\n\nb\\x0dc\ufffd\n"


def test_replay_redacts_the_token_and_the_key_it_returned(
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = "replayed-token-7f3a91"
    key = b"-----BEGIN KEY-----\nsecret-key-line-b2c4\n-----END KEY-----\n"
    exec_plugin.replay_stderr(b"token " + token.encode() + b"\n" + key, _result(token=token))
    assert capsys.readouterr().err == "token <redacted>\n" + key.decode()
    exec_plugin.replay_stderr(b"key:\n" + key, _result(key=key))
    assert capsys.readouterr().err == "key:\n<redacted>\n"


def test_replay_decodes_a_bad_key_with_replacement(capsys: pytest.CaptureFixture[str]) -> None:
    key = b"bad-key-\xff-e5d6c7b8"
    exec_plugin.replay_stderr(b"k bad-key-\xef\xbf\xbd-e5d6c7b8\n", _result(key=key))
    assert capsys.readouterr().err == "k <redacted>\n"


# --- helpers ---------------------------------------------------------------------------------


def test_last_line_is_redacted_visible_and_cut_before_escaping() -> None:
    assert exec_plugin._last_line(b"\xffa\x1b\n") == "\ufffda\\x1b"
    assert exec_plugin._last_line(b"\x1b" * 301) == "\\x1b" * 300
    from bootstrap.redact import register

    register("last-line-token-9d8e7f")
    assert exec_plugin._last_line(b"use last-line-token-9d8e7f\n") == "use <redacted>"


def test_kill_without_a_group_kills_the_process_and_waits() -> None:
    process = subprocess.Popen(
        ["sleep", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    exec_plugin._kill(process, group=False)
    assert process.returncode == -9
    assert process.stdout is not None and process.stdout.closed


def test_kill_of_a_group_reaches_a_grandchild() -> None:
    process = subprocess.Popen(
        ["sh", "-c", "sleep 30 & echo $!; wait"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None
    grandchild = int(process.stdout.readline())
    exec_plugin._kill(process, group=True)
    assert process.returncode == -9
    time.sleep(0.2)
    state = Path(f"/proc/{grandchild}/stat")
    assert not state.exists() or state.read_text().split(") ")[1].startswith("Z")


def test_kill_waits_one_second_at_most(monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[Any] = []

    class Process:
        pid = 999_999_999
        stdout = None
        stderr = io.BytesIO()

        def kill(self) -> None:
            pass

        def wait(self, timeout: float) -> None:
            waited.append(timeout)

    exec_plugin._kill(Process(), group=False)  # type: ignore[arg-type]
    assert waited == [1]
    assert Process.stderr.closed


@pytest.mark.parametrize("error", [OSError, ValueError])
def test_a_stdin_without_a_descriptor_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    class Stdin:
        def fileno(self) -> int:
            raise error("no descriptor")

    monkeypatch.setattr(sys, "stdin", Stdin())
    assert exec_plugin._stdin_is_terminal() is False


def test_a_terminal_stdin_is_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(sys.stdin, "fileno", lambda: 0)
    monkeypatch.setattr(exec_plugin.os, "isatty", lambda fd: fd == 0)
    assert exec_plugin._stdin_is_terminal() is True
    monkeypatch.setattr(exec_plugin.os, "isatty", lambda fd: False)
    assert exec_plugin._stdin_is_terminal() is False


# --- second pass: what the full run still let through ----------------------------------------


def test_an_exec_config_and_result_cannot_be_changed() -> None:
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        _config("x").command = "y"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        _result(token="t").token = "u"  # type: ignore[misc]


def test_deeply_nested_yaml_output_is_a_decoding_error_not_a_crash() -> None:
    assert exec_plugin._yaml(b"[" * 5000 + b"]" * 5000) is None
    with pytest.raises(ExecError) as e:
        parse_output(b"a: " + b"[" * 5000 + b"]" * 5000, V1)
    assert str(e.value) == "decoding stdout: Expecting value: line 1 column 1 (char 0)"
