"""bootstrap.run's output names and checks: default names per ServiceAccount, the CA
file each format needs, no two jobs writing one file or one set of variable names,
--env-prefix, and what is checked before any request."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from bootstrap.errors import OutputError, UsageError
from bootstrap.outputs.emit import Issued
from bootstrap.outputs.files import ca_path_for
from bootstrap.outputs.write import (
    ca_path,
    check_output_location,
    check_outputs,
    output_path,
    write_outputs,
)
from bootstrap.run import Options
from tests.unit.outputs.test_files import CA_PEM, read_only

# --- output paths ----------------------------------------------------------------------


def test_ca_path_for_stdout_is_in_cwd(tmp_path: Path) -> None:
    assert ca_path_for(None, "dev", tmp_path) == tmp_path / "dev.ca.crt"


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        ("creds.env", "creds.ca.crt"),
        ("creds.json", "creds.ca.crt"),
        ("creds", "creds.ca.crt"),
        ("my.dev.env", "my.dev.ca.crt"),
    ],
)
def test_ca_path_for_file_is_beside_it(tmp_path: Path, out: str, expected: str) -> None:
    directory = tmp_path / "sub"
    assert ca_path_for(directory / out, "dev", tmp_path) == directory / expected


def test_ca_path_never_equals_the_output(tmp_path: Path) -> None:
    for name in ("a.ca.crt", "a.crt", "ca.crt", ".ca.crt", "x"):
        assert ca_path_for(tmp_path / name, "dev", tmp_path) != tmp_path / name


def test_output_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert output_path(Options(cluster="dev", out="-"), tmp_path) is None
    assert output_path(Options(cluster="dev", format="github"), tmp_path) is None
    assert output_path(Options(cluster="dev", format="github", out="x"), tmp_path) is None
    assert output_path(Options(cluster="dev"), tmp_path) == tmp_path / "dev.env"
    assert output_path(Options(cluster="dev", format="dotenv"), tmp_path) == tmp_path / "dev.env"
    assert output_path(Options(cluster="dev", format="json"), tmp_path) == tmp_path / "dev.json"
    kubeconfig = Options(cluster="dev", format="kubeconfig")
    assert output_path(kubeconfig, tmp_path) == tmp_path / "dev.kubeconfig"
    fleet = Options(cluster="prod", out="creds/{cluster}.env")
    assert output_path(fleet, tmp_path) == tmp_path / "creds" / "prod.env"
    assert output_path(Options(cluster="dev", out="x/y.env"), tmp_path) == tmp_path / "x/y.env"
    assert output_path(Options(cluster="dev", out="/abs/o"), tmp_path) == Path("/abs/o")
    assert output_path(Options(cluster="dev", out="~/o"), tmp_path) == tmp_path / "home" / "o"


@pytest.mark.parametrize("cluster", ["arn:aws:eks:eu-west-1:123456789012:cluster/prod", "../up"])
def test_default_output_paths_stay_in_cwd(tmp_path: Path, cluster: str) -> None:
    out = output_path(Options(cluster=cluster), tmp_path)
    assert out is not None and out.parent == tmp_path
    assert ca_path_for(None, cluster, tmp_path).parent == tmp_path


# --- output names never collide; checks before any request -----------------------------------


def test_default_name_includes_a_service_account_other_than_default(tmp_path: Path) -> None:
    assert output_path(Options(cluster="dev"), tmp_path) == tmp_path / "dev.env"
    deployer = Options(cluster="dev", service_account="deployer")
    assert output_path(deployer, tmp_path) == tmp_path / "deployer@dev.env"
    as_json = Options(cluster="prod/eu", service_account="ci.bot", format="json")
    assert output_path(as_json, tmp_path) == tmp_path / "ci.bot@prod_eu.json"
    kubeconfig = Options(cluster="dev", service_account="deployer", format="kubeconfig")
    assert output_path(kubeconfig, tmp_path) == tmp_path / "deployer@dev.kubeconfig"
    assert ca_path(deployer, tmp_path, {}) == tmp_path / "deployer@dev.ca.crt"
    explicit = Options(cluster="dev", service_account="deployer", out="x.env")
    assert output_path(explicit, tmp_path) == tmp_path / "x.env"


def test_json_on_stdout_needs_no_ca_file(tmp_path: Path) -> None:
    assert ca_path(Options(cluster="dev", format="json", out="-"), tmp_path, {}) is None
    assert ca_path(Options(cluster="dev", format="kubeconfig"), tmp_path, {}) is None
    assert ca_path(Options(cluster="dev", format="json"), tmp_path, {}) == tmp_path / "dev.ca.crt"
    env_on_stdout = Options(cluster="dev", out="-")
    assert ca_path(env_on_stdout, tmp_path, {}) == tmp_path / "dev.ca.crt"
    github = Options(cluster="dev", format="github")
    assert ca_path(github, tmp_path, {"RUNNER_TEMP": "/rt"}) == Path("/rt/dev.ca.crt")


def test_two_clusters_that_map_to_one_file_are_refused(tmp_path: Path) -> None:
    jobs = [Options(cluster="prod/eu"), Options(cluster="prod:eu")]
    with pytest.raises(UsageError) as e:
        check_outputs(jobs, tmp_path, {})
    assert str(e.value) == (
        "cluster 'prod/eu' (service account 'default') and cluster 'prod:eu' (service "
        f"account 'default') would both write {tmp_path / 'prod_eu.env'}; give them "
        "distinct --out names (or run them separately)"
    )
    assert e.value.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_is_another_jobs_ca_file_is_refused(tmp_path: Path) -> None:
    jobs = [Options(cluster="x.ca", out="{cluster}.crt"), Options(cluster="x", out="{cluster}.crt")]
    with pytest.raises(UsageError, match=r"would both write .*/x\.ca\.crt"):
        check_outputs(jobs, tmp_path, {})


def test_several_accounts_of_one_cluster_share_its_ca_file(tmp_path: Path) -> None:
    jobs = [Options(cluster="dev", out="-"), Options(cluster="dev", service_account="b", out="-")]
    check_outputs(jobs, tmp_path, {})
    distinct = [Options(cluster="dev"), Options(cluster="dev", service_account="b")]
    check_outputs(distinct, tmp_path, {})


def test_github_with_several_tokens_needs_distinct_variable_names(tmp_path: Path) -> None:
    environ = {"GITHUB_ENV": str(tmp_path / "env"), "RUNNER_TEMP": str(tmp_path)}
    same = [
        Options(cluster="dev", format="github"),
        Options(cluster="dev", format="github", service_account="b"),
    ]
    with pytest.raises(UsageError) as e:
        check_outputs(same, tmp_path, environ)
    assert str(e.value) == (
        "--format github: cluster 'dev' (service account 'default') and cluster 'dev' "
        "(service account 'b') would append the same variable names to $GITHUB_ENV; add "
        "e.g. --env-prefix '{cluster}_{service_account}_'"
    )
    prefixed = [replace(o, env_prefix="{service_account}_") for o in same]
    check_outputs(prefixed, tmp_path, environ)
    by_cluster = [
        Options(cluster=c, format="github", env_prefix="{cluster}_") for c in ("prod-eu", "prod_eu")
    ]
    with pytest.raises(UsageError, match="would append the same variable names"):
        check_outputs(by_cluster, tmp_path, environ)


def test_env_prefix_placeholders_are_sanitised() -> None:
    options = Options(
        cluster="arn:aws:eks:eu-west-1:1:cluster/prod",
        service_account="ci.deploy-bot",
        env_prefix="K_{cluster}__{service_account}_",
    )
    assert options.variable_prefix == "K_ARN_AWS_EKS_EU_WEST_1_1_CLUSTER_PROD__CI_DEPLOY_BOT_"
    assert Options(cluster="dev", env_prefix="dev_").variable_prefix == "dev_"
    assert Options(cluster="dev").variable_prefix == ""


@pytest.mark.parametrize("prefix", ["A-B_", "$X", "{namespace}_", "a b"])
def test_env_prefix_with_other_characters_is_refused(prefix: str) -> None:
    with pytest.raises(UsageError, match=r"--env-prefix .* may only hold letters, digits, _"):
        Options(cluster="dev", env_prefix=prefix).validate()


def test_env_prefix_starting_with_a_digit_is_refused() -> None:
    with pytest.raises(UsageError, match="cannot start with a digit"):
        Options(cluster="1prod", env_prefix="{cluster}_").validate()


ISSUED = Issued(
    cluster="dev",
    server="https://127.0.0.1:6443",
    namespace="ci",
    service_account="default",
    secret="default-token",
    token="t0ken",
    ca_pem=CA_PEM,
    identity="system:serviceaccount:ci:default",
)


def test_env_prefix_names_the_env_dotenv_and_github_variables(tmp_path: Path) -> None:
    env = Options(cluster="dev", env_prefix="{cluster}_")
    write_outputs(ISSUED, env, tmp_path, {})
    lines = (tmp_path / "dev.env").read_text().splitlines()
    assert [line for line in lines if line.startswith("export")] == [
        "export DEV_APISERVER='https://127.0.0.1:6443'",
        "export DEV_TOKEN='t0ken'",
        f"export DEV_CACERT='{tmp_path / 'dev.ca.crt'}'",
        "export DEV_NAMESPACE='ci'",
    ]
    dotenv = Options(cluster="dev", format="dotenv", out="x.env", env_prefix="P_")
    write_outputs(ISSUED, dotenv, tmp_path, {})
    dotenv_lines = (tmp_path / "x.env").read_text().splitlines()
    assert dotenv_lines[1] == "P_TOKEN=t0ken"
    assert dotenv_lines[-1].startswith("P_CACERT_DATA=LS0tLS1CRUdJTi")
    environ = {
        "GITHUB_ENV": str(tmp_path / "github_env"),
        "GITHUB_OUTPUT": str(tmp_path / "github_output"),
        "RUNNER_TEMP": str(tmp_path),
    }
    github = Options(cluster="dev", format="github", env_prefix="{cluster}_")
    write_outputs(ISSUED, github, tmp_path, environ, stdout=io.StringIO())
    assert "DEV_TOKEN=t0ken\n" in (tmp_path / "github_env").read_text()
    assert "dev_apiserver=https://127.0.0.1:6443\n" in (tmp_path / "github_output").read_text()


def test_json_on_stdout_writes_no_file(tmp_path: Path) -> None:
    stdout = io.StringIO()
    write_outputs(ISSUED, Options(cluster="dev", format="json", out="-"), tmp_path, {}, stdout)
    document = yaml.safe_load(stdout.getvalue())
    assert document["cacert_path"] is None and document["ca_pem"] == CA_PEM.decode()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "case", ["out is a directory", "CA file is a directory", "GITHUB_ENV is a directory"]
)
def test_check_output_location_finds_what_cannot_be_written(tmp_path: Path, case: str) -> None:
    environ: dict[str, str] = {}
    options = Options(cluster="dev", out="dev.env")
    if case == "out is a directory":
        (tmp_path / "dev.env").mkdir()
    elif case == "CA file is a directory":
        (tmp_path / "dev.ca.crt").mkdir()
    else:
        (tmp_path / "env").mkdir()
        environ = {"GITHUB_ENV": str(tmp_path / "env"), "RUNNER_TEMP": str(tmp_path)}
        options = Options(cluster="dev", format="github")
    with pytest.raises(OutputError, match="it is a directory, not a regular file"):
        check_output_location(options, tmp_path, environ)


def test_check_output_location_of_a_merge_reads_the_file_and_checks_the_bak(
    tmp_path: Path,
) -> None:
    options = Options(cluster="dev", format="kubeconfig")
    (tmp_path / "dev.kubeconfig").write_text("")
    (tmp_path / "dev.kubeconfig.bak").mkdir()
    with pytest.raises(OutputError, match=r"dev\.kubeconfig\.bak: it is a directory"):
        check_output_location(options, tmp_path, {})


def test_check_output_location_of_a_read_only_github_env(tmp_path: Path) -> None:
    with read_only(tmp_path / "runner") as runner:
        environ = {"GITHUB_ENV": str(runner / "env"), "RUNNER_TEMP": str(tmp_path)}
        with pytest.raises(OutputError, match=r"cannot write .*/runner/env: (permission|the file)"):
            check_output_location(Options(cluster="dev", format="github"), tmp_path, environ)
