"""The power review from SelfSubjectRulesReviews (powers.from_rules, one request for a
least-privilege token) says exactly what the seven SelfSubjectAccessReviews say
(powers.ask_all), for real tokens with real bindings: the RBAC authorizer is the oracle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.kube.client import Api, Credentials, Deadline
from bootstrap.steps import powers
from tests.conftest import Admin, DevTool, remember_token

RBAC = "/apis/rbac.authorization.k8s.io/v1"


@pytest.fixture
def cleanup(admin: Admin) -> Iterator[list[str]]:
    paths: list[str] = []
    yield paths
    for path in paths:
        admin.request("DELETE", path)


def issued(dev_tool: DevTool, tmp_path: Path, account: str, *flags: str) -> Api:
    result = dev_tool(
        "--service-account", account, *flags, "-o", "json", "--out", f"{account}.json"
    )
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / f"{account}.json").read_text())
    remember_token(document["token"])
    return Api(
        document["apiserver"],
        Credentials(token=document["token"]),
        Deadline(30),
        ca_data=document["ca_pem"].encode(),
    )


def both_ways(api: Api) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from_rules = powers.from_rules(api)
    assert from_rules is not None, "the dev cluster runs RBAC only: the rules are complete"
    return powers.classify(from_rules), powers.classify(powers.ask_all(api, powers.CHECKS))


def binding(admin: Admin, path: str, name: str, role: str, namespace: str, account: str) -> None:
    status, body = admin.request(
        "POST",
        path,
        {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    )
    assert status == 201, body


def test_rules_and_access_reviews_agree(
    dev_tool: DevTool, admin: Admin, namespace: str, tmp_path: Path, cleanup: list[str]
) -> None:
    plain = issued(dev_tool, tmp_path, "plain")
    assert both_ways(plain) == ((), ())

    viewer = issued(dev_tool, tmp_path, "viewer", "--clusterrole", "view")
    cleanup.append(f"{RBAC}/clusterrolebindings/bootstrap-token:{namespace}:viewer:view")
    assert both_ways(viewer) == ((), ())

    boss = issued(dev_tool, tmp_path, "boss", "--clusterrole", "cluster-admin")
    cleanup.append(f"{RBAC}/clusterrolebindings/bootstrap-token:{namespace}:boss:cluster-admin")
    assert both_ways(boss) == (powers.POWERS, powers.POWERS)

    # cluster-admin, but bound by a RoleBinding in kube-system only: not cluster-wide.
    local = issued(dev_tool, tmp_path, "local")
    name = f"t-{namespace}-local"
    binding(
        admin, f"{RBAC}/namespaces/kube-system/rolebindings", name, "cluster-admin", namespace,
        "local",
    )  # fmt: skip
    cleanup.append(f"{RBAC}/namespaces/kube-system/rolebindings/{name}")
    expected = ("read-secrets-kube-system",)
    assert powers.settle(local, "kube-system")  # the new binding is in effect
    assert both_ways(local) == (expected, expected)

    # A ClusterRole that may only list Secrets, bound cluster-wide.
    reader = issued(dev_tool, tmp_path, "reader")
    role = f"t-{namespace}-secret-lister"
    status, body = admin.request(
        "POST",
        f"{RBAC}/clusterroles",
        {
            "metadata": {"name": role},
            "rules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["secrets"]}],
        },
    )
    assert status == 201, body
    cleanup.append(f"{RBAC}/clusterroles/{role}")
    binding(admin, f"{RBAC}/clusterrolebindings", role, role, namespace, "reader")
    cleanup.append(f"{RBAC}/clusterrolebindings/{role}")
    assert powers.settle(reader, namespace)
    expected = ("read-secrets-cluster-wide",)
    assert both_ways(reader) == (expected, expected)
