"""Issue 12 against the real dev cluster: the default cluster (current context,
--context alone), flags from $BOOTSTRAP_TOKEN_*, --quiet fleets, several json tokens
as one list on stdout (through jq), and the Python API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Admin, DevCluster, remember_token, run_tool


def remember_all(documents: list[dict]) -> None:  # type: ignore[type-arg]
    for document in documents:
        remember_token(document["token"])


def test_no_cluster_flag_uses_the_current_contexts_cluster(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    """The dev kubeconfig's current context is dev-admin (cluster dev)."""
    result = run_tool(
        "-n", namespace, "-v", env={"KUBECONFIG": str(dev_cluster.kubeconfig)}, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "no --cluster given: using cluster 'dev' of context 'dev-admin'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.ca.crt", "dev.env"]
    assert "export APISERVER='https://127.0.0.1:" in (tmp_path / "dev.env").read_text()
    # revoke finds the same cluster the same way
    result = run_tool(
        "revoke", "-n", namespace, env={"KUBECONFIG": str(dev_cluster.kubeconfig)}, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert f"deleted Secret {namespace}/default-token" in result.stderr


def test_context_alone_uses_that_contexts_cluster(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    result = run_tool(
        "--context",
        "dev-localhost-admin",
        "-n",
        namespace,
        "--format",
        "json",
        "--out",
        "-",
        env={"KUBECONFIG": str(dev_cluster.kubeconfig)},
        cwd=tmp_path,
        stdout_may_hold_token=True,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    remember_token(document["token"])
    assert document["cluster"] == "dev-localhost"
    assert document["apiserver"].startswith("https://localhost:")


def test_flags_from_the_environment_in_a_real_run(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    (tmp_path / "creds").mkdir()
    env = {
        "BOOTSTRAP_TOKEN_KUBECONFIG": str(dev_cluster.kubeconfig),
        "BOOTSTRAP_TOKEN_CLUSTER": "dev",
        "BOOTSTRAP_TOKEN_NAMESPACE": namespace,
        "BOOTSTRAP_TOKEN_SERVICE_ACCOUNT": "from-env",
        "BOOTSTRAP_TOKEN_FORMAT": "dotenv",
        "BOOTSTRAP_TOKEN_OUT": "creds/ci.env",
        "BOOTSTRAP_TOKEN_QUIET": "1",
    }
    result = run_tool(env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # quiet, from the environment
    text = (tmp_path / "creds" / "ci.env").read_text()
    assert f"NAMESPACE={namespace}\n" in text
    token = next(line[6:] for line in text.splitlines() if line.startswith("TOKEN="))
    remember_token(token)
    assert admin.whoami(token) == (201, f"system:serviceaccount:{namespace}:from-env")


def test_quiet_silences_the_fleet_summary_unless_something_failed(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    env = {"KUBECONFIG": str(dev_cluster.kubeconfig)}
    args = ["-n", namespace, "--service-account", "a", "--service-account", "b"]
    out = ["--out", "{service_account}.env"]
    result = run_tool("--cluster", "dev", *args, *out, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "TARGET" in result.stderr and "2 of 2 ok" in result.stderr  # without --quiet
    result = run_tool("--cluster", "dev", *args, *out, "--quiet", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    result = run_tool(
        "--cluster", "dev", "--cluster", "nope", *args, "--out", "{cluster}-{service_account}.env",
        "--quiet", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 10
    assert "TARGET" in result.stderr and "2 of 4 ok" in result.stderr


def test_several_json_tokens_on_stdout_are_one_list_for_jq(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    tool = f"{sys.executable} -m bootstrap"
    script = (
        f"{tool} --all-clusters -n {namespace} --service-account a --service-account b "
        "--format json --out - -q | jq -r '.[] | [.cluster, .service_account, .identity] | @tsv'"
    )
    process = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        env={"KUBECONFIG": str(dev_cluster.kubeconfig), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout.splitlines() == [
        f"dev\ta\tsystem:serviceaccount:{namespace}:a",
        f"dev\tb\tsystem:serviceaccount:{namespace}:b",
        f"dev-localhost\ta\tsystem:serviceaccount:{namespace}:a",
        f"dev-localhost\tb\tsystem:serviceaccount:{namespace}:b",
    ]
    # the documents themselves: v1, and the tokens work
    result = run_tool(
        "--cluster", "dev", "--cluster", "dev-localhost", "-n", namespace, "--format", "json",
        "--out", "-", "-q", env={"KUBECONFIG": str(dev_cluster.kubeconfig)}, cwd=tmp_path,
        stdout_may_hold_token=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    documents = json.loads(result.stdout)
    remember_all(documents)
    assert [d["apiVersion"] for d in documents] == ["bootstrap-token/v1"] * 2
    assert [d["cluster"] for d in documents] == ["dev", "dev-localhost"]
    for document in documents:
        assert admin.whoami(document["token"])[0] == 201
        # json on stdout carries the CA itself: no CA file is written for it
        assert document["cacert_path"] is None
        assert document["ca_pem"] == dev_cluster.ca_file.read_text()


def test_request_mode_json_has_null_secret(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    result = run_tool(
        "--cluster", "dev", "-n", namespace, "--mode", "request", "--format", "json",
        "--out", "-", env={"KUBECONFIG": str(dev_cluster.kubeconfig)}, cwd=tmp_path,
        stdout_may_hold_token=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    remember_token(document["token"])
    assert document["secret"] is None
    assert document["expires_at"].endswith("Z")
    assert "" not in document.values()


# --- the Python API ------------------------------------------------------------------------


def test_python_api_issues_a_verified_token(
    dev_cluster: DevCluster, admin: Admin, namespace: str
) -> None:
    from bootstrap import ConfigError, UsageError, issue_token

    environ = {"KUBECONFIG": str(dev_cluster.kubeconfig)}
    token = issue_token(
        namespace=namespace, service_account="api", environ=environ, home=Path("/nonexistent")
    )
    remember_token(token["token"])
    assert token["apiVersion"] == "bootstrap-token/v1"
    assert token.cluster == "dev"  # the current context's
    assert token["identity"] == f"system:serviceaccount:{namespace}:api"
    assert token["secret"] == "api-token" and token["cacert_path"] is None
    assert token["ca_pem"] == dev_cluster.ca_file.read_text()
    assert admin.whoami(token["token"]) == (201, f"system:serviceaccount:{namespace}:api")
    assert token["token"] not in repr(token) and "<redacted>" in repr(token)
    assert json.loads(token.to_json()) == token.to_dict()
    # the same keys as the command's json output
    result = run_tool(
        "--cluster", "dev", "-n", namespace, "--service-account", "api", "--format", "json",
        "--out", "-", env=environ, cwd=Path("/tmp"), stdout_may_hold_token=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document) == list(token)
    assert {k: v for k, v in document.items() if k != "cacert_path"} == {
        k: v for k, v in token.items() if k != "cacert_path"
    }
    # request mode, and the tool's errors as exceptions
    short = issue_token("dev", namespace=namespace, mode="request", duration="10m", environ=environ)
    remember_token(short["token"])
    assert short["secret"] is None and short["expires_at"].endswith("Z")
    with pytest.raises(UsageError, match="--namespace 'Bad'"):
        issue_token("dev", namespace="Bad", environ=environ)
    with pytest.raises(ConfigError, match="unknown cluster 'nope'"):
        issue_token("nope", namespace=namespace, environ=environ)


def test_import_bootstrap_is_cheap() -> None:
    code = (
        "import sys, bootstrap; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('bootstrap', 'yaml', 'click', 'kubernetes', 'ssl', 'http')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['bootstrap']"


def test_dev_cluster_certificates_pass_x509_strict(dev_cluster: DevCluster) -> None:
    """Python 3.13's ssl (and so the official kubernetes client on 3.13) verifies in OpenSSL's
    strict mode by default: the dev CA carries keyUsage, as kubeadm's does."""
    pki = dev_cluster.state / "pki"
    result = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-CAfile", str(pki / "ca.crt"),
         str(pki / "apiserver.crt"), str(pki / "admin.crt")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
