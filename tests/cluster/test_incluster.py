"""In-cluster mode against the real dev cluster: the tool, run in a Pod-like environment
(a real ServiceAccount's token, the dev CA, KUBERNETES_SERVICE_HOST/PORT, no kubeconfig),
issues verified tokens for other ServiceAccounts with the Pod's credentials."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cluster.pod import Pod, apply_roles, make_pod
from tests.conftest import Admin, DevCluster, remember_token


@pytest.fixture
def pod(admin: Admin, dev_cluster: DevCluster, tmp_path: Path, namespace: str) -> Pod:
    apply_roles(dev_cluster)
    return make_pod(admin, dev_cluster, tmp_path, namespace)


def test_without_a_kubeconfig_the_pods_service_account_issues_the_token(
    pod: Pod, admin: Admin, dev_cluster: DevCluster
) -> None:
    # No --in-cluster, no --cluster, no -n: kubectl's fallback, and the Pod's namespace.
    result = pod.run("--service-account", "app", "-o", "json", "-v", stdout_may_hold_token=True)
    assert result.returncode == 0, result.stderr
    issued = json.loads(result.stdout)
    remember_token(issued["token"])
    assert issued["cluster"] == "in-cluster"
    assert issued["apiserver"] == dev_cluster.server
    assert issued["namespace"] == pod.namespace
    assert issued["identity"] == f"system:serviceaccount:{pod.namespace}:app"
    assert admin.whoami(issued["token"]) == (201, f"system:serviceaccount:{pod.namespace}:app")
    # The bootstrap was done by the Pod's account, not by anyone's kubeconfig.
    assert (
        f"as user system:serviceaccount:{pod.namespace}:bootstrapper (context in-cluster)"
        in result.stderr
    )


def test_cluster_names_the_outputs_and_emit_server_their_address(pod: Pod) -> None:
    result = pod.run(
        "--in-cluster",
        "--cluster",
        "prod",
        "--service-account",
        "app",
        "--emit-server",
        "https://prod.example.com:6443",
    )
    assert result.returncode == 0, result.stderr
    env = (pod.cwd / "app@prod.env").read_text()
    assert "export APISERVER='https://prod.example.com:6443'" in env
    assert f"export NAMESPACE='{pod.namespace}'" in env
    assert (pod.cwd / "app@prod.env").stat().st_mode & 0o777 == 0o600


def test_an_explicit_namespace_wins_over_the_pods(pod: Pod) -> None:
    (pod.directory / "namespace").write_text("kube-system")
    result = pod.run("-n", pod.namespace, "--service-account", "app", "-v")
    assert result.returncode == 0, result.stderr
    assert f"ServiceAccount {pod.namespace}/app created" in result.stderr


@pytest.mark.parametrize("missing", ["token", "ca.crt"])
def test_missing_service_account_files_are_exit_3(pod: Pod, missing: str) -> None:
    (pod.directory / missing).unlink()
    result = pod.run("--in-cluster", "--service-account", "app")
    assert result.returncode == 3, result.stderr
    assert len(result.error_lines) == 1
    assert f"{pod.directory / missing} does not exist" in result.error_lines[0]
    assert "error: in-cluster mode: the ServiceAccount" in result.error_lines[0]


def test_without_a_mounted_token_there_is_no_in_cluster_fallback(pod: Pod) -> None:
    (pod.directory / "token").unlink()
    result = pod.run("--service-account", "app")
    # No Pod credentials and no kubeconfig: no current context to take the cluster from.
    assert result.returncode == 3, result.stderr
    home = pod.env["HOME"]
    assert result.error_lines == [
        f"error: no kubeconfig found (looked at {home}/.kube/config); pass --kubeconfig PATH "
        "or set KUBECONFIG"
    ]


def test_a_kubeconfig_in_home_wins_over_the_pod(
    pod: Pod, dev_cluster: DevCluster, namespace: str
) -> None:
    kube = Path(pod.env["HOME"]) / ".kube"
    kube.mkdir()
    shutil.copy(dev_cluster.kubeconfig, kube / "config")
    result = pod.run("--cluster", "dev", "-n", namespace, "--service-account", "app")
    assert result.returncode == 0, result.stderr
    assert "(context in-cluster)" not in result.stderr
    assert (pod.cwd / "app@dev.env").exists()
