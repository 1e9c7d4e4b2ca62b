"""bootstrap.commands.cli: flags, exit codes and the one-line `error:` boundary (no cluster needed:
every case here fails or finishes before the first request, or has `issue` stubbed)."""

from __future__ import annotations

import io
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from bootstrap import __version__, run
from bootstrap.commands.boundary import _Redact
from bootstrap.commands.cli import command
from bootstrap.errors import EXIT_CODES, UsageError
from bootstrap.outputs import write as outputs
from bootstrap.outputs.emit import Issued
from bootstrap.run import Options

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def kubeconfig_document(current: str | None = None, **extra_contexts: str) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "dev", "cluster": {"server": "https://127.0.0.1:6443"}},
            {"name": "production", "cluster": {"server": "https://prod.example:443"}},
        ],
        "users": [{"name": "admin", "user": {"token": "admin-token"}}],
        "contexts": [
            {"name": "dev-admin", "context": {"cluster": "dev", "user": "admin"}},
            {"name": "prod-admin", "context": {"cluster": "production", "user": "admin"}},
        ]
        + [
            {"name": name, "context": {"cluster": cluster, "user": "admin"}}
            for name, cluster in extra_contexts.items()
        ],
    }
    if current:
        document["current-context"] = current
    return document


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig_document()))
    return path


@pytest.fixture
def no_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a unit test reached run.issue (the network)")

    monkeypatch.setattr(run, "issue", refuse)


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(command, list(args), env=env, prog_name="bootstrap-token")


