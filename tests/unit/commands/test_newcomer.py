"""Issue 19: the command line as a newcomer meets it. --help with examples first and
grouped flags, -o/--output, `completion bash|zsh|fish` loaded in the real shells,
quiet success with -v, colours only on a terminal, and honest lifecycle messages
(no cluster needed: every case here finishes before the first request, or has the
network part stubbed)."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from bootstrap import console, run
from bootstrap.commands.cli import command
from bootstrap.commands.help import completion_script
from bootstrap.commands.jobs import left_behind, result_line
from bootstrap.outputs.check import Result as CheckResult
from bootstrap.outputs.check import render_text
from bootstrap.outputs.emit import Issued
from bootstrap.run import Options
from tests.terminal import run_on_a_terminal

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
CA = b"-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n"
BIN = Path(sys.executable).parent


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(command, list(args), env=env, prog_name="bootstrap-token")


def help_of(*words: str) -> str:
    result = invoke(*words, "--help")
    assert result.exit_code == 0, result.output
    return result.stdout


# --- help ---------------------------------------------------------------------------------

COMMANDS = [
    (),
    ("issue",),
    ("rotate",),
    ("revoke",),
    ("list",),
    ("check",),
    ("sweep",),
    ("completion",),
]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "top")
def test_every_help_opens_with_examples_and_points_to_the_exit_codes(words: tuple[str]) -> None:
    text = help_of(*words)
    lines = text.splitlines()
    # usage, the description, then the examples before any flag
    first_flags = min(
        i
        for i, line in enumerate(lines)
        if "lags" in line and line.endswith(":") and line[0] != " "
    )
    assert lines.index("Examples:") < first_flags
    assert "docs/exit-codes.md" in lines[-1]
    assert "Exit codes:\n" not in text  # no table any more
    assert max(len(line) for line in lines) <= 100


def test_help_line_counts_stay_short() -> None:
    """Before issue 19: top 102, issue 107, rotate 91, revoke 60, list 43, check 32."""
    counts = {" ".join(w) or "top": len(help_of(*w).splitlines()) for w in COMMANDS}
    assert counts == {
        "top": 56,
        "issue": 90,
        "rotate": 78,
        "revoke": 52,
        "list": 51,
        "check": 46,
        "sweep": 46,
        "completion": 21,
    }


def test_issue_help_flags_in_order_of_use() -> None:
    text = help_of("issue")
    sections = [line for line in text.splitlines() if line.endswith("flags:")]
    assert sections == [
        "Common flags:",
        "Output flags:",
        "Token flags:",
        "Connection flags:",
        "Run flags:",
    ]
    common = text[text.index("Common flags:") : text.index("Output flags:")]
    flags = [line.split()[0].rstrip(",") for line in common.splitlines()[1:] if line[2:3] == "-"]
    assert flags == [
        "--cluster",
        "-n",
        "--service-account",
        "-o",
        "--out",
        "--role",
        "--clusterrole",
        "--mode",
        "--duration",
    ]
    assert text.index("--in-cluster") > text.index("--duration")
    assert text.index("--parallel") > text.index("--in-cluster")
    assert "Other commands: rotate, revoke, list, check, sweep, completion" in text


def test_issue_examples_are_the_five_common_invocations() -> None:
    text = help_of("issue")
    examples = text[text.index("Examples:") : text.index("Common flags:")]
    commands = [
        line.strip() for line in examples.splitlines() if line.strip().startswith("bootstrap-token")
    ]
    assert commands == [
        "bootstrap-token --cluster dev && source dev.env",
        "bootstrap-token --cluster prod -n ci --service-account deployer --clusterrole view \\",
        "bootstrap-token --cluster prod --mode request --duration 30m -o json",
        "bootstrap-token --all-clusters --out 'creds/{cluster}.env'",
        "bootstrap-token --list-clusters",
    ]


@pytest.mark.parametrize("words", [("issue",), ("rotate",), ("revoke",), ("list",)])
def test_a_stray_word_after_a_command_is_taken_for_a_cluster_name(words: tuple[str]) -> None:
    result = invoke(*words, "prod")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {words[0]} takes no arguments (got 'prod'): to name a cluster use "
        f"--cluster prod; see 'bootstrap-token{'' if words[0] == 'issue' else ' ' + words[0]} "
        "--help'\n"
    )


# --- -o/--output ----------------------------------------------------------------------------


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "dev", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "admin", "user": {"token": "admin-token"}}],
        "contexts": [{"name": "dev-admin", "context": {"cluster": "dev", "user": "admin"}}],
        "current-context": "dev-admin",
    }
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def stub_issue(monkeypatch: pytest.MonkeyPatch) -> list[Options]:
    seen: list[Options] = []

    def issue(options: Options, target: Any, timings: Any, on_wait: Any = None) -> Issued:
        seen.append(options)
        return Issued(
            cluster=target.cluster,
            server=target.server,
            namespace=options.namespace,
            service_account=options.service_account,
            secret=options.secret_name or "",
            token=TOKEN,
            ca_pem=CA,
            identity=f"system:serviceaccount:{options.namespace}:{options.service_account}",
        )

    monkeypatch.setattr(run, "issue", issue)
    return seen


def test_dash_o_json_prints_to_stdout_and_writes_no_file(
    home: Path, kubeconfig: Path, stub_issue: list[Options]
) -> None:
    result = invoke("--cluster", "dev", "--kubeconfig", str(kubeconfig), "-n", "ci", "-o", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["cluster"], document["token"]) == ("dev", TOKEN)
    assert document["ca_pem"] == CA.decode()  # embedded: no CA file either
    assert list(home.iterdir()) == []
    # the one line on stderr: who, where, until when, and where it went
    assert result.stderr == (
        "bootstrap-token: system:serviceaccount:ci:default on cluster dev, does not expire "
        "-> stdout\n"
    )


def test_dash_o_env_on_stdout_writes_the_ca_beside(
    home: Path, kubeconfig: Path, stub_issue: list[Options]
) -> None:
    result = invoke("--cluster", "dev", "--kubeconfig", str(kubeconfig), "--output", "env")
    assert result.exit_code == 0, result.output
    assert f"export CACERT='{home / 'dev.ca.crt'}'" in result.stdout
    assert (home / "dev.ca.crt").read_bytes() == CA
    assert not (home / "dev.env").exists()
    assert result.stderr.endswith(f"-> stdout (CA in {home / 'dev.ca.crt'})\n")


def test_dash_o_with_out_writes_that_file(
    home: Path, kubeconfig: Path, stub_issue: list[Options]
) -> None:
    result = invoke(
        "--cluster", "dev", "--kubeconfig", str(kubeconfig), "-o", "kubeconfig", "--out", "ci.kc"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert yaml.safe_load((home / "ci.kc").read_text())["users"][0]["user"]["token"] == TOKEN
    assert result.stderr.endswith(f"does not expire -> {home / 'ci.kc'}\n")


def test_format_keeps_writing_a_file(
    home: Path, kubeconfig: Path, stub_issue: list[Options]
) -> None:
    result = invoke("--cluster", "dev", "--kubeconfig", str(kubeconfig), "--format", "json")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert json.loads((home / "dev.json").read_text())["token"] == TOKEN


@pytest.mark.usefixtures("home", "stub_issue")
def test_dash_o_and_format_that_disagree_are_refused(kubeconfig: Path) -> None:
    result = invoke("--kubeconfig", str(kubeconfig), "-o", "json", "--format", "env")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: -o json and --format env disagree: use -o alone (--format is its older spelling)\n"
    )


@pytest.mark.usefixtures("home", "stub_issue")
def test_verbose_shows_the_steps(kubeconfig: Path) -> None:
    quiet = invoke("--kubeconfig", str(kubeconfig), "-o", "json")
    assert len(quiet.stderr.splitlines()) == 1
    loud = invoke("--kubeconfig", str(kubeconfig), "-o", "json", "-v")
    assert "bootstrap-token: no --cluster given: using cluster 'dev' of context 'dev-admin'" in (
        loud.stderr
    )
    assert len(loud.stderr.splitlines()) >= 3


@pytest.mark.usefixtures("home", "stub_issue")
def test_renew_before_not_shorter_than_duration_is_warned_about(kubeconfig: Path) -> None:
    args = ["--kubeconfig", str(kubeconfig), "--mode", "request", "--duration", "1h"]
    result = invoke(*args, "--renew-before", "6h")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        "bootstrap-token: warning: --renew-before 6h is not shorter than --duration 1h: every "
        "run will issue a new token; give a --renew-before shorter than --duration (e.g. a "
        "third of it)"
    )
    shorter = invoke(*args, "--renew-before", "20m", "--out", "x.env")
    assert "warning" not in shorter.stderr


@pytest.fixture
def no_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a unit test reached run.issue (the network)")

    monkeypatch.setattr(run, "issue", refuse)


def test_result_line_says_who_where_until_when() -> None:
    issued = Issued(
        "prod", "https://h", "ci", "bot", "", TOKEN, None, "system:serviceaccount:ci:bot"
    )
    timed = Issued(
        "prod", "https://h", "ci", "bot", "", TOKEN, None, "me", expires_at="2030-01-01T00:00:00Z"
    )
    assert result_line(issued, "stdout") == (
        "system:serviceaccount:ci:bot on cluster prod, expiry unknown -> stdout"
    )
    assert result_line(timed, "/x/prod.env", Path("/x/prod.ca.crt")) == (
        "me on cluster prod, valid until 2030-01-01T00:00:00Z -> /x/prod.env (CA in /x/prod.ca.crt)"
    )


def test_a_timeout_says_what_it_left_behind_and_how_to_remove_it() -> None:
    options = Options(cluster="prod", namespace="ci", service_account="bot", context="my ctx")
    assert left_behind(options) == (
        "Left behind: the token Secret ci/bot-token (and the ServiceAccount and bindings this "
        "run created); to remove them: bootstrap-token revoke --cluster prod --context 'my ctx' "
        "-n ci --service-account bot --all"
    )


def test_check_of_a_revoked_token_says_only_invalid() -> None:
    result = CheckResult(
        status="invalid",
        server="https://h",
        format="env",
        identity=None,
        token_kind="secret",
        expires_at=None,
        seconds_left=None,
        last_used=None,
        secret="bot-token",
        namespace="ci",
        reason="rejected (401 Unauthorized): revoked, or not a token of this cluster",
    )
    assert render_text(result, "prod.env") == (
        "prod.env: invalid\n"
        "  apiserver:  https://h\n"
        "  format:     env\n"
        "  identity:   -\n"
        "  token:      legacy Secret token (Secret ci/bot-token)\n"
        "  reason:     rejected (401 Unauthorized): revoked, or not a token of this cluster\n"
    )


# --- colours ----------------------------------------------------------------------------------


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colours_only_on_a_terminal_and_never_with_no_color() -> None:
    assert console.colour_enabled(Tty(), {"TERM": "xterm"})
    assert not console.colour_enabled(Tty(), {"TERM": "xterm", "NO_COLOR": "1"})
    assert not console.colour_enabled(Tty(), {"TERM": "dumb"}) or os.environ.get("TERM") != "dumb"
    assert not console.colour_enabled(io.StringIO(), {})
    assert console.paint("warning: x", logging.WARNING, enabled=True) == "\x1b[33mwarning: x\x1b[0m"
    assert console.paint("error: x", logging.ERROR, enabled=True) == "\x1b[31merror: x\x1b[0m"
    assert console.paint("w", logging.WARNING, alarm=True, enabled=True) == "\x1b[1;31;7mw\x1b[0m"
    assert console.paint("ok", console.NOTICE, enabled=True) == "ok"
    assert console.paint("warning: x", logging.WARNING, enabled=False) == "warning: x"


def test_fleet_counter_on_a_terminal_only() -> None:
    stream = Tty()
    counter = console.FleetCounter(7, enabled=True, stream=stream)
    counter.start()
    for ok in (True, True, False, True):
        counter.finished(ok)
    assert counter.line() == "4/7 done, 1 failed"
    counter.clear()
    assert stream.getvalue().endswith("\r\x1b[Kbootstrap-token: 4/7 done, 1 failed\r\x1b[K")
    plain = io.StringIO()
    quiet = console.FleetCounter(7, enabled=False, stream=plain)
    quiet.start()
    quiet.finished(True)
    quiet.clear()
    assert plain.getvalue() == ""


def test_no_colour_without_a_terminal_in_a_real_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bootstrap", "--kubeconfig", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env={**os.environ, "TERM": "xterm"},
    )
    assert result.returncode == 3
    assert "\x1b[" not in result.stderr and result.stderr.startswith("error: ")


# --- completion ---------------------------------------------------------------------------------


def test_completion_prints_each_script() -> None:
    bash = invoke("completion", "bash")
    assert bash.exit_code == 0
    assert "complete -o nosort -F _bootstrap_token_completion bootstrap-token" in bash.stdout
    zsh = completion_script("zsh", command)
    assert zsh.startswith("#compdef bootstrap-token\n\n# compdef comes with compinit")
    assert "autoload -Uz compinit && compinit -i" in zsh
    assert "complete --no-files --command bootstrap-token" in completion_script("fish", command)
    refused = invoke("completion", "powershell")
    assert refused.exit_code == 2
    assert "'powershell' is not one of 'bash', 'zsh', 'fish'" in refused.stderr


def shell_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOTSTRAP_TOKEN_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def need(shell: str) -> str:
    path = shutil.which(shell)
    if path is None or not (BIN / "bootstrap-token").exists():
        pytest.skip(f"{shell} or the bootstrap-token script is not installed (scripts/setup)")
    return path


def test_bash_completion_sourced_in_bash(tmp_path: Path) -> None:
    bash = need("bash")
    script = (
        "source <(bootstrap-token completion bash)\n"
        "COMP_WORDS=(bootstrap-token r); COMP_CWORD=1\n"
        "_bootstrap_token_completion bootstrap-token\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        [bash, "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        env=shell_env(),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["rotate", "revoke"]


def test_zsh_completion_loads_where_compinit_has_not_run(tmp_path: Path) -> None:
    zsh = need("zsh")
    # -f: no startup files, so compinit has not run (the case of issue 19)
    script = (
        "source <(bootstrap-token completion zsh) || exit 1\n"
        'print -r -- "compdef:${+functions[compdef]} '
        'handler:${_comps[bootstrap-token]}"\n'
    )
    result = subprocess.run(
        [zsh, "-f", "-c", script],
        capture_output=True,
        text=True,
        env={**shell_env(), "HOME": str(tmp_path), "ZDOTDIR": str(tmp_path)},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "command not found" not in result.stderr
    assert result.stdout.strip() == "compdef:1 handler:_bootstrap_token_completion"


def test_fish_completion_sourced_in_fish(tmp_path: Path) -> None:
    fish = need("fish")
    result = subprocess.run(
        [
            fish,
            "--no-config",
            "-c",
            "bootstrap-token completion fish | source; complete -C 'bootstrap-token r'",
        ],
        capture_output=True,
        text=True,
        env={**shell_env(), "HOME": str(tmp_path)},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["revoke", "rotate"]


def test_an_unreachable_server_is_one_line_saying_what_to_check(tmp_path: Path) -> None:
    config = {
        "clusters": [{"name": "dev", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "admin", "user": {"token": "admin-token"}}],
        "contexts": [{"name": "dev-admin", "context": {"cluster": "dev", "user": "admin"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOTSTRAP_TOKEN_")}

    def run_it(*extra: str) -> subprocess.CompletedProcess[str]:
        args = ["--cluster", "dev", "--kubeconfig", str(path), "--timeout", "1", *extra]
        return subprocess.run(
            [sys.executable, "-m", "bootstrap", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )

    quiet = run_it()
    assert quiet.returncode == 4
    assert quiet.stderr == (
        "error: cannot reach the API server https://127.0.0.1:1 to create serviceaccounts in "
        "namespace default: connection refused; check the server URL, the network or VPN, and "
        "the proxy settings (HTTPS_PROXY, NO_PROXY, the cluster's proxy-url)\n"
    )
    verbose = run_it("-v")
    assert "connection refused; retrying in 0.05 s" in verbose.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["list", "-o", "wide", "--format", "json"],
            "error: -o wide and --format json disagree: use -o alone\n",
        ),
        (
            ["check", "x.env", "-o", "json", "--format", "text"],
            "error: -o json and --format text disagree: use -o\n",
        ),
    ],
)
def test_list_and_check_refuse_o_and_format_that_disagree(
    home: Path, args: list[str], message: str
) -> None:
    (home / "x.env").write_text(f"export APISERVER='https://127.0.0.1:1'\nexport TOKEN='{TOKEN}'\n")
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr == message


@pytest.mark.parametrize(
    ("no_color", "term", "coloured"),
    [(None, "xterm", True), ("1", "xterm", False), ("", "xterm", True), (None, "dumb", False)],
)
def test_errors_are_red_on_a_terminal_unless_no_color(
    tmp_path: Path, no_color: str | None, term: str, coloured: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    env["TERM"] = term
    if no_color is not None:
        env["NO_COLOR"] = no_color
    for args in (["--kubeconfig", str(tmp_path / "none")], ["--output", "yaml"]):
        text = run_on_a_terminal(args, env)
        assert ("\x1b[31merror: " in text) is coloured, text
        assert "error: " in text


def test_short_options_reach_click_in_their_long_form() -> None:
    from bootstrap.commands.help import long_forms

    issue = command.commands["issue"]
    assert long_forms(issue, ["-n", "ci", "-q", "-o", "json", "--cluster", "-n"]) == [
        "--namespace", "ci", "--quiet", "--output", "json", "--cluster", "-n",
    ]  # fmt: skip
    assert long_forms(issue, ["--", "-n"]) == ["--", "-n"]
    assert long_forms(issue, ["-qv", "-nci"]) == ["-qv", "-nci"]  # click parses these itself
