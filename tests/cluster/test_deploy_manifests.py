"""manifests/deploy/ against the real API server: the ClusterRoles and the rotation CronJob
pass `kubectl apply --dry-run=server`, and the CronJob's own RBAC lets its own command
run (in-cluster, as its ServiceAccount), delivery included where this build has it."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.pod import ROLE_FILE, apply_roles, create, make_pod
from tests.conftest import REPO, Admin, DevCluster, run_tool

CRONJOB_FILE = REPO / "manifests" / "deploy" / "cronjob-rotate.yaml"


def kubectl(dev_cluster: DevCluster, *args: str, stdin: str | None = None) -> str:
    process = subprocess.run(
        ["kubectl", "--kubeconfig", str(dev_cluster.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 0, process.stderr
    return process.stdout


@pytest.fixture
def names(admin: Admin) -> Iterator[dict[str, str]]:
    """Fresh namespaces standing in for bootstrap-token-system, team-a and argocd."""
    suffix = uuid.uuid4().hex[:5]
    made = {
        "system": f"t-cron-system-{suffix}",
        "target": f"t-cron-team-{suffix}",
        "mgmt": f"t-cron-argocd-{suffix}",
    }
    for name in made.values():
        create(admin, "/api/v1/namespaces", {"metadata": {"name": name}})
    yield made
    for name in made.values():
        admin.request("DELETE", f"/api/v1/namespaces/{name}")


def substituted(names: dict[str, str]) -> str:
    """The CronJob manifest with the names its header says to substitute."""
    text = CRONJOB_FILE.read_text()
    for old, new in (
        ("namespace: bootstrap-token-system", f"namespace: {names['system']}"),
        ("namespace: team-a", f"namespace: {names['target']}"),
        ("--namespace=team-a", f"--namespace={names['target']}"),
        ("namespace: argocd", f"namespace: {names['mgmt']}"),
        ("/argocd\n", f"/{names['mgmt']}\n"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


def test_clusterroles_pass_a_server_side_dry_run(dev_cluster: DevCluster) -> None:
    out = kubectl(dev_cluster, "apply", "--dry-run=server", "-f", str(ROLE_FILE))
    # created, or configured/unchanged once another test applied them
    assert [line.split(" ")[0] for line in out.splitlines()] == [
        "clusterrole.rbac.authorization.k8s.io/bootstrap-token-bootstrapper",
        "clusterrole.rbac.authorization.k8s.io/bootstrap-token-apply-to",
    ]
    assert all(line.endswith(" (server dry run)") for line in out.splitlines())


def test_cronjob_manifest_passes_a_server_side_dry_run(
    dev_cluster: DevCluster, names: dict[str, str]
) -> None:
    out = kubectl(dev_cluster, "apply", "--dry-run=server", "-f", "-", stdin=substituted(names))
    assert [line.split(" ")[0] for line in out.splitlines()] == [
        "serviceaccount/bootstrap-token-rotator",
        "rolebinding.rbac.authorization.k8s.io/bootstrap-token-bootstrapper",
        "role.rbac.authorization.k8s.io/argocd-deployer",
        "role.rbac.authorization.k8s.io/bootstrap-token-bind-argocd-deployer",
        "rolebinding.rbac.authorization.k8s.io/bootstrap-token-bind-argocd-deployer",
        "role.rbac.authorization.k8s.io/bootstrap-token-apply-cluster-in-cluster",
        "rolebinding.rbac.authorization.k8s.io/bootstrap-token-apply-cluster-in-cluster",
        "cronjob.batch/bootstrap-token-rotate",
    ]
    assert all(line.endswith("created (server dry run)") for line in out.splitlines())


def cronjob_args(text: str) -> list[str]:
    for document in yaml.safe_load_all(text):
        if document["kind"] == "CronJob":
            spec: Any = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            return list(spec["containers"][0]["args"])
    raise AssertionError("no CronJob")


def test_the_cronjobs_rbac_lets_its_own_command_run(
    admin: Admin, dev_cluster: DevCluster, names: dict[str, str], tmp_path: Path
) -> None:
    apply_roles(dev_cluster)
    text = substituted(names)
    kubectl(dev_cluster, "apply", "-f", "-", stdin=text)
    pod = make_pod(
        admin,
        dev_cluster,
        tmp_path,
        names["system"],
        account="bootstrap-token-rotator",
        role=None,
        works_in=names["target"],
    )
    args = cronjob_args(text)
    delivers = "--apply-to" in run_tool("rotate", "--help").stdout
    if not delivers:  # built before --format argocd / --apply-to: the rotation alone
        args = [a for a in args if not a.startswith(("--format=", "--apply-to="))]
    result = pod.run(*args)
    assert result.returncode == 0, result.stderr
    target = names["target"]
    # the CronJob's command is quiet by default: its one line says who the token is
    assert f"system:serviceaccount:{target}:argocd-deployer on cluster" in result.stderr
    status, binding = admin.request(
        "GET",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{target}/rolebindings/"
        "bootstrap-token:argocd-deployer:argocd-deployer",
    )
    assert status == 200, binding
    # What --apply-to does, done by kubectl as the rotator: a server-side apply of its one
    # Secret in the management namespace works (first a create, then a patch); any other
    # Secret there is refused. (Its own field manager: the tool's fields stay.)
    kubeconfig = tmp_path / "rotator.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": dev_cluster.server,
                            "certificate-authority": str(dev_cluster.ca_file),
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"tokenFile": str(pod.directory / "token")}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    kubeconfig.chmod(0o600)
    for name, expected in (("cluster-in-cluster", 0), ("cluster-in-cluster", 0), ("other", 1)):
        process = subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(kubeconfig),
                "apply",
                "--server-side",
                "--field-manager",
                "rbac-probe",
                "-f",
                "-",
            ],
            input=yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": name, "namespace": names["mgmt"]},
                    "stringData": {"probe": "yes"},
                }
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert process.returncode == expected, process.stderr
    assert 'cannot patch resource "secrets"' in process.stderr
    if delivers:
        status, secret = admin.request(
            "GET", f"/api/v1/namespaces/{names['mgmt']}/secrets/cluster-in-cluster"
        )
        assert status == 200, secret
        assert secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "cluster"
    # A second night: rotated again, still one token Secret.
    again = pod.run(*args)
    assert again.returncode == 0, again.stderr
    assert len(admin.secrets_of(target, "argocd-deployer")) == 1
