"""bootstrap.steps.manifests: the ServiceAccount and token Secret bodies rendered from manifests/."""

from __future__ import annotations

import pytest

from bootstrap.steps.manifests import (
    MANAGED_BY,
    SA_LABEL,
    SA_NAME_ANNOTATION,
    SA_UID_ANNOTATION,
    TOKEN_SECRET_TYPE,
    cluster_role_binding,
    is_managed,
    not_ours,
    other_subjects,
    role_binding,
    role_name_problem,
    segment,
    service_account,
    stale,
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


# --- names in URLs, and which objects are ours (docs/objects.md) ----------------------


@pytest.mark.parametrize(
    "name",
    [
        "view",
        "cluster-admin",
        "system:auth-delegator",
        "system:controller:token-cleaner",
        "Upper.Case_role",
        "team:leser-ü",
        "a" * 300,  # the API server sets no length limit on RBAC names
    ],
)
def test_every_name_the_api_server_takes_for_a_role_is_accepted(name: str) -> None:
    assert role_name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "it is empty"),
        (".", "'.' cannot be an object name"),
        ("..", "'..' cannot be an object name"),
        ("a/b", "it contains '/', which the API server refuses in RBAC names"),
        ("50%", "it contains '%', which the API server refuses in RBAC names"),
        ("x?dryRun=All", "it contains '?', which would end the URL path"),
        ("edit#frag", "it contains '#', which would end the URL path"),
        ("my role", "it contains whitespace or control characters"),
        (" view", "it contains whitespace or control characters"),
        ("view\n", "it contains whitespace or control characters"),
        ("a\x00b", "it contains whitespace or control characters"),
        ("a\x7fb", "it contains whitespace or control characters"),
    ],
)
def test_role_names_that_cannot_be_or_would_break_a_url_are_refused(
    name: str, problem: str
) -> None:
    assert role_name_problem(name) == problem


def test_segment_quotes_everything_but_a_colon() -> None:
    assert segment("system:auth-delegator") == "system:auth-delegator"
    assert segment("x?dryRun=All") == "x%3FdryRun%3DAll"
    assert segment("a/b") == "a%2Fb"
    assert segment("50%") == "50%25"
    assert segment("team:leser-ü") == "team:leser-%C3%BC"
    assert segment("a#b c") == "a%23b%20c"


def test_not_ours() -> None:
    ours = token_secret("ns", "a-token", "a", UID)
    assert not_ours(ours, "a", need_label=True) is None
    assert not_ours(ours, "b", need_label=True) == "belongs to ServiceAccount 'a', not 'b'"
    hand_made = token_secret("ns", "a-token", "a", UID)
    hand_made["metadata"]["labels"] = {}
    assert not_ours(hand_made, "a", need_label=True) == "was not created by bootstrap-token"
    assert not_ours(hand_made, "a", need_label=False) is None  # may be reused, not deleted
    opaque = {**ours, "type": "Opaque"}
    assert not_ours(opaque, "a", need_label=True) == (
        "has type 'Opaque', not a service-account token"
    )
    unnamed = token_secret("ns", "a-token", "a", UID)
    unnamed["metadata"]["annotations"] = None
    assert not_ours(unnamed, "a", need_label=True) == "belongs to ServiceAccount None, not 'a'"


def test_stale() -> None:
    secret = token_secret("ns", "a-token", "a", UID)
    assert stale(secret, "a", UID) is None
    assert stale(secret, "a", "0000") == (
        f"belongs to an earlier ServiceAccount 'a' (uid {UID}, the live one is 0000)"
    )
    assert stale(secret, "a", None) == "names ServiceAccount 'a', which does not exist"
    del secret["metadata"]["annotations"][SA_UID_ANNOTATION]  # not stamped yet: the live SA's
    assert stale(secret, "a", "0000") is None


def test_other_subjects() -> None:
    binding = cluster_role_binding("ns", "sa", "view")
    assert other_subjects(binding, "ns", "sa") == []
    binding["subjects"] += [
        {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "ServiceAccount", "name": "sa", "namespace": "other"},
        {"kind": "Group", "name": "devs"},
    ]
    assert other_subjects(binding, "ns", "sa") == [
        "User alice",
        "ServiceAccount other/sa",
        "Group devs",
    ]
    assert other_subjects({"subjects": None}, "ns", "sa") == []