def error_line(result: Result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {result.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


# --- help and version ----------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(flag: str) -> None:
    result = invoke(flag)
    assert result.exit_code == 0, result.output
    for expected in ("--cluster NAME", "--namespace", "-o, --output FORMAT", "Exit codes"):
        assert expected in result.stdout
    # The exit codes live in docs/exit-codes.md (issue 19), which lists them all.
    assert "docs/exit-codes.md" in result.stdout
    assert "130" not in result.stdout
    table = (Path(__file__).parents[3] / "docs" / "exit-codes.md").read_text()
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    assert rows[1:] == [str(c) for c in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 130)]
    assert rows[1:] == [str(code) for code in EXIT_CODES]


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"bootstrap-token, version {__version__}"


# --- usage errors (exit 2) -------------------------------------------------------------


@pytest.mark.usefixtures("home", "no_requests")
def test_missing_cluster(kubeconfig: Path) -> None:
    """No --cluster and no current context (the fixture's kubeconfig has none)."""
    result = invoke(env={"KUBECONFIG": str(kubeconfig)})
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("error: --cluster NAME is required")
    assert "--list-clusters" in line


@pytest.mark.usefixtures("home", "no_requests")
def test_invalid_namespace(kubeconfig: Path) -> None:
    result = invoke("--cluster", "dev", "--kubeconfig", str(kubeconfig), "--namespace", "Bad_NS")
    assert result.exit_code == 2
    line = error_line(result)
    assert "--namespace" in line and "'Bad_NS'" in line
    assert "DNS-1123 label" in line


@pytest.mark.usefixtures("home", "no_requests")
@pytest.mark.parametrize(
    ("flag", "value"), [("--service-account", "Deployer"), ("--secret", "no_underscores")]
)
def test_invalid_service_account_or_secret(flag: str, value: str) -> None:
    result = invoke("--cluster", "dev", flag, value)
    assert result.exit_code == 2
    assert flag in error_line(result)


@pytest.mark.usefixtures("home", "no_requests")
def test_invalid_flag_values_are_click_usage_errors() -> None:
    for args in (["--format", "yaml"], ["--timeout", "0"], ["--no-such-flag"]):
        result = invoke("--cluster", "dev", *args)
        assert result.exit_code == 2, args
        assert "Traceback" not in result.output


# --- kubeconfig errors (exit 3) --------------------------------------------------------


@pytest.mark.usefixtures("home", "no_requests")
def test_unknown_cluster_lists_known_clusters(kubeconfig: Path) -> None:
    result = invoke("--cluster", "staging", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 3
    line = error_line(result)
    assert "unknown cluster 'staging'" in line
    assert "known clusters: dev, production" in line


@pytest.mark.usefixtures("home", "no_requests")
def test_context_name_given_as_cluster(kubeconfig: Path) -> None:
    result = invoke("--cluster", "prod-admin", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 3
    assert "its cluster is 'production'" in error_line(result)


@pytest.mark.usefixtures("no_requests")
def test_kubeconfig_from_the_environment(home: Path, kubeconfig: Path) -> None:
    result = invoke("--cluster", "staging", env={"KUBECONFIG": f"{home}/missing:{kubeconfig}"})
    assert result.exit_code == 3
    assert "known clusters: dev, production" in error_line(result)


@pytest.mark.usefixtures("no_requests")
def test_kubeconfig_from_home(home: Path) -> None:
    (home / ".kube").mkdir()
    (home / ".kube" / "config").write_text(yaml.safe_dump(kubeconfig_document()))
    result = invoke("--cluster", "staging")
    assert result.exit_code == 3
    assert "known clusters: dev, production" in error_line(result)


@pytest.mark.usefixtures("no_requests")
def test_no_kubeconfig_at_all(home: Path) -> None:
    result = invoke("--cluster", "dev")
    assert result.exit_code == 3
    line = error_line(result)
    assert "no kubeconfig found" in line and str(home / ".kube" / "config") in line


@pytest.mark.usefixtures("home", "no_requests")
def test_missing_explicit_kubeconfig(tmp_path: Path) -> None:
    result = invoke("--cluster", "dev", "--kubeconfig", str(tmp_path / "absent"))
    assert result.exit_code == 3
    assert "does not exist" in error_line(result)


@pytest.mark.usefixtures("home", "no_requests")
@pytest.mark.parametrize(
    "text",
    [
        "clusters: [\n",
        "- just\n- a list\n",
        "clusters: {dev: {}}\n",
        "clusters:\n- cluster: {server: x}\n",
        "\tclusters: []\n",
    ],
    ids=["invalid-yaml", "top-level-list", "clusters-mapping", "no-name", "tab"],
)
def test_malformed_kubeconfig(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken"
    path.write_text(text)
    for args in (["--cluster", "dev"], ["--list-clusters"]):
        result = invoke(*args, "--kubeconfig", str(path))
        assert result.exit_code == 3, (args, result.output)
        assert str(path) in error_line(result)
        assert result.stdout == ""


@pytest.mark.usefixtures("home", "no_requests")
def test_unconstructible_yaml_value_is_exit_3(tmp_path: Path) -> None:
    path = tmp_path / "broken"
    path.write_text(yaml.safe_dump(kubeconfig_document()) + "current-context: 2024-02-30\n")
    result = invoke("--cluster", "dev", "--kubeconfig", str(path))
    assert result.exit_code == 3, result.stderr


@pytest.mark.usefixtures("home", "no_requests")
def test_ambiguous_contexts(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    document = kubeconfig_document(current="prod-admin", **{"dev-ops": "dev", "dev-ci": "dev"})
    path.write_text(yaml.safe_dump(document))
    result = invoke("--cluster", "dev", "--kubeconfig", str(path))
    assert result.exit_code == 3
    line = error_line(result)
    assert "several contexts use cluster 'dev': dev-admin, dev-ci, dev-ops" in line
    assert "--context" in line


@pytest.mark.usefixtures("home", "no_requests")
def test_context_of_another_cluster(kubeconfig: Path) -> None:
    result = invoke("--cluster", "dev", "--context", "prod-admin", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 3
    assert "context 'prod-admin' uses cluster 'production', not 'dev'" in error_line(result)


# --- --list-clusters --------------------------------------------------------------------


@pytest.mark.usefixtures("home", "no_requests")
def test_list_clusters(kubeconfig: Path) -> None:
    result = invoke("--list-clusters", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "CLUSTER     SERVER\n"
        "dev         https://127.0.0.1:6443\n"
        "production  https://prod.example:443\n"
    )
    assert result.stderr == ""


@pytest.mark.usefixtures("home", "no_requests")
def test_list_clusters_of_a_kubeconfig_without_clusters(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_text("apiVersion: v1\nkind: Config\n")
    result = invoke("--list-clusters", "--kubeconfig", str(path))
    assert result.exit_code != 0
    assert "defines no clusters" in error_line(result)


# --- a whole run with the network part stubbed ----------------------------------------------


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
            secret=options.secret_name,
            token=TOKEN,
            ca_pem=b"-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n",
            identity=f"system:serviceaccount:{options.namespace}:{options.service_account}",
        )

    monkeypatch.setattr(run, "issue", issue)
    return seen


def test_default_output_is_a_0600_env_file_in_cwd(
    home: Path, kubeconfig: Path, stub_issue: list[Options]
) -> None:
    result = invoke("--cluster", "dev", "--kubeconfig", str(kubeconfig), "-n", "ci", "-q")
    assert result.exit_code == 0, result.output
    [options] = stub_issue
    assert (options.cluster, options.namespace, options.secret_name) == (
        "dev",
        "ci",
        "default-token",
    )
    env_file = home / "dev.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert f"export TOKEN='{TOKEN}'" in env_file.read_text()
    assert f"export CACERT='{home / 'dev.ca.crt'}'" in env_file.read_text()
    assert (home / "dev.ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert TOKEN not in result.output


@pytest.mark.usefixtures("home")
def test_output_to_stdout(kubeconfig: Path, stub_issue: list[Options]) -> None:
    result = invoke("--cluster", "dev", "--kubeconfig", str(kubeconfig), "--out", "-", "-q")
    assert result.exit_code == 0, result.output
    assert "export APISERVER='https://127.0.0.1:6443'" in result.stdout


def test_write_outputs_to_a_given_stream(tmp_path: Path) -> None:
    issued = Issued("dev", "https://h", "ci", "sa", "sa-token", TOKEN, None, "me")
    stream = io.StringIO()
    out = outputs.write_outputs(issued, Options(cluster="dev", out="-"), tmp_path, {}, stream)
    assert out is None
    assert f"export TOKEN='{TOKEN}'" in stream.getvalue()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("home", "stub_issue")
def test_output_into_a_missing_directory_is_exit_9(kubeconfig: Path) -> None:
    result = invoke("--cluster", "dev", "--kubeconfig", str(kubeconfig), "--out", "nope/x.env")
    assert result.exit_code == 9
    assert "does not exist" in error_line(result)


# --- Options.validate and the log redaction ---------------------------------------------------


def test_options_validate() -> None:
    options = Options(cluster="dev")
    assert options.validate() is options
    assert options.secret_name == "default-token"
    assert Options(cluster="dev", service_account="ci", secret="s").secret_name == "s"
    with pytest.raises(UsageError, match=r"^--namespace 'Bad_NS'"):
        Options(cluster="dev", namespace="Bad_NS").validate()
    with pytest.raises(UsageError, match=r"^--service-account"):
        Options(cluster="dev", service_account="a_b").validate()
    with pytest.raises(UsageError, match=r"^--secret"):
        Options(cluster="dev", secret="a..b").validate()
    Options(cluster="anything/goes: the cluster name is not validated").validate()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (Options(cluster="d", roles=("a/b",)), "--role 'a/b' is not a valid role name"),
        (Options(cluster="d", cluster_roles=("..",)), "--clusterrole '..'"),
        (Options(cluster="d", roles=("",)), "--role ''"),
        (Options(cluster="d", server="127.0.0.1:8001"), "--server '127.0.0.1:8001' must be"),
        (Options(cluster="d", audiences=("vault",)), "--audience needs --mode request"),
    ],
)
def test_options_validate_other_flags(options: Options, message: str) -> None:
    with pytest.raises(UsageError) as e:
        options.validate()
    assert str(e.value).startswith(message)


def test_options_request_mode_has_no_secret() -> None:
    options = Options(cluster="d", mode="request", audiences=("vault",), roles=("view",))
    assert options.validate().secret_name is None
    assert Options(cluster="d", server="http://127.0.0.1:8001").validate().server


def test_log_records_with_a_jwt_are_redacted() -> None:
    record = logging.LogRecord("bootstrap", logging.INFO, __file__, 1, "got %s", (TOKEN,), None)
    assert _Redact().filter(record)
    assert record.getMessage() == "got <redacted>"
    plain = logging.LogRecord("bootstrap", logging.INFO, __file__, 1, "n=%d", (3,), None)
    assert _Redact().filter(plain) and plain.getMessage() == "n=3"


def test_environment() -> None:
    environ, home, cwd = run.environment()
    assert environ is os.environ
    assert home == Path.home() and cwd == Path.cwd()


def test_every_feature_appears_in_help() -> None:
    """Issue 5: each feature is discoverable from --help (of issue, since issue 19 the
    top level shows only the common flags)."""
    runner = CliRunner()
    issue_help = runner.invoke(command, ["issue", "--help"]).output
    for flag in (
        "--mode",
        "--duration",
        "--audience",
        "--bound-secret",
        "--role",
        "--clusterrole",
        "--all-clusters",
        "--parallel",
        "{cluster}",
        "--format",
        "-o, --output",
        "github",
        "dotenv",
        "--dry-run",
        "--server",
        "--emit-server",
        "--quiet",
        "--verbose",
        "Other commands: rotate, revoke, list, check, sweep, completion",
    ):
        assert flag in issue_help, flag
    assert "--all" in runner.invoke(command, ["revoke", "--help"]).output
    assert "fresh name" in runner.invoke(command, ["rotate", "--help"]).output
