"""Nothing from a server, proxy or plugin reaches a terminal raw (issue 17, items
5 and 6).

A hostile API server (a Status message), a hostile proxy (its reason phrase), a
Secret's annotation shown by `list`, an exec plugin's stderr: each carries OSC 52
(a clipboard write), OSC 0 (the window title) and CSI (cursor moves, erase line).
What the tool prints shows them as visible escapes (`\\x1b`), and a plugin's stderr
is redacted once the token it returned is registered.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bootstrap import redact
from bootstrap.commands.fleet import Outcome, render_summary
from bootstrap.kube import exec_plugin
from bootstrap.outputs.check import Result, render_text
from bootstrap.sanitize import visible
from bootstrap.steps.inventory import Row, render_table
from tests.conftest import run_tool

# A clipboard write, a window title, a cursor move and line erase, a bare CR, a DEL.
HOSTILE = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b]0;pwned\x1b\\\x1b[2A\x1b[2K\rDone\x7f\x9b31m\u2028forged"
SHOWN = (
    "\\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b]0;pwned\\x1b\\\\x1b[2A\\x1b[2K\\x0dDone\\x7f\\x9b31m"
    "\\u2028forged"
)
RAW = ("\x1b", "\x07", "\r", "\x7f", "\x9b", "\u2028")


def assert_no_raw_control(text: str) -> None:
    for char in RAW:
        assert char not in text, f"{char!r} printed raw in {text!r}"


def test_visible_shows_every_control_character_and_keeps_the_rest() -> None:
    assert visible(HOSTILE) == SHOWN
    assert visible("plain text: ünïcødé ✓ \\ ok") == "plain text: ünïcødé ✓ \\ ok"
    assert visible("a\nb\tc") == "a\\x0ab\\x09c"
    assert visible("a\nb\tc", newlines=True) == "a\nb\\x09c"
    assert visible("\u202eevil\U000e0001") == "\\u202eevil\\U000e0001"
    assert visible("\ud800") == "\\ud800"
    assert visible(visible(HOSTILE)) == visible(HOSTILE)  # idempotent


# --- a hostile API server ----------------------------------------------------------------


class _Hostile(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "code": 403,
                "message": f"forbidden {HOSTILE}",
            }
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hostile_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_status_message_reaches_the_error_line_visibly(
    tmp_path: Path, hostile_server: str
) -> None:
    checked = tmp_path / "creds.env"
    checked.write_text(f"APISERVER={hostile_server}\nTOKEN=some-token-0123456789\n")
    result = run_tool("check", str(checked), "--timeout", "5")
    assert result.returncode == 5, result.stderr
    assert_no_raw_control(result.stderr)
    assert len(result.error_lines) == 1
    # Whitespace (here CR and U+2028) is squeezed to one space, as before.
    squeezed = SHOWN.replace("\\x0d", " ").replace("\\u2028", " ")
    assert f"may not get /api (forbidden {squeezed})" in result.error_lines[0]


@pytest.fixture
def hostile_proxy() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(f"HTTP/1.1 407 {HOSTILE}\r\n\r\n".encode())
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_a_proxy_reason_phrase_reaches_the_error_line_visibly(
    tmp_path: Path, hostile_proxy: str
) -> None:
    checked = tmp_path / "creds.env"
    checked.write_text(
        f"APISERVER=https://kubernetes.example:6443\nTOKEN=some-token-0123456789\n"
        f"HTTPS_PROXY={hostile_proxy}\n"
    )
    result = run_tool("check", str(checked), "--timeout", "5")
    assert result.returncode == 4, result.stderr
    assert_no_raw_control(result.stderr)
    assert len(result.error_lines) == 1
    assert "refused to tunnel to kubernetes.example:6443: 407 \\x1b]52;c;" in result.error_lines[0]


# --- list, check, the fleet summary ------------------------------------------------------


def test_list_shows_a_hostile_annotation_visibly() -> None:
    row = Row(
        cluster="dev",
        namespace="ci",
        service_account=f"sa{HOSTILE}",
        secret="sa-token",
        managed=False,
        created="2026-01-01T00:00:00Z",
        last_used=None,
        invalid_since=None,
        referenced=False,
        service_account_exists=False,
        roles=(),
    )
    table = render_table([row])
    assert_no_raw_control(table)
    assert f"sa{SHOWN} (missing)" in table


def test_check_text_shows_what_the_server_said_visibly() -> None:
    result = Result(
        status="valid",
        server="https://a",
        format="env",
        identity=f"system:x{HOSTILE}",
        token_kind="secret",
        expires_at=None,
        seconds_left=None,
        last_used=None,
        secret=None,
        namespace=None,
        reason=None,
    )
    text = render_text(result, f"f{HOSTILE}.env")
    assert_no_raw_control(text)
    assert f"  identity:   system:x{SHOWN}\n" in text
    assert text.startswith(f"f{SHOWN}.env: valid\n")


def test_the_fleet_summary_shows_failures_visibly() -> None:
    text = render_summary([Outcome(f"c{HOSTILE}", False, f"forbidden {HOSTILE}", 5)])
    assert_no_raw_control(text)
    assert f"c{SHOWN}  FAILED  forbidden {SHOWN}\n" in text


# --- 6. exec plugin stderr ------------------------------------------------------------------

PLUGIN_TOKEN = "plugin-issued-credential-9f8e7d6c5b4a"


def plugin(tmp_path: Path, stderr_script: str) -> exec_plugin.ExecConfig:
    script = tmp_path / "plugin"
    credential = json.dumps(
        {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"token": PLUGIN_TOKEN},
        }
    )
    script.write_text(f"#!/bin/sh\n{stderr_script}\necho '{credential}'\n")
    script.chmod(0o755)
    return exec_plugin.ExecConfig(
        command=str(script),
        args=(),
        env=(),
        api_version="client.authentication.k8s.io/v1",
        interactive_mode="Never",
        provide_cluster_info=False,
        install_hint="",
    )


def test_exec_plugin_stderr_is_redacted_and_made_visible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    redact.clear()
    escaped = HOSTILE.replace("\\", "\\\\").replace("'", "")
    config = plugin(
        tmp_path,
        f"printf 'debug: got token={PLUGIN_TOKEN} {escaped}\\nsecond line\\n\\377\\n' >&2",
    )
    result = exec_plugin.run(config, None, 10, {"PATH": "/usr/bin:/bin"}, stdin_is_terminal=False)
    assert result.token == PLUGIN_TOKEN
    err = capsys.readouterr().err
    assert PLUGIN_TOKEN not in err
    assert_no_raw_control(err)
    # Bytes that are not UTF-8 show as U+FFFD.
    assert err == f"debug: got token={redact.REDACTED} {SHOWN}\nsecond line\n\ufffd\n"
    redact.clear()


def test_exec_plugin_stderr_is_capped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = plugin(tmp_path, "head -c 200000 /dev/zero | tr '\\0' x >&2")
    exec_plugin.run(config, None, 10, {"PATH": "/usr/bin:/bin"}, stdin_is_terminal=False)
    err = capsys.readouterr().err
    assert err == "x" * 65536 + "\n[exec plugin stderr: 134464 more bytes not shown]\n"
    redact.clear()


def test_warnings_and_progress_lines_show_foreign_text_visibly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import logging

    from bootstrap.commands.boundary import configure_logging

    configure_logging(debug=False, quiet=False)
    logging.getLogger("bootstrap").warning("warning: the server said %s", HOSTILE)
    err = capsys.readouterr().err
    assert err == f"bootstrap-token: warning: the server said {SHOWN}\n"


def test_visible_escapes_at_the_width_boundaries() -> None:
    from bootstrap import sanitize

    assert sanitize.__all__ == ["visible"]
    # U+00AD (soft hyphen, not printable) is the last 2-digit escape; U+FFFF the last 4-digit.
    assert visible("\xad\u0378\uffff\U000e007f") == "\\xad\\u0378\\uffff\\U000e007f"
    assert visible("\ufffe") == "\\ufffe"


def test_exec_plugin_key_in_stderr_is_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    redact.clear()
    key = "-----BEGIN KEY-----secret-key-material-42-----END KEY-----"
    script = tmp_path / "plugin"
    credential = json.dumps(
        {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"clientCertificateData": "CERT", "clientKeyData": key},
        }
    )
    script.write_text(f"#!/bin/sh\necho 'key is {key}' >&2\necho '{credential}'\n")
    script.chmod(0o755)
    config = exec_plugin.ExecConfig(
        command=str(script), args=(), env=(), api_version="client.authentication.k8s.io/v1",
        interactive_mode="Never", provide_cluster_info=False, install_hint="",
    )  # fmt: skip
    exec_plugin.run(config, None, 10, {"PATH": "/usr/bin:/bin"}, stdin_is_terminal=False)
    assert capsys.readouterr().err == f"key is {redact.REDACTED}\n"
    redact.clear()


def test_exec_plugin_stderr_of_exactly_the_cap_is_shown_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = plugin(tmp_path, "head -c 65536 /dev/zero | tr '\\0' y >&2")
    exec_plugin.run(config, None, 10, {"PATH": "/usr/bin:/bin"}, stdin_is_terminal=False)
    assert capsys.readouterr().err == "y" * 65536 + "\n"
    assert exec_plugin.MAX_STDERR == 65536
    redact.clear()
