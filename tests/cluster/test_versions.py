"""Behaviour that depends on the Kubernetes version of the cluster, each checked
where the version has it (scripts/test-matrix runs this file on every pinned
version; on the default cluster it runs as part of the suite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEV_CLUSTER, Admin, DevCluster, DevTool, remember_token

LAST_USED = "kubernetes.io/legacy-token-last-used"
INVALID_SINCE = "kubernetes.io/legacy-token-invalid-since"
CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


def minor(admin: Admin) -> int:
    status, body = admin.request("GET", "/version")
    assert status == 200, body
    return int(body["minor"].rstrip("+"))


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def labels(admin: Admin, namespace: str, secret: str) -> dict[str, str]:
    status, body = admin.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{secret}")
    assert status == 200, body
    return dict(body["metadata"].get("labels") or {})


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def json_out(result: Any) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    remember_token(data["token"])
    return data


def test_verify_uses_selfsubjectreview(dev_tool: DevTool, admin: Admin, namespace: str) -> None:
    """SelfSubjectReview is GA since 1.28: every pinned version has it, so the
    tool never falls back to GET /api."""
    assert minor(admin) >= 28
    result = dev_tool("--out", "-", "--format", "json", "--debug", stdout_may_hold_token=True)
    data = json_out(result)
    assert data["identity"] == f"system:serviceaccount:{namespace}:default"
    assert "POST /apis/authentication.k8s.io/v1/selfsubjectreviews -> 201" in result.stderr
    assert "no SelfSubjectReview API" not in result.stderr


def test_legacy_token_last_used_label_appears_after_use(
    dev_tool: DevTool, admin: Admin, namespace: str
) -> None:
    """1.28+ (tracking GA) stamps the date a legacy token was last used on its
    Secret. The tool's own verification is a use, so the label is there after
    issue; a Secret whose token nobody used has none."""
    if minor(admin) < 28:
        pytest.skip("no legacy token tracking before 1.28")
    ns = f"/api/v1/namespaces/{namespace}"
    assert admin.request("POST", f"{ns}/serviceaccounts", {"metadata": {"name": "idle"}})[0] == 201
    secret = {
        "metadata": {
            "name": "idle-token",
            "annotations": {"kubernetes.io/service-account.name": "idle"},
        },
        "type": "kubernetes.io/service-account-token",
    }
    assert admin.request("POST", f"{ns}/secrets", secret)[0] == 201
    idle_token = wait_for(lambda: admin.secret_token(namespace, "idle-token"))
    assert idle_token
    assert LAST_USED not in labels(admin, namespace, "idle-token")
    assert admin.whoami(idle_token)[0] == 201
    assert wait_for(lambda: labels(admin, namespace, "idle-token").get(LAST_USED)) == today()

    json_out(dev_tool("--out", "-", "--format", "json", stdout_may_hold_token=True))
    assert wait_for(lambda: labels(admin, namespace, "default-token").get(LAST_USED)) == today()


def test_request_mode_token_carries_a_credential_id_from_1_32(
    dev_tool: DevTool, admin: Admin, namespace: str
) -> None:
    """ServiceAccountTokenJTI (GA 1.32): a TokenRequest token is identified by its
    JTI in the user's extra; legacy Secret tokens and older servers have none."""
    data = json_out(
        dev_tool("--mode", "request", "--out", "-", "--format", "json", stdout_may_hold_token=True)
    )
    anonymous = Admin(admin.server, admin.ca)
    status, review = anonymous.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        token=data["token"],
    )
    assert status == 201, review
    extra = review["status"]["userInfo"].get("extra") or {}
    if minor(admin) >= 32:
        assert extra[CREDENTIAL_ID][0].startswith("JTI=")
    else:
        assert CREDENTIAL_ID not in extra


