"""bootstrap.steps.rules, the pure part: a SelfSubjectRulesReview's answer as the `can` list,
the compact table of `check --can`, and the plain words for an incomplete list."""

from __future__ import annotations

from typing import Any

from bootstrap.steps.rules import (
    Rules,
    discovered_groups,
    incomplete_note,
    parse,
    render,
    review,
    review_body,
)

# As the API server answers for a token bound to `view` (abridged) in namespace ci.
REVIEW: dict[str, Any] = {
    "kind": "SelfSubjectRulesReview",
    "status": {
        "resourceRules": [
            {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": [
                "selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
            {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"],
             "resourceNames": ["settings"]},
            {"verbs": ["get"], "apiGroups": ["apps", "batch"], "resources": ["*"]},
            "not a rule",
            {"verbs": [], "apiGroups": [""], "resources": ["secrets"]},
        ],
        "nonResourceRules": [
            {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/version"]},
            {"verbs": ["get"]},
        ],
        "incomplete": False,
    },
}  # fmt: skip


def test_parse_keeps_the_api_keys_and_drops_malformed_rules() -> None:
    rules = parse(REVIEW, "ci")
    assert rules.namespace == "ci"
    # sorted by resources (then URLs): the API server's order is not stable
    assert list(rules.can) == [
        {"verbs": ["get"], "apiGroups": ["apps", "batch"], "resources": ["*"]},
        {
            "verbs": ["get"],
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["settings"],
        },
        {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]},
        {
            "verbs": ["create"],
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        },
        {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/version"]},
    ]
    shuffled = {"status": {**REVIEW["status"]}}
    shuffled["status"]["resourceRules"] = list(reversed(REVIEW["status"]["resourceRules"]))
    assert parse(shuffled, "ci") == rules
    assert (rules.incomplete, rules.evaluation_error) == (False, None)
    assert incomplete_note(rules) is None


def test_parse_of_a_malformed_answer_is_empty() -> None:
    for answer in ({}, {"status": None}, {"status": {"resourceRules": "x"}}):
        assert parse(answer, "ci") == Rules("ci", ())


def test_incomplete_is_said_plainly() -> None:
    rules = parse(
        {"status": {"incomplete": True, "evaluationError": "webhook authorizer: no rules"}}, "ci"
    )
    assert rules.incomplete and rules.evaluation_error == "webhook authorizer: no rules"
    assert incomplete_note(rules) == (
        "this list may be incomplete: an authorizer of the cluster could not list its rules "
        "(webhook authorizer: no rules); the token may be able to do more (ask one question "
        "exactly with kubectl auth can-i VERB RESOURCE)"
    )


def test_render_is_a_compact_can_i_table() -> None:
    assert render(parse(REVIEW, "ci"), ["", "apps", "batch"]).splitlines() == [
        "What the token can do in namespace ci:",
        "Resources                                       Non-Resource URLs     Resource Names   Verbs",
        "*.apps                                          []                    []               [get]",
        "*.batch                                         []                    []               [get]",
        "configmaps                                      []                    [settings]       [get]",
        "pods                                            []                    []               [get list watch]",
        "selfsubjectaccessreviews.authorization.k8s.io   []                    []               [create]",
        "selfsubjectrulesreviews.authorization.k8s.io    []                    []               [create]",
        "                                                [/healthz /version]   []               [get]",
        "API groups it can discover: core, apps, batch",
    ]  # fmt: skip


def test_render_of_an_incomplete_list_ends_with_the_note() -> None:
    text = render(Rules("ci", (), incomplete=True), None)
    assert text == (
        "What the token can do in namespace ci:\n"
        "Resources   Non-Resource URLs   Resource Names   Verbs\n"
        "note: this list may be incomplete: an authorizer of the cluster could not list its "
        "rules; the token may be able to do more (ask one question exactly with kubectl auth "
        "can-i VERB RESOURCE)\n"
    )


def test_discovered_groups() -> None:
    apis = {"groups": [{"name": "apps"}, {"name": ""}, "x", {"name": "batch"}]}
    assert discovered_groups({"versions": ["v1"]}, apis) == ["", "apps", "batch"]
    assert discovered_groups(None, {}) == []


class FakeApi:
    """Records the one request `review` makes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, str]] = []

    def post(self, path: str, body: Any, what: str) -> dict[str, Any]:
        self.sent.append((path, body, what))
        return REVIEW


def test_review_sends_one_rules_review_for_the_namespace() -> None:
    api = FakeApi()
    assert review(api, "ci") == parse(REVIEW, "ci")
    assert api.sent == [
        (
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectRulesReview",
                "spec": {"namespace": "ci"},
            },
            "create selfsubjectrulesreviews",
        )
    ]
    assert review_body("x")["spec"] == {"namespace": "x"}
