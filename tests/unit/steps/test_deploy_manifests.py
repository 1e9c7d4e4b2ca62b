"""manifests/deploy/: the least-privilege rules, pinned literally (a change to what the
bootstrapper may do must be a deliberate edit here), and kept apart from the templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bootstrap.steps import manifests

DEPLOY = Path(__file__).resolve().parents[3] / "manifests" / "deploy"


def documents(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((DEPLOY / name).read_text()))


def test_bootstrapper_clusterrole_grants_exactly_this() -> None:
    bootstrapper, apply_to = documents("bootstrapper-clusterrole.yaml")
    assert (bootstrapper["kind"], bootstrapper["metadata"]["name"]) == (
        "ClusterRole",
        "bootstrap-token-bootstrapper",
    )
    assert bootstrapper["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts"],
            "verbs": ["get", "list", "create", "delete"],
        },
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get", "list", "watch", "create", "delete"],
        },
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["rolebindings"],
            "verbs": ["get", "list", "create", "delete"],
        },
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["roles"],
            "verbs": ["bind"],
            "resourceNames": ["bootstrap-token-grantable"],
        },
    ]
    assert (apply_to["metadata"]["name"], apply_to["rules"]) == (
        "bootstrap-token-apply-to",
        [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "patch", "create"]}],
    )


def test_no_deploy_manifest_grants_anything_cluster_wide_or_any_bind() -> None:
    for name in ("bootstrapper-clusterrole.yaml", "cronjob-rotate.yaml"):
        for document in documents(name):
            assert document["kind"] != "ClusterRoleBinding", name
            for rule in document.get("rules", []):
                assert "*" not in rule["verbs"] and "escalate" not in rule["verbs"], rule
                if document["kind"] == "Role" and rule["resources"] == ["secrets"]:
                    # The rotator writes one Secret by name: an empty resourceNames
                    # would mean every Secret of the management namespace.
                    assert rule.get("resourceNames"), rule
                if "bind" in rule["verbs"]:  # empty resourceNames: every role
                    assert rule.get("resourceNames"), rule


def test_cronjob_runs_rotate_in_cluster_and_delivers_one_named_secret() -> None:
    kinds = [(d["kind"], d["metadata"]["name"]) for d in documents("cronjob-rotate.yaml")]
    assert kinds == [
        ("ServiceAccount", "bootstrap-token-rotator"),
        ("RoleBinding", "bootstrap-token-bootstrapper"),
        ("Role", "argocd-deployer"),
        ("Role", "bootstrap-token-bind-argocd-deployer"),
        ("RoleBinding", "bootstrap-token-bind-argocd-deployer"),
        ("Role", "bootstrap-token-apply-cluster-in-cluster"),
        ("RoleBinding", "bootstrap-token-apply-cluster-in-cluster"),
        ("CronJob", "bootstrap-token-rotate"),
    ]
    cronjob = documents("cronjob-rotate.yaml")[-1]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "bootstrap-token-rotator"
    assert pod["containers"][0]["args"][:2] == ["rotate", "--in-cluster"]
    assert "--format=argocd" in pod["containers"][0]["args"]
    assert "--apply-to=in-cluster/argocd" in pod["containers"][0]["args"]
    apply_role = documents("cronjob-rotate.yaml")[5]
    assert apply_role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get", "patch", "create"],
            "resourceNames": ["cluster-in-cluster"],
        }
    ]


def test_deploy_manifests_are_not_templates_of_the_tool() -> None:
    # The tool's templates load as before; deploy/ (multi-document, for kubectl) is a
    # subdirectory that the template loader and the wheel's `*.yaml` never reach.
    assert manifests.template("serviceaccount")["kind"] == "ServiceAccount"
    shipped = Path(__file__).resolve().parents[3] / "manifests"  # shipped as bootstrap._manifests
    assert sorted(p.name for p in shipped.glob("*.yaml")) == [
        "clusterrolebinding.yaml",
        "rolebinding.yaml",
        "serviceaccount.yaml",
        "token-secret.yaml",
    ]


def test_sweeper_clusterrole_grants_exactly_list_and_delete() -> None:
    """The sweep CronJob is the one deploy manifest with a ClusterRoleBinding (it sweeps
    every namespace): list and delete on the four kinds, nothing more."""
    kinds = [(d["kind"], d["metadata"]["name"]) for d in documents("cronjob-sweep.yaml")]
    assert kinds == [
        ("ServiceAccount", "bootstrap-token-sweeper"),
        ("ClusterRole", "bootstrap-token-sweeper"),
        ("ClusterRoleBinding", "bootstrap-token-sweeper"),
        ("CronJob", "bootstrap-token-sweep"),
    ]
    _, role, binding, cronjob = documents("cronjob-sweep.yaml")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts", "secrets"],
            "verbs": ["list", "delete"],
        },
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["rolebindings", "clusterrolebindings"],
            "verbs": ["list", "delete"],
        },
    ]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": "bootstrap-token-sweeper",
            "namespace": "bootstrap-token-system",
        }
    ]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "bootstrap-token-sweeper"
    assert pod["containers"][0]["args"] == [
        "sweep",
        "--in-cluster",
        "--all-namespaces",
        "--timeout=120",
    ]
