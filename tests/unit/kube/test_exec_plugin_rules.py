"""exec_plugin.py rules that only the cluster tests used to reach: the shape of the exec
block, the decoding of the plugin's output, how a failed or hung plugin is reported, and
how its stderr is replayed. Literal expectations throughout."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.kube import exec_plugin
from bootstrap.kube.exec_plugin import ExecError, exec_config, parse_output

V1 = "client.authentication.k8s.io/v1"
BASE = {"command": "x", "apiVersion": V1, "interactiveMode": "Never"}


def test_an_exec_block_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ConfigError) as e:
        exec_config("plugin", "u")
    assert str(e.value) == "user 'u': 'exec' must be a mapping"


def test_env_and_args_are_passed_on_as_strings() -> None:
    config = exec_config(
        {**BASE, "env": [{"name": "A", "value": "b"}, {"name": "N"}], "args": ["get", 7]}, "u"
    )
    assert config.env == (("A", "b"), ("N", ""))
    assert config.args == ("get", "7")


def test_an_env_entry_that_is_not_a_mapping_is_a_problem() -> None:
    with pytest.raises(ConfigError) as e:
        exec_config({**BASE, "env": ["A=b"]}, "u")
    assert str(e.value) == (
        "user 'u': invalid configuration: "
        "env variable name must be specified for u to use exec authentication plugin"
    )


def test_args_that_are_not_a_list_are_refused() -> None:
    with pytest.raises(ConfigError) as e:
        exec_config({**BASE, "args": "get token"}, "u")
    assert str(e.value) == "user 'u': exec 'args' must be a list"


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        (b"[1, 2]", "decoding stdout: not a JSON object"),
        (json.dumps({"apiVersion": V1, "kind": "Other", "status": {"token": "t"}}).encode(),
         "decoding stdout: not an ExecCredential (kind or apiVersion missing)"),
        (json.dumps({"kind": "ExecCredential", "status": {"token": "t"}}).encode(),
         "decoding stdout: not an ExecCredential (kind or apiVersion missing)"),
    ],
)  # fmt: skip
def test_output_that_is_not_an_exec_credential(stdout: bytes, message: str) -> None:
    with pytest.raises(ExecError) as e:
        parse_output(stdout, V1)
    assert str(e.value) == message


def test_yaml_output_is_read_safely() -> None:
    stdout = (
        f"apiVersion: {V1}\nkind: ExecCredential\n"
        "status: {token: !!python/object/apply:str [t]}\n"
    ).encode()
    with pytest.raises(ExecError) as e:
        parse_output(stdout, V1)
    assert str(e.value).startswith("decoding stdout: ")


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "plugin"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def _config(command: str) -> exec_plugin.ExecConfig:
    return exec_config({**BASE, "command": command}, "u")


def test_a_failing_plugin_without_stderr_gives_the_exit_code_only(tmp_path: Path) -> None:
    command = _script(tmp_path, "exit 3\n")
    with pytest.raises(ExecError) as e:
        exec_plugin.run(_config(command), None, 10, {"PATH": "/usr/bin:/bin"}, False)
    assert str(e.value) == f"exec: executable {command} failed with exit code 3"


def test_a_plugin_that_cannot_be_started_is_an_exec_error(tmp_path: Path) -> None:
    path = tmp_path / "plugin"
    path.write_bytes(b"\x7fELF not really")
    path.chmod(0o755)
    with pytest.raises(ExecError) as e:
        exec_plugin.run(_config(str(path)), None, 10, {"PATH": "/usr/bin:/bin"}, False)
    assert str(e.value) == "exec: Exec format error"


def test_kill_closes_the_pipes_and_kills_the_group() -> None:
    process = subprocess.Popen(
        ["sleep", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    exec_plugin._kill(process, group=True)
    assert process.stdout is not None and process.stdout.closed
    assert process.stderr is not None and process.stderr.closed
    assert process.returncode == -9


def test_last_line_of_stderr() -> None:
    assert exec_plugin._last_line(b"\n   \n") == ""
    assert exec_plugin._last_line(b"first\n  last  \n\n") == "last"
    assert exec_plugin._last_line(b"y" * 400) == "y" * 300


class _Stream(io.StringIO):
    flushed = 0

    def flush(self) -> None:
        self.flushed += 1
        super().flush()


def test_replayed_stderr_is_flushed(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = _Stream()
    monkeypatch.setattr(sys, "stderr", stream)
    result = exec_plugin.ExecResult(token="t0ken-abc", cert_pem=None, key_pem=None, expires_at=None)
    exec_plugin.replay_stderr(b"hello\n", result)
    assert stream.getvalue() == "hello\n"
    assert stream.flushed == 1


def test_no_stdin_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    assert exec_plugin._stdin_is_terminal() is False
