"""The command group (issue 12): --help lists the commands, a mistyped command is
refused with the closest one, click's usage errors are one `error:` line (exit 2),
every flag reads $BOOTSTRAP_TOKEN_<FLAG>, completion, the default cluster, Ctrl-C,
a closed stdout. Whole processes (`python -m bootstrap`), no cluster: each case ends
before the first request, or talks to a local socket that never answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bootstrap.errors import EXIT_CODES
from bootstrap.kube.kubeconfig import Kubeconfig
from bootstrap.kube.target import default_cluster
from tests.conftest import REPO


def tool(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k != "KUBECONFIG" and not k.startswith("BOOTSTRAP_TOKEN_")
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bootstrap", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=60,
        **kwargs,  # type: ignore[call-overload]
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {result.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def config(current: str | None = "dev-admin", server: str = "https://127.0.0.1:1") -> dict:  # type: ignore[type-arg]
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "dev", "cluster": {"server": server}},
            {"name": "prod", "cluster": {"server": "https://prod.example:443"}},
        ],
        "users": [{"name": "admin", "user": {"token": "admin-token"}}],
        "contexts": [
            {"name": "dev-admin", "context": {"cluster": "dev", "user": "admin"}},
            {"name": "prod-admin", "context": {"cluster": "prod", "user": "admin"}},
            {"name": "broken", "context": {"user": "admin"}},
        ],
    }
    if current:
        document["current-context"] = current
    return document


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config()))
    return path


# --- --help: the commands, one line each ---------------------------------------------


def test_help_lists_the_commands_one_line_each() -> None:
    result = tool("--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Usage: bootstrap-token [COMMAND] [FLAGS]...\n")
    commands = out[out.index("Commands:\n") :].split("\n\n")[0].splitlines()[1:]
    # in the order of use (issue 19), after the examples
    assert [line.split()[0] for line in commands] == [
        "issue",
        "rotate",
        "revoke",
        "list",
        "check",
        "sweep",
        "completion",
    ]
    assert out.index("Examples:\n") < out.index("Commands:\n")
    assert commands[0].split(None, 1)[1] == (
        "Issue a working, verified API token for cluster NAME of your kubeconfig."
    )
    # then the common flags of issue, the default command, and where the rest are
    assert "Common flags of issue (the default command):" in out
    assert "--cluster NAME" in out and "--parallel" not in out
    assert "Every flag of issue: bootstrap-token issue --help" in out
    assert out.endswith(
        "Exit codes: 0 success, 2 usage error, 10 a job of several failed; "
        "every code: docs/exit-codes.md\n"
    )


def test_help_of_a_command_is_that_command() -> None:
    result = tool("revoke", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: bootstrap-token revoke [FLAGS]")
    assert "--all" in result.stdout


# --- a mistyped command ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "suggestion"), [("revok", "revoke"), ("rotat", "rotate"), ("isue", "issue")]
)
def test_mistyped_command_suggests_the_closest(word: str, suggestion: str) -> None:
    result = tool(word, "--cluster", "dev")
    assert result.returncode == 2
    assert one_error_line(result) == (
        f"error: unknown command '{word}': did you mean {suggestion}? (see bootstrap-token --help)"
    )


def test_a_bare_word_is_not_taken_for_a_cluster() -> None:
    result = tool("prod")
    assert result.returncode == 2
    assert one_error_line(result) == (
        "error: unknown command 'prod' (commands: check, completion, issue, list, revoke, "
        "rotate, sweep); "
        "to name a cluster use --cluster prod"
    )


def test_flags_first_still_issue(tmp_path: Path, kubeconfig: Path) -> None:
    """`bootstrap-token --cluster x` is issue: it gets as far as the kubeconfig."""
    result = tool("--cluster", "staging", "--kubeconfig", str(kubeconfig))
    assert result.returncode == 3
    assert "unknown cluster 'staging'; known clusters: dev, prod" in one_error_line(result)


# --- click's usage errors: one line, exit 2 ----------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--format", "yaml"],
            "error: invalid value for '--format': 'yaml' is not one of 'env', 'kubeconfig', "
            "'json', 'dotenv', 'github', 'argocd', 'kubeconfig-secret'; "
            "see 'bootstrap-token --help'",
        ),
        (
            ["--cluster"],
            "error: option '--cluster' requires an argument; see 'bootstrap-token --help'",
        ),
        (
            ["revoke", "--clustr", "x"],
            "error: no such option '--clustr' (Did you mean one of: '--all-clusters', "
            "'--cluster', '--in-cluster'?); see 'bootstrap-token revoke --help'",
        ),
        (
            ["rotate", "--timeout", "0"],
            "error: invalid value for '--timeout': 0.0 is not in the range x>=0.1; "
            "see 'bootstrap-token rotate --help'",
        ),
    ],
    ids=["choice", "missing-value", "no-such-option", "range"],
)
def test_click_usage_errors_are_one_line_exit_2(args: list[str], expected: str) -> None:
    result = tool(*args)
    assert result.returncode == 2
    assert one_error_line(result) == expected
    assert result.stdout == ""


# --- the default cluster: kubectl's habit ----------------------------------------------


def test_default_cluster_table() -> None:
    """Pure: which cluster is used without --cluster (the cases of target.default_cluster)."""
    kc = Kubeconfig.from_documents([(Path("/k"), config())])
    assert default_cluster(kc, None) == "dev"  # the current context's cluster
    assert default_cluster(kc, "prod-admin") == "prod"  # --context alone
    no_current = Kubeconfig.from_documents([(Path("/k"), config(current=None))])
    with pytest.raises(
        Exception, match=r"^--cluster NAME is required: the kubeconfig has no current context"
    ):
        default_cluster(no_current, None)
    assert default_cluster(no_current, "prod-admin") == "prod"
    with pytest.raises(Exception, match=r"^the --context 'nope' is not defined"):
        default_cluster(kc, "nope")
    with pytest.raises(Exception, match=r"^context 'broken' names no cluster"):
        default_cluster(kc, "broken")
    dangling = Kubeconfig.from_documents([(Path("/k"), config(current="gone"))])
    with pytest.raises(Exception, match=r"^the current context 'gone' is not defined"):
        default_cluster(dangling, None)


def test_no_current_context_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config(current=None)))
    result = tool(env={"KUBECONFIG": str(path)}, cwd=tmp_path)
    assert result.returncode == 2
    assert one_error_line(result).startswith(
        "error: --cluster NAME is required: the kubeconfig has no current context"
    )
    dangling = tmp_path / "dangling"
    dangling.write_text(yaml.safe_dump(config(current="gone")))
    result = tool("revoke", env={"KUBECONFIG": str(dangling)}, cwd=tmp_path)
    assert result.returncode == 3
    assert one_error_line(result) == (
        "error: the current context 'gone' is not defined in the kubeconfig; "
        "contexts: broken, dev-admin, prod-admin; pass --cluster NAME or --context CTX"
    )


def test_dry_run_without_cluster_uses_the_current_contexts(kubeconfig: Path) -> None:
    # The server of this kubeconfig never answers: the run gets as far as asking it.
    result = tool("--dry-run", "-v", "--timeout", "1", env={"KUBECONFIG": str(kubeconfig)})
    assert result.returncode == 4, result.stderr
    assert "no --cluster given: using cluster 'dev' of context 'dev-admin'" in result.stderr


# --- environment variables ----------------------------------------------------------------


def test_flags_from_environment_variables(tmp_path: Path, kubeconfig: Path) -> None:
    """BOOTSTRAP_TOKEN_<FLAG>: multi-word flags with '_', repeatable ones space-separated,
    the same names for every command; a flag on the command line wins."""
    env = {
        "BOOTSTRAP_TOKEN_KUBECONFIG": str(kubeconfig),
        "BOOTSTRAP_TOKEN_CLUSTER": "dev prod",
        "BOOTSTRAP_TOKEN_SERVICE_ACCOUNT": "Bad_SA",
    }
    result = tool("--dry-run", env=env)
    assert result.returncode == 2
    assert one_error_line(result).startswith("error: --service-account 'Bad_SA' is not a valid")
    # The server of this kubeconfig never answers: each of the 2 x 2 jobs says what it
    # was asking for when it gave up (tests/cluster/test_command_line.py: a real run).
    env["BOOTSTRAP_TOKEN_SERVICE_ACCOUNT"] = "a b"
    env["BOOTSTRAP_TOKEN_NAMESPACE"] = "ci"
    env["BOOTSTRAP_TOKEN_DRY_RUN"] = "true"
    env["BOOTSTRAP_TOKEN_TIMEOUT"] = "1"
    result = tool(env=env)
    assert result.returncode == 10, result.stderr
    assert result.stderr.count("to create serviceaccounts in namespace ci:") >= 4
    assert "0 of 4 ok" in result.stderr
    result = tool("-n", "other", env=env)  # the command line wins
    assert "to create serviceaccounts in namespace other:" in result.stderr
    assert "namespace ci:" not in result.stderr
    # revoke reads the same names; its --all is BOOTSTRAP_TOKEN_ALL
    result = tool(
        "revoke",
        env={
            "BOOTSTRAP_TOKEN_KUBECONFIG": str(kubeconfig),
            "BOOTSTRAP_TOKEN_CLUSTER": "dev",
            "BOOTSTRAP_TOKEN_ALL": "yes",
            "BOOTSTRAP_TOKEN_FORMAT": "json",  # not a revoke flag: ignored
            "BOOTSTRAP_TOKEN_TIMEOUT": "0",
        },
    )
    assert result.returncode == 2
    assert "invalid value for '--timeout'" in one_error_line(result)


def test_an_invalid_environment_value_names_the_variable(kubeconfig: Path) -> None:
    result = tool(env={"BOOTSTRAP_TOKEN_FORMAT": "yaml", "KUBECONFIG": str(kubeconfig)})
    assert result.returncode == 2
    line = one_error_line(result)
    assert "'--format'" in line and "'yaml' is not one of" in line


# --- shell completion (click's protocol, as bash calls it) ---------------------------------


def complete(words: str, kubeconfig: Path) -> list[tuple[str, str]]:
    parts = words.split(" ")
    result = tool(
        env={
            "_BOOTSTRAP_TOKEN_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(parts) - 1),
            "KUBECONFIG": str(kubeconfig),
        }
    )
    assert result.returncode == 0, result.stderr
    return [tuple(line.split(",", 1)) for line in result.stdout.splitlines()]  # type: ignore[misc]


def test_completion_of_commands_contexts_clusters_and_formats(kubeconfig: Path) -> None:
    assert complete("bootstrap-token ", kubeconfig) == [
        ("plain", "issue"),
        ("plain", "rotate"),
        ("plain", "revoke"),
        ("plain", "list"),
        ("plain", "check"),
        ("plain", "sweep"),
        ("plain", "completion"),
    ]
    assert complete("bootstrap-token re", kubeconfig) == [("plain", "revoke")]
    assert complete("bootstrap-token --context ", kubeconfig) == [
        ("plain", "dev-admin"),
        ("plain", "prod-admin"),
        ("plain", "broken"),
    ]
    assert complete("bootstrap-token revoke --context p", kubeconfig) == [("plain", "prod-admin")]
    assert complete("bootstrap-token --cluster ", kubeconfig) == [
        ("plain", "dev"),
        ("plain", "prod"),
    ]
    assert complete("bootstrap-token rotate --cluster d", kubeconfig) == [("plain", "dev")]
    assert complete("bootstrap-token --format ", kubeconfig) == [
        ("plain", f)
        for f in ("env", "kubeconfig", "json", "dotenv", "github", "argocd", "kubeconfig-secret")
    ]
    flags = [value for _, value in complete("bootstrap-token --cl", kubeconfig)]
    assert flags == ["--cluster", "--clusterrole"]
    # another kubeconfig named on the command line is the one completed from
    other = kubeconfig.with_name("other")
    other.write_text(yaml.safe_dump({"clusters": [{"name": "x", "cluster": {"server": "s"}}]}))
    assert complete(f"bootstrap-token --kubeconfig {other} --cluster ", kubeconfig) == [
        ("plain", "x")
    ]


# --- Ctrl-C and a closed stdout ------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_ctrl_c_is_exit_130_with_one_line(tmp_path: Path, silent_server: int) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config(server=f"https://127.0.0.1:{silent_server}")))
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["KUBECONFIG"] = str(path)
    process = subprocess.Popen(
        [sys.executable, "-m", "bootstrap", "--timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    time.sleep(2.0)  # well into the TLS handshake with a server that never answers
    assert process.poll() is None
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1] == "error: interrupted"
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        "error: interrupted"
    ]
    assert EXIT_CODES[130] == "interrupted (Ctrl-C)"


@pytest.mark.parametrize(
    "args", [["--list-clusters"], ["--help"], ["list", "--help"]], ids=["list", "help", "list-help"]
)
def test_closed_stdout_is_not_an_internal_error(kubeconfig: Path, args: list[str]) -> None:
    """`bootstrap-token ... | head -c0`: the reader is gone before the first write."""
    script = f'"{sys.executable}" -m bootstrap {" ".join(args)} | head -c0; echo "rc=${{PIPESTATUS[0]}}" >&2'
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env={
            "PATH": os.environ["PATH"],
            "KUBECONFIG": str(kubeconfig),
            "HOME": str(kubeconfig.parent),
        },
        timeout=60,
        cwd=REPO,
    )
    lines = result.stderr.splitlines()
    assert lines[-1] == "rc=9", result.stderr
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == ["error: stdout was closed before all output was written (broken pipe)"]
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
