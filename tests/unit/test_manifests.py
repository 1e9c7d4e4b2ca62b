"""bootstrap.manifests: the ServiceAccount and token Secret bodies rendered from manifests/."""

from __future__ import annotations

from bootstrap.manifests import (
    MANAGED_BY,
    SA_LABEL,
    SA_NAME_ANNOTATION,
    SA_UID_ANNOTATION,
    TOKEN_SECRET_TYPE,
    cluster_role_binding,
    is_managed,
    role_binding,
    service_account,
    template,
    token_secret,
    token_secret_selector,
)

UID = "5b0f0c3e-2a7e-4d4b-9f0a-1f1e2d3c4b5a"


def test_constants() -> None:
    assert MANAGED_BY == ("app.kubernetes.io/managed-by", "bootstrap-token")
    assert SA_NAME_ANNOTATION == "kubernetes.io/service-account.name"
    assert SA_UID_ANNOTATION == "kubernetes.io/service-account.uid"
    assert TOKEN_SECRET_TYPE == "kubernetes.io/service-account-token"


def test_service_account() -> None:
    body = service_account("ci", "deployer")
    assert body == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "deployer",
            "namespace": "ci",
            "labels": {MANAGED_BY[0]: MANAGED_BY[1]},
        },
    }


def test_token_secret() -> None:
    body = token_secret("ci", "deployer-token", "deployer", UID)
    assert body == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": TOKEN_SECRET_TYPE,
        "metadata": {
            "name": "deployer-token",
            "namespace": "ci",
            "labels": {MANAGED_BY[0]: MANAGED_BY[1], SA_LABEL: "deployer"},
            "annotations": {SA_NAME_ANNOTATION: "deployer", SA_UID_ANNOTATION: UID},
        },
    }
    assert "data" not in body and "stringData" not in body


def test_token_secrets_are_found_by_a_label_naming_their_account() -> None:
    assert token_secret_selector("deployer") == (
        "app.kubernetes.io%2Fmanaged-by%3Dbootstrap-token%2C"
        "bootstrap-token%2Fservice-account%3Ddeployer"
    )
    long_name = "a" * 64  # too long for a label value: found by the managed-by label alone
    assert SA_LABEL not in token_secret("ns", "s", long_name, UID)["metadata"]["labels"]
    assert token_secret_selector(long_name) == "app.kubernetes.io%2Fmanaged-by%3Dbootstrap-token"


def test_no_placeholder_survives_rendering() -> None:
    rendered = repr([service_account("ns", "sa"), token_secret("ns", "sec", "sa", "uid")])
    for placeholder in ("SERVICE_ACCOUNT", "NAMESPACE", "SECRET", "SERVICE_ACCOUNT_UID"):
        assert placeholder not in rendered


def test_renders_are_independent_copies() -> None:
    first = service_account("a", "one")
    first["metadata"]["labels"]["tampered"] = "yes"
    first["metadata"]["name"] = "changed"
    first["kind"] = "Pod"
    second = service_account("b", "two")
    assert second["kind"] == "ServiceAccount"
    assert second["metadata"]["labels"] == {MANAGED_BY[0]: MANAGED_BY[1]}
    assert (second["metadata"]["name"], second["metadata"]["namespace"]) == ("two", "b")

    secret = token_secret("a", "s1", "one", "uid-1")
    secret["metadata"]["annotations"][SA_UID_ANNOTATION] = "forged"
    secret["metadata"]["labels"].clear()
    secret["type"] = "Opaque"
    again = token_secret("a", "s2", "two", "uid-2")
    assert again["type"] == TOKEN_SECRET_TYPE
    assert again["metadata"]["labels"] == {MANAGED_BY[0]: MANAGED_BY[1], SA_LABEL: "two"}
    assert again["metadata"]["annotations"] == {
        SA_NAME_ANNOTATION: "two",
        SA_UID_ANNOTATION: "uid-2",
    }


def test_renders_do_not_share_nested_objects() -> None:
    one, two = token_secret("n", "s", "sa", "u"), token_secret("n", "s", "sa", "u")
    assert one == two
    assert one is not two
    assert one["metadata"] is not two["metadata"]
    assert one["metadata"]["labels"] is not two["metadata"]["labels"]
    assert one["metadata"]["annotations"] is not two["metadata"]["annotations"]


def test_templates_are_unchanged_by_rendering() -> None:
    before = repr(template("serviceaccount")), repr(template("token-secret"))
    service_account("x", "y")["metadata"]["labels"]["z"] = "1"
    token_secret("x", "y", "z", "u")["metadata"]["annotations"]["a"] = "b"
    assert (repr(template("serviceaccount")), repr(template("token-secret"))) == before
    assert template("serviceaccount")["metadata"]["name"] == "SERVICE_ACCOUNT"


def test_role_binding() -> None:
    body = role_binding("ci", "deployer", "edit")
    assert body == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": "bootstrap-token:deployer:edit",
            "namespace": "ci",
            "labels": {MANAGED_BY[0]: MANAGED_BY[1]},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}],
    }


def test_cluster_role_binding() -> None:
    body = cluster_role_binding("ci", "deployer", "view")
    assert body == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": "bootstrap-token:ci:deployer:view",
            "labels": {MANAGED_BY[0]: MANAGED_BY[1]},
        },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "view",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}],
    }


def test_bindings_are_independent_copies() -> None:
    first = role_binding("a", "sa", "r")
    first["subjects"].append({"kind": "User", "name": "mallory"})
    first["roleRef"]["kind"] = "ClusterRole"
    again = role_binding("a", "sa", "r")
    assert again["roleRef"]["kind"] == "Role"
    assert again["subjects"] == [{"kind": "ServiceAccount", "name": "sa", "namespace": "a"}]
    crb = cluster_role_binding("a", "sa", "r")
    crb["metadata"]["labels"].clear()
    assert is_managed(cluster_role_binding("a", "sa", "r"))


def test_is_managed() -> None:
    assert is_managed(service_account("n", "s"))
    assert is_managed(token_secret("n", "s", "sa", "u"))
    assert not is_managed({"metadata": {"name": "default"}})
    assert not is_managed({"metadata": {"labels": {MANAGED_BY[0]: "helm"}}})
    assert not is_managed({"metadata": {"labels": None}})
    assert not is_managed({})
