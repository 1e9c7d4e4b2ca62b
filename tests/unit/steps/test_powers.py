"""bootstrap.steps.powers, the pure parts: which access reviews are asked, how their answers
become the documented power names, the warning, and the `default` ServiceAccount rule."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bootstrap.commands.cli import command
from bootstrap.errors import UsageError
from bootstrap.steps import powers


def test_the_power_names_are_stable() -> None:
    assert powers.POWERS == (
        "cluster-admin",
        "read-secrets-cluster-wide",
        "read-secrets-kube-system",
        "exec-pods-cluster-wide",
        "escalate-roles",
        "bind-roles",
        "impersonate",
    )


def test_review_bodies() -> None:
    bodies = {check.power: powers.review_body(check) for check in powers.CHECKS}
    assert bodies["cluster-admin"] == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "*", "group": "*", "resource": "*"}},
    }
    assert bodies["read-secrets-kube-system"]["spec"]["resourceAttributes"] == {
        "verb": "get",
        "group": "",
        "resource": "secrets",
        "namespace": "kube-system",
    }
    assert bodies["exec-pods-cluster-wide"]["spec"]["resourceAttributes"] == {
        "verb": "create",
        "group": "",
        "resource": "pods",
        "subresource": "exec",
    }
    # Cluster-wide questions carry no namespace; only the kube-system one has one.
    with_namespace = [
        p for p, b in bodies.items() if "namespace" in b["spec"]["resourceAttributes"]
    ]
    assert with_namespace == ["read-secrets-kube-system"]


@pytest.mark.parametrize(
    ("review", "expected"),
    [
        ({"status": {"allowed": True}}, True),
        ({"status": {"allowed": False, "reason": "no RBAC policy matched"}}, False),
        ({"status": {"allowed": "true"}}, False),
        ({"status": {}}, False),
        ({"status": None}, False),
        ({}, False),
    ],
)
def test_only_an_explicit_true_is_allowed(review: dict[str, object], expected: bool) -> None:
    assert powers.allowed(review) is expected


def test_classify() -> None:
    assert powers.classify({}) == ()
    assert powers.classify({p: False for p in powers.POWERS}) == ()
    assert powers.classify({"impersonate": True, "read-secrets-kube-system": True}) == (
        "read-secrets-kube-system",
        "impersonate",
    )
    # cluster-admin implies every other power: the rest is not asked, yet is reported.
    assert powers.classify({"cluster-admin": True}) == powers.POWERS


def test_warning_names_what_the_token_can_do() -> None:
    identity = "system:serviceaccount:ci:deployer"
    assert powers.warning(identity, "ci", ()) is None
    assert powers.warning(identity, "ci", None) is None
    admin = powers.warning(identity, "ci", powers.POWERS)
    assert admin is not None and admin.startswith(
        "warning: the new token for system:serviceaccount:ci:deployer is powerful. "
        "It is cluster-admin: it may do anything to anything in every namespace."
    )
    secrets = powers.warning(identity, "ci", ("read-secrets-cluster-wide",))
    assert secrets is not None and (
        "It may list Secrets in every namespace [read-secrets-cluster-wide]." in secrets
    )
    system = powers.warning("system:serviceaccount:kube-system:x", "kube-system", ())
    assert system is not None and "Its ServiceAccount is in kube-system" in system


@pytest.mark.parametrize(
    ("accounts", "explicit", "roles", "cluster_roles"),
    [
        (("default",), True, ("edit",), ()),
        (("deployer",), False, ("edit",), ("view",)),
        (("default",), False, (), ()),
    ],
)
def test_default_binding_allowed(
    accounts: tuple[str, ...],
    explicit: bool,
    roles: tuple[str, ...],
    cluster_roles: tuple[str, ...],
) -> None:
    powers.refuse_default_binding("ci", accounts, explicit, roles, cluster_roles)


def test_default_binding_refused() -> None:
    with pytest.raises(UsageError) as e:
        powers.refuse_default_binding("ci", ("default",), False, ("edit",), ("view",))
    assert str(e.value) == (
        "--role edit, --clusterrole view would be bound to the ServiceAccount 'default' of "
        "namespace 'ci', which every Pod there runs as unless it names another: name a "
        "ServiceAccount of its own (--service-account NAME), or pass --service-account "
        "default if that is really meant"
    )


def test_cli_knows_whether_service_account_was_typed() -> None:
    runner = CliRunner()
    implicit = runner.invoke(command, ["--cluster", "dev", "--clusterrole", "view", "--dry-run"])
    assert implicit.exit_code == 2
    assert "would be bound to the ServiceAccount 'default'" in implicit.output
    # Typed explicitly, the rule lets the run go on: it then stops at the next step,
    # the (deliberately missing) kubeconfig, not at the default-ServiceAccount rule.
    explicit = runner.invoke(
        command,
        ["--cluster", "dev", "--clusterrole", "view", "--service-account", "default", "--dry-run"],
        env={"KUBECONFIG": "/nonexistent/kubeconfig"},
    )
    assert explicit.exit_code == 3, explicit.output
    assert "would be bound" not in explicit.output
    assert "no kubeconfig found" in explicit.output


def test_a_binding_is_in_effect_once_the_rules_go_beyond_self_reviews() -> None:
    baseline = {
        "status": {
            "resourceRules": [
                {
                    "verbs": ["create"],
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                },
                {
                    "verbs": ["create"],
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                },
            ]
        }
    }
    assert not powers.beyond_self_reviews(baseline)
    assert not powers.beyond_self_reviews({})
    assert not powers.beyond_self_reviews({"status": {"resourceRules": "nonsense"}})
    bound = {"status": {"resourceRules": [{"verbs": ["get"], "resources": ["configmaps"]}]}}
    assert powers.beyond_self_reviews(bound)
