"""Legacy `auth-provider` users: the one path that needs the optional kubernetes client
(`bootstrap-token[auth-provider]`, pulled by the `test` extra, so it is installed here).

kube-apiserver would need OIDC flags and an identity provider to accept a real OIDC id-token;
but the client's `oidc` provider sends a still-valid `id-token` as the bearer token without any
request of its own. A ServiceAccount token is such a JWT: the dev cluster accepts it, so the
whole path (kubeconfig → the official client → our requests) runs against the real cluster.
Without the extra, tests/packaging/test_wheel.py checks the one-line error.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.cluster.test_features import read_env
from tests.conftest import Admin, DevCluster, DevTool, run_tool


def test_admin_credentials_from_an_oidc_auth_provider(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    made = dev_tool(
        "--service-account", "oidc-admin", "--clusterrole", "cluster-admin", "--out", "admin.env"
    )
    assert made.returncode == 0, made.stderr
    id_token = read_env(tmp_path / "admin.env")["TOKEN"]
    config = dev_cluster.config
    provider = {"name": "oidc", "config": {"client-id": "kubernetes", "id-token": id_token}}
    config["users"] = [{"name": "dev-admin", "user": {"auth-provider": provider}}]
    kubeconfig = tmp_path / "oidc.yaml"
    kubeconfig.write_text(json.dumps(config))
    result = run_tool(
        "--cluster", "dev", "-n", namespace, "--service-account", "via-oidc",
        env={"KUBECONFIG": str(kubeconfig)}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    token = read_env(tmp_path / "via-oidc@dev.env")["TOKEN"]
    assert admin.whoami(token) == (201, f"system:serviceaccount:{namespace}:via-oidc")

    # a provider that gives nothing: one error line, exit 3 (kubeconfig error)
    provider["config"] = {"client-id": "kubernetes", "id-token": "not-a-jwt"}
    kubeconfig.write_text(json.dumps(config))
    failed = run_tool(
        "--cluster", "dev", "-n", namespace, env={"KUBECONFIG": str(kubeconfig)}, cwd=tmp_path
    )
    assert failed.returncode == 3, failed.stderr
    assert failed.error_lines == [
        "error: user 'dev-admin': its auth provider gave no credentials"
    ], failed.stderr
