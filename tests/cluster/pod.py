"""A Pod-like environment on the real dev cluster, for in-cluster mode: the token of a
real ServiceAccount (TokenRequest), the dev CA as ca.crt, a namespace file, and
KUBERNETES_SERVICE_HOST/PORT pointing at the dev kube-apiserver; HOME is empty and
there is no KUBECONFIG, as in a Pod."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import REPO, Admin, DevCluster, Result, remember_token, run_tool

ROLE_FILE = REPO / "manifests" / "deploy" / "bootstrapper-clusterrole.yaml"
BOOTSTRAPPER = "bootstrap-token-bootstrapper"


@dataclass
class Pod:
    directory: Path  # the mounted serviceaccount directory
    env: dict[str, str]
    cwd: Path
    namespace: str
    account: str

    def run(self, *args: str, **kwargs: Any) -> Result:
        kwargs.setdefault("env", self.env)
        kwargs.setdefault("cwd", self.cwd)
        return run_tool(*args, **kwargs)


def apply_roles(dev_cluster: DevCluster) -> None:
    """The shipped ClusterRoles, applied with the real kubectl (idempotent)."""
    process = subprocess.run(
        ["kubectl", "--kubeconfig", str(dev_cluster.kubeconfig), "apply", "-f", str(ROLE_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 0, process.stderr


def create(admin: Admin, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = admin.request("POST", path, body)
    assert status == 201, answer
    result: dict[str, Any] = answer
    return result


def bind(admin: Admin, namespace: str, subject_ns: str, account: str, cluster_role: str) -> None:
    create(
        admin,
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        {
            "metadata": {"name": f"{cluster_role}-{account}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": cluster_role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": subject_ns}],
        },
    )


def make_pod(
    admin: Admin,
    dev_cluster: DevCluster,
    tmp_path: Path,
    namespace: str,
    account: str = "bootstrapper",
    role: str | None = BOOTSTRAPPER,
    works_in: str | None = None,
) -> Pod:
    """ServiceAccount `account` in `namespace` (created unless it exists; bound to `role`
    there by a RoleBinding), its TokenRequest token mounted like the kubelet does. Waits
    until it may create Secrets in `works_in` (default: `namespace` when `role` is set)."""
    status, body = admin.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": account}}
    )
    assert status in (201, 409), body
    if role:
        bind(admin, namespace, namespace, account, role)
    answer = create(
        admin,
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        {"spec": {"expirationSeconds": 3600}},
    )
    token = answer["status"]["token"]
    remember_token(token)
    directory = tmp_path / "serviceaccount"
    directory.mkdir(mode=0o700)
    (directory / "token").write_text(token)
    (directory / "token").chmod(0o600)
    (directory / "ca.crt").write_bytes(dev_cluster.ca_file.read_bytes())
    (directory / "namespace").write_text(namespace)
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    server = urlsplit(dev_cluster.server)
    env = {
        "HOME": str(home),
        "BOOTSTRAP_TOKEN_SERVICEACCOUNT_DIR": str(directory),
        "KUBERNETES_SERVICE_HOST": str(server.hostname),
        "KUBERNETES_SERVICE_PORT": str(server.port),
    }
    if works_in or role:
        wait_until_allowed(admin, token, works_in or namespace)
    return Pod(directory, env, work, namespace, account)


def wait_until_allowed(admin: Admin, token: str, namespace: str) -> None:
    """A new RoleBinding reaches the RBAC authorizer's cache within milliseconds; wait
    for it so a test never races it."""
    as_token = Admin(admin.server, admin.ca)
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "verb": "create",
                "resource": "secrets",
                "namespace": namespace,
            }
        },
    }
    for _ in range(100):
        status, body = as_token.request(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review, token=token
        )
        if status == 201 and body["status"].get("allowed"):
            return
        time.sleep(0.05)
    raise AssertionError(f"the RoleBinding in {namespace} never took effect")
