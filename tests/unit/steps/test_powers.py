"""bootstrap.steps.powers, the pure parts: which access reviews are asked, how their answers
become the documented power names, the warning, and the `default` ServiceAccount rule."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bootstrap.commands.cli import command
from bootstrap.errors import ApiError, UsageError
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


def rule(verbs: list[str], groups: list[str], resources: list[str], **extra: object) -> dict:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources, **extra}


@pytest.mark.parametrize(
    ("one_rule", "power", "allowed"),
    [
        (rule(["*"], ["*"], ["*"]), "cluster-admin", True),
        (rule(["get", "list"], ["*"], ["*"]), "cluster-admin", False),  # `*` asked: only `*`
        (rule(["*"], [""], ["*"]), "cluster-admin", False),
        (rule(["list"], [""], ["secrets"]), "read-secrets-cluster-wide", True),
        (rule(["list"], ["apps"], ["secrets"]), "read-secrets-cluster-wide", False),
        (rule(["get"], [""], ["secrets"]), "read-secrets-cluster-wide", False),
        (
            rule(["list"], [""], ["secrets"], resourceNames=["one"]),
            "read-secrets-cluster-wide",
            False,
        ),
        (rule(["get"], [""], ["secrets"]), "read-secrets-kube-system", True),
        (rule(["create"], [""], ["pods/exec"]), "exec-pods-cluster-wide", True),
        (rule(["create"], [""], ["*/exec"]), "exec-pods-cluster-wide", True),
        (rule(["create"], [""], ["pods"]), "exec-pods-cluster-wide", False),
        (
            rule(["escalate"], ["rbac.authorization.k8s.io"], ["clusterroles"]),
            "escalate-roles",
            True,
        ),
        (rule(["bind"], ["rbac.authorization.k8s.io"], ["roles"]), "bind-roles", False),
        (rule(["impersonate"], [""], ["users"]), "impersonate", True),
        (rule(["impersonate"], [""], ["groups"]), "impersonate", False),
    ],
)
def test_a_rule_allows_what_rbac_would(one_rule: dict, power: str, allowed: bool) -> None:
    [check] = [c for c in powers.CHECKS if c.power == power]
    assert powers.rule_allows(one_rule, check.attributes) is allowed


class RulesApi:
    """Answers SelfSubjectRulesReviews per namespace; records what was asked."""

    def __init__(self, rules: dict[str, list[dict]], incomplete: bool = False) -> None:
        self.rules, self.incomplete, self.asked = rules, incomplete, []

    def post(self, path: str, body: dict, what: str) -> dict:
        assert path == "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
        namespace = body["spec"]["namespace"]
        self.asked.append(namespace)
        return {"status": {"resourceRules": self.rules.get(namespace, []),
                           "incomplete": self.incomplete}}  # fmt: skip


SELF = [rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews"])]
ADMIN = rule(["*"], ["*"], ["*"])


def test_a_least_privilege_token_costs_one_rules_review() -> None:
    api = RulesApi({"kube-system": SELF, "Cluster-Wide.Rules_Only": SELF})
    assert powers.from_rules(api) == dict.fromkeys(powers.POWERS, False)  # type: ignore[arg-type]
    assert api.asked == ["kube-system"]


def test_cluster_admin_bound_cluster_wide_shows_in_both_reviews() -> None:
    api = RulesApi({"kube-system": [ADMIN], "Cluster-Wide.Rules_Only": [ADMIN]})
    answers = powers.from_rules(api)  # type: ignore[arg-type]
    assert answers is not None and powers.classify(answers) == powers.POWERS
    assert api.asked == ["kube-system", "Cluster-Wide.Rules_Only"]


def test_admin_of_kube_system_only_is_not_cluster_wide() -> None:
    api = RulesApi({"kube-system": [ADMIN], "Cluster-Wide.Rules_Only": SELF})
    answers = powers.from_rules(api)  # type: ignore[arg-type]
    assert answers is not None
    assert powers.classify(answers) == ("read-secrets-kube-system",)


def test_an_incomplete_review_falls_back_to_access_reviews() -> None:
    api = RulesApi({"kube-system": [ADMIN]}, incomplete=True)
    assert powers.from_rules(api) is None  # type: ignore[arg-type]


class BrokenApi:
    """An access review that fails in a way no ApiError describes (a bug, a hostile
    answer): the power review must fail, not count the power as absent."""

    def post(self, path: str, body: dict, what: str) -> dict:
        raise RuntimeError("unexpected")

    def fork(self) -> BrokenApi:
        return self

    def close(self) -> None:
        pass


def test_an_access_review_that_breaks_is_an_error_not_a_no() -> None:
    with pytest.raises(ApiError, match=r"^create selfsubjectaccessreviews failed: RuntimeError$"):
        powers.ask_all(BrokenApi(), powers.CHECKS)  # type: ignore[arg-type]
