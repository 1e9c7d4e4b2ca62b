"""The dev cluster is a real control plane: the token controller fills token
Secrets and the API server authenticates the tokens it signs."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import DEV_CLUSTER, Admin, DevCluster


def test_token_controller_fills_a_secret_that_authenticates(admin: Admin, namespace: str) -> None:
    ns = f"/api/v1/namespaces/{namespace}"
    status, sa = admin.request("POST", f"{ns}/serviceaccounts", {"metadata": {"name": "probe"}})
    assert status == 201, sa
    secret = {
        "metadata": {
            "name": "probe-token",
            "annotations": {"kubernetes.io/service-account.name": "probe"},
        },
        "type": "kubernetes.io/service-account-token",
    }
    status, body = admin.request("POST", f"{ns}/secrets", secret)
    assert status == 201, body

    deadline = time.monotonic() + 30
    token = None
    while token is None and time.monotonic() < deadline:
        token = admin.secret_token(namespace, "probe-token")
        time.sleep(0.02)
    assert token, "the token controller never filled the Secret"

    assert admin.whoami(token) == (201, f"system:serviceaccount:{namespace}:probe")
    assert admin.whoami("made-up-token")[0] == 401
    status, body = admin.request("GET", f"{ns}/secrets/probe-token")
    assert base64.b64decode(body["data"]["ca.crt"]).startswith(b"-----BEGIN CERTIFICATE-----")


def test_reports_the_pinned_kubernetes_version(admin: Admin) -> None:
    status, body = admin.request("GET", "/version")
    assert status == 200
    # scripts/test-matrix sets K8S_VERSION; the pins are scripts/k8s*/go.mod.
    pinned = {"": "v1.36.3", "1.29": "v1.29.15", "1.36": "v1.36.3", "1.37": "v1.37.2"}
    assert body["gitVersion"] == pinned[os.environ.get("K8S_VERSION", "")]


def test_kubeconfig_has_two_clusters_for_one_apiserver(dev_cluster: DevCluster) -> None:
    config = dev_cluster.config
    clusters = {c["name"]: c["cluster"] for c in config["clusters"]}
    port = clusters["dev"]["server"].rsplit(":", 1)[1]
    assert clusters["dev"]["server"] == f"https://127.0.0.1:{port}"
    assert clusters["dev-localhost"]["server"] == f"https://localhost:{port}"
    assert all("certificate-authority-data" in c for c in clusters.values())
    contexts = {c["name"]: c["context"] for c in config["contexts"]}
    assert contexts["dev-admin"] == {"cluster": "dev", "user": "dev-admin"}
    assert contexts["dev-localhost-admin"]["cluster"] == "dev-localhost"
    assert config["current-context"] == "dev-admin"


def test_kubectl_uses_the_kubeconfig_as_admin(dev_cluster: DevCluster) -> None:
    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(dev_cluster.kubeconfig), "auth", "whoami", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert '"system:masters"' in result.stdout


def test_status_lists_every_component_running(dev_cluster: DevCluster) -> None:
    out = subprocess.run(
        [sys.executable, str(DEV_CLUSTER), "status"], capture_output=True, text=True, check=True
    ).stdout
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
    ]
    assert all(" running " in line for line in lines), out


def test_second_up_after_down_starts_from_the_cache_in_under_30_s(
    dev_cluster: DevCluster, tmp_path: Path
) -> None:
    """A second, separate cluster (own state dir, own ports) from the cached binaries."""
    env = {**os.environ, "DEV_CLUSTER_DIR": str(tmp_path / "second")}

    def dev_cluster_cmd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(DEV_CLUSTER), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    try:
        first = dev_cluster_cmd("up")
        assert first.returncode == 0, first.stderr
        assert dev_cluster_cmd("down").returncode == 0
        assert not (tmp_path / "second").exists()
        started = time.monotonic()
        again = dev_cluster_cmd("up")
        elapsed = time.monotonic() - started
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == f"export KUBECONFIG={tmp_path / 'second' / 'kubeconfig'}"
        assert elapsed < 30, f"up after down took {elapsed:.1f} s"
    finally:
        dev_cluster_cmd("down")
    assert "running" not in dev_cluster_cmd("status").stdout
