"""After verify: what the new token can do, so a powerful token is never minted silently.

The new token asks the API server about itself (`authorization.k8s.io/v1`, open to
every authenticated user): a SelfSubjectRulesReview of kube-system lists what it may
do there and cluster-wide, evaluated here as the RBAC authorizer matches rules; only
when that shows one of the powers below does a second review (of a namespace that
cannot exist) tell a cluster-wide grant from a kube-system one. Where an authorizer
cannot list its rules (the review comes back incomplete), SelfSubjectAccessReviews
ask one per power below. The answers become a stable list of power names, reported
in the json output (`powers`) and, when not empty, in a warning that `--quiet` keeps:

  power                       the token may...
  cluster-admin               do any verb on any resource in every namespace (`*` on `*`)
  read-secrets-cluster-wide   list Secrets in every namespace
  read-secrets-kube-system    read Secrets in kube-system (the control plane's credentials)
  exec-pods-cluster-wide      run commands in any Pod of any namespace (pods/exec)
  escalate-roles              grant permissions it does not hold (escalate on ClusterRoles)
  bind-roles                  bind any ClusterRole to anyone (bind on ClusterRoles)
  impersonate                 act as any user (impersonate users)

Those access reviews are sent at once, each on a connection of its own, so they cost
one round trip (`cluster-admin` implies every other power). When the run has just
bound roles, a SelfSubjectRulesReview first waits (up to 1 s) for the binding to be in
effect. A token in kube-system is warned about even without any of these: its
ServiceAccount lives beside the control plane's own.

A role bound to a namespace's `default` ServiceAccount is given to every Pod of
the namespace that names no other account: `refuse_default_binding` makes that a
usage error unless `--service-account default` is spelled out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bootstrap.errors import ApiError, UsageError
from bootstrap.kube.client import Api

log = logging.getLogger("bootstrap")

REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
RULES_PATH = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
SELF_REVIEWS = {"selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"}
SETTLE = 1.0  # seconds to wait, at most, for a binding of this run to take effect
RBAC = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Check:
    power: str
    meaning: str  # "the token may ..."
    attributes: Mapping[str, str]  # a SelfSubjectAccessReview's resourceAttributes


CHECKS: tuple[Check, ...] = (
    Check(
        "cluster-admin",
        "do anything to anything in every namespace",
        {"verb": "*", "group": "*", "resource": "*"},
    ),
    Check(
        "read-secrets-cluster-wide",
        "list Secrets in every namespace",
        {"verb": "list", "group": "", "resource": "secrets"},
    ),
    Check(
        "read-secrets-kube-system",
        "read Secrets in kube-system",
        {"verb": "get", "group": "", "resource": "secrets", "namespace": "kube-system"},
    ),
    Check(
        "exec-pods-cluster-wide",
        "run commands in any Pod of any namespace",
        {"verb": "create", "group": "", "resource": "pods", "subresource": "exec"},
    ),
    Check(
        "escalate-roles",
        "grant permissions it does not hold (escalate on ClusterRoles)",
        {"verb": "escalate", "group": RBAC, "resource": "clusterroles"},
    ),
    Check(
        "bind-roles",
        "bind any ClusterRole to anyone (bind on ClusterRoles)",
        {"verb": "bind", "group": RBAC, "resource": "clusterroles"},
    ),
    Check(
        "impersonate",
        "act as any user (impersonate users)",
        {"verb": "impersonate", "group": "", "resource": "users"},
    ),
)
POWERS: tuple[str, ...] = tuple(check.power for check in CHECKS)
MEANING: dict[str, str] = {check.power: check.meaning for check in CHECKS}


def review_body(check: Check) -> dict[str, Any]:
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": dict(check.attributes)},
    }


def allowed(review: Mapping[str, Any]) -> bool:
    """Only an explicit `status.allowed: true` counts (a malformed answer is not a yes)."""
    status = review.get("status")
    return isinstance(status, Mapping) and status.get("allowed") is True


def classify(answers: Mapping[str, bool]) -> tuple[str, ...]:
    """The powers answered yes, in the documented order; `cluster-admin` implies all."""
    if answers.get("cluster-admin"):
        return POWERS
    return tuple(power for power in POWERS if answers.get(power))


def beyond_self_reviews(review: Mapping[str, Any]) -> bool:
    """Whether a SelfSubjectRulesReview grants anything beyond what every authenticated
    user has (creating self reviews): i.e. whether a binding of this run is in effect."""
    status = review.get("status")
    rules = status.get("resourceRules") if isinstance(status, Mapping) else None
    for rule in rules if isinstance(rules, list) else ():
        resources = rule.get("resources") if isinstance(rule, Mapping) else None
        if isinstance(resources, list) and set(resources) - SELF_REVIEWS:
            return True
    return False


def settle(api: Api, namespace: str, limit: float = SETTLE) -> bool:
    """Wait (at most `limit` s) until a binding made moments ago is in effect.

    The RBAC authorizer sees a new (Cluster)RoleBinding through its informer, a few
    ms after the write: asked too early, the reviews would miss the bound role's
    powers, and a cluster-admin token would be minted silently. A role that does not
    exist or grants nothing never shows: the wait then ends at `limit` (False)."""
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }
    end = time.monotonic() + min(limit, api.deadline.remaining())
    while True:
        review = api.post(RULES_PATH, body, "create selfsubjectrulesreviews")
        if beyond_self_reviews(review):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.02)


def assess(api: Api, namespace: str, bound: bool) -> tuple[str, ...] | None:
    """Ask the API server what `api`'s token may do; None if it would not say.
    `bound`: this run bound roles to the ServiceAccount (wait for them first)."""
    started = time.perf_counter()
    try:
        if bound and not settle(api, namespace):
            # A missing role is already warned about, by name, when it is bound (apply.py).
            log.info("the roles bound to the token grant it nothing after %.0f s", SETTLE)
        answers = from_rules(api)
        how = "rules reviews"
        if answers is None:  # an authorizer that cannot list its rules: ask one by one
            answers, how = ask_all(api, CHECKS), "access reviews"
    except ApiError as e:
        log.warning("warning: could not find out what the new token can do: %s", e)
        return None
    log.debug("powers from %s in %.1f ms", how, (time.perf_counter() - started) * 1000)
    return classify(answers)


def rules_review(api: Api, namespace: str) -> list[Mapping[str, Any]] | None:
    """The token's resource rules in `namespace`; None when the review is incomplete
    (an authorizer, e.g. a webhook, could not list its rules)."""
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }
    review = api.post(RULES_PATH, body, "create selfsubjectrulesreviews")
    status = review.get("status")
    if not isinstance(status, Mapping) or status.get("incomplete") is not False:
        return None
    rules = status.get("resourceRules")
    return [r for r in rules if isinstance(r, Mapping)] if isinstance(rules, list) else []


def rule_allows(rule: Mapping[str, Any], attributes: Mapping[str, str]) -> bool:
    """Whether one RBAC rule allows an access review's `attributes`, as the RBAC
    authorizer matches them: `*` matches everything, and a `*` asked for (cluster-admin)
    only a `*`; `*/SUB` matches any resource's subresource SUB; a rule limited to
    resourceNames never allows a request that names no object."""

    def listed(key: str) -> list[str]:
        value = rule.get(key)
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    if listed("resourceNames"):
        return False
    verbs, groups, resources = listed("verbs"), listed("apiGroups"), listed("resources")
    verb, group = attributes["verb"], attributes["group"]
    resource, sub = attributes["resource"], attributes.get("subresource", "")
    wanted = f"{resource}/{sub}" if sub else resource
    return (
        ("*" in verbs or verb in verbs)
        and ("*" in groups or group in groups)
        and ("*" in resources or wanted in resources or (bool(sub) and f"*/{sub}" in resources))
    )


# A namespace name that cannot exist (no capitals or `_` in one): no RoleBinding can be
# there, so a rules review of it holds exactly what ClusterRoleBindings grant.
CLUSTER_WIDE = "Cluster-Wide.Rules_Only"


def from_rules(api: Api) -> dict[str, bool] | None:
    """The answers from SelfSubjectRulesReviews, evaluated as RBAC would: one review of
    kube-system (what ClusterRoleBindings grant, plus kube-system's RoleBindings) answers
    every power when it allows none of them, the common case of a least-privilege token;
    only a token that holds one needs a second review, of CLUSTER_WIDE, to tell a
    cluster-wide grant from a kube-system one. None when a review is incomplete."""
    kube_system = rules_review(api, "kube-system")
    if kube_system is None:
        return None
    answers = {
        check.power: any(rule_allows(rule, check.attributes) for rule in kube_system)
        for check in CHECKS
    }
    wide_checks = [c for c in CHECKS if c.attributes.get("namespace") is None]
    if any(answers[c.power] for c in wide_checks):
        wide = rules_review(api, CLUSTER_WIDE)
        if wide is None:
            return None
        for check in wide_checks:
            answers[check.power] = any(rule_allows(rule, check.attributes) for rule in wide)
    return answers


def ask_all(api: Api, checks: tuple[Check, ...]) -> dict[str, bool]:
    """Every review at once, one connection each (the first on `api`'s kept-alive one),
    so the power review costs one round trip, not one per power."""
    answers: dict[str, bool] = {}
    failures: list[ApiError] = []

    def ask(client: Api, check: Check) -> None:
        try:
            review = client.post(REVIEW_PATH, review_body(check), "create selfsubjectaccessreviews")
            answers[check.power] = allowed(review)
        except ApiError as e:
            failures.append(e)
        except Exception as e:  # never a silent "no": the review did not answer
            failures.append(ApiError(f"create selfsubjectaccessreviews failed: {type(e).__name__}"))
        finally:
            if client is not api:
                client.close()

    threads = [
        threading.Thread(target=ask, args=(api.fork(), check), daemon=True) for check in checks[1:]
    ]
    for thread in threads:
        thread.start()
    if checks:
        ask(api, checks[0])
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return answers


def warning(identity: str, namespace: str, powers: Iterable[str] | None) -> str | None:
    """The warning for a powerful token, or None when there is nothing to say."""
    found = list(powers or ())
    if not found and namespace != "kube-system":
        return None
    parts = [f"warning: the new token for {identity} is powerful."]
    if "cluster-admin" in found:
        parts.append("It is cluster-admin: it may do anything to anything in every namespace.")
    elif found:
        parts.append(
            "It may " + "; ".join(f"{MEANING[p]} [{p}]" for p in found if p in MEANING) + "."
        )
    if namespace == "kube-system":
        parts.append(
            "Its ServiceAccount is in kube-system, beside the control plane's own accounts."
        )
    parts.append(
        "Anyone holding it has these rights: keep it like an admin credential, or issue a "
        "token for a ServiceAccount with a narrower role."
    )
    return " ".join(parts)


def refuse_default_binding(
    namespace: str,
    service_accounts: Iterable[str],
    explicit: bool,
    roles: Iterable[str],
    cluster_roles: Iterable[str],
) -> None:
    """A role bound to `default` goes to every Pod of the namespace: only on purpose."""
    if explicit or "default" not in service_accounts:
        return
    bound = [f"--role {r}" for r in roles] + [f"--clusterrole {r}" for r in cluster_roles]
    if bound:
        raise UsageError(
            f"{', '.join(bound)} would be bound to the ServiceAccount 'default' of namespace "
            f"{namespace!r}, which every Pod there runs as unless it names another: name a "
            "ServiceAccount of its own (--service-account NAME), or pass "
            "--service-account default if that is really meant"
        )