def test_legacy_token_cleaner_never_touches_the_tools_secret(
    dev_cluster: DevCluster, dev_tool: DevTool, admin: Admin, namespace: str
) -> None:
    """The legacy token cleaner (beta 1.29, GA 1.30) invalidates unused token
    Secrets that a ServiceAccount lists in `secrets`. The tool never lists its
    Secret there, so its token survives a cleaner run that invalidates a listed
    one. The dev cluster runs the cleaner with a 1 s period; it only starts
    cleaning one day after tracking began (a ConfigMap date), so the test moves
    that date back and restarts the controller manager, which runs it at once."""
    if minor(admin) < 29:
        pytest.skip("no legacy token cleaner before 1.29")
    ns = f"/api/v1/namespaces/{namespace}"
    data = json_out(dev_tool("--out", "-", "--format", "json", stdout_may_hold_token=True))
    # A Secret the ServiceAccount lists, like the pre-1.24 auto-generated ones.
    assert admin.request("POST", f"{ns}/serviceaccounts", {"metadata": {"name": "old"}})[0] == 201
    secret = {
        "metadata": {
            "name": "old-token",
            "annotations": {"kubernetes.io/service-account.name": "old"},
        },
        "type": "kubernetes.io/service-account-token",
    }
    assert admin.request("POST", f"{ns}/secrets", secret)[0] == 201
    assert wait_for(lambda: admin.secret_token(namespace, "old-token"))
    patch = {"secrets": [{"name": "old-token"}]}
    status, body = _patch(admin, f"{ns}/serviceaccounts/old", patch)
    assert status == 200, body
    for name in ("old-token", "default-token"):  # both last used long ago
        status, body = _patch(
            admin, f"{ns}/secrets/{name}", {"metadata": {"labels": {LAST_USED: "2020-01-01"}}}
        )
        assert status == 200, body
    time.sleep(1.5)  # older than the 1 s period

    tracking = "/api/v1/namespaces/kube-system/configmaps/kube-apiserver-legacy-service-account-token-tracking"
    status, configmap = admin.request("GET", tracking)
    assert status == 200, configmap
    since = configmap["data"]["since"]
    try:
        assert _patch(admin, tracking, {"data": {"since": "2020-01-01"}})[0] == 200
        dev_cluster.component("stop", "kube-controller-manager")
        dev_cluster.component("start", "kube-controller-manager")
        assert (
            wait_for(lambda: labels(admin, namespace, "old-token").get(INVALID_SINCE), 30)
            == today()
        )
    finally:
        _patch(admin, tracking, {"data": {"since": since}})
    assert INVALID_SINCE not in labels(admin, namespace, "default-token")
    assert admin.whoami(data["token"]) == (201, f"system:serviceaccount:{namespace}:default")
    old = admin.secret_token(namespace, "old-token")
    assert old and admin.whoami(old)[0] == 401


def _patch(admin: Admin, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = admin.pool.request(
        "PATCH",
        admin.server + path,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/merge-patch+json"},
        timeout=10,
    )
    return response.status, json.loads(response.data)


def _dev_cluster(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEV_CLUSTER_DIR": str(state)}
    env.pop("K8S_VERSION", None)
    return subprocess.run(
        [sys.executable, str(DEV_CLUSTER), *args], env=env, capture_output=True, text=True
    )


def test_unpinned_version_is_refused_with_the_pinned_list(tmp_path: Path) -> None:
    result = _dev_cluster(tmp_path / "c", "up", "--version", "1.31")
    assert result.returncode == 1
    assert "Kubernetes 1.31 is not pinned; pinned: v1.29.15 v1.36.3 v1.37.2" in result.stderr
    assert "scripts/k8s/pin" in result.stderr
    assert not (tmp_path / "c").exists()
    malformed = _dev_cluster(tmp_path / "c", "up", "--version", "latest")
    assert malformed.returncode == 1
    assert "'latest' is not of the form 1.MINOR or 1.MINOR.PATCH" in malformed.stderr


def test_running_cluster_keeps_its_version(dev_cluster: DevCluster, admin: Admin) -> None:
    _, body = admin.request("GET", "/version")
    result = _dev_cluster(dev_cluster.state, "up", "--version", "1.1")
    assert result.returncode == 1
    assert f"runs Kubernetes {body['gitVersion']}, not 1.1; run `scripts/dev-cluster down`" in (
        result.stderr
    )
    same = _dev_cluster(dev_cluster.state, "up", "--version", body["gitVersion"].lstrip("v"))
    assert same.returncode == 0, same.stderr
    assert same.stdout == f"export KUBECONFIG={dev_cluster.kubeconfig}\n"
