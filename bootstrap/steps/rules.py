"""What can this token do? One SelfSubjectRulesReview, made with the token itself.

`review(api, namespace)` sends it (`authorization.k8s.io/v1`, open to every
authenticated user) and returns `Rules`; everything else is pure: `parse` reads the
review, `can` is the list of rules as the API returns them (the `can` key of
`issue -o json` and `check -o json`), `render` is the compact table of
`check --can`, in the manner of `kubectl auth can-i --list`.

The rules are those that apply in `namespace`, cluster-wide grants included. The
review is meant for UIs and hints, not decisions: when an authorizer (a webhook,
the Node authorizer) cannot list its rules the API says `incomplete`, with an
`evaluationError`, and the list may miss what the token can do; `incomplete_note`
says so plainly. A SelfSubjectAccessReview answers one question exactly (powers.py
asks those; it may reuse this review through `review`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RULES_PATH = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"

# The keys of a resource rule and of a non-resource rule, in the API's order.
RESOURCE_KEYS = ("verbs", "apiGroups", "resources", "resourceNames")
NON_RESOURCE_KEYS = ("verbs", "nonResourceURLs")


@dataclass(frozen=True)
class Rules:
    """A SelfSubjectRulesReview's answer. `can`: resource rules, then non-resource
    rules, each a dict with the API's keys (resourceNames only where present)."""

    namespace: str
    can: tuple[dict[str, list[str]], ...]
    incomplete: bool = False
    evaluation_error: str | None = None


def review_body(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }


def _strings(value: object) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [item for item in value if isinstance(item, str)]


def _rule(body: object, keys: tuple[str, ...], required: str) -> dict[str, list[str]] | None:
    """One rule with only the known keys, as lists of strings; None when malformed."""
    if not isinstance(body, Mapping):
        return None
    rule: dict[str, list[str]] = {}
    for key in keys:
        values = _strings(body.get(key))
        if values is not None and (values or key in ("verbs", "apiGroups", required)):
            rule[key] = values
    if not rule.get("verbs") or required not in rule:
        return None
    if required == "resources":
        rule.setdefault("apiGroups", [])
    return rule


def parse(review: Mapping[str, Any], namespace: str) -> Rules:
    """The rules of a SelfSubjectRulesReview response (malformed entries are dropped).

    Resource rules first, then non-resource rules, each kind sorted: the API server
    lists them in no stable order (two reviews of one token differ), and a stable
    `can` diffs well."""
    status = review.get("status")
    status = status if isinstance(status, Mapping) else {}
    can: list[dict[str, list[str]]] = []
    for key, keys, required in (
        ("resourceRules", RESOURCE_KEYS, "resources"),
        ("nonResourceRules", NON_RESOURCE_KEYS, "nonResourceURLs"),
    ):
        entries = status.get(key)
        found = []
        for entry in entries if isinstance(entries, list) else ():
            rule = _rule(entry, keys, required)
            if rule is not None:
                found.append(rule)
        can += sorted(found, key=lambda rule: [rule.get(k, []) for k in (required, *keys)])
    error = status.get("evaluationError")
    return Rules(
        namespace=namespace,
        can=tuple(can),
        incomplete=status.get("incomplete") is True,
        evaluation_error=error if isinstance(error, str) and error else None,
    )


def incomplete_note(rules: Rules) -> str | None:
    """The plain words for an incomplete list, or None when it is complete."""
    if not rules.incomplete:
        return None
    why = f" ({rules.evaluation_error})" if rules.evaluation_error else ""
    return (
        "this list may be incomplete: an authorizer of the cluster could not list its "
        f"rules{why}; the token may be able to do more (ask one question exactly with "
        "kubectl auth can-i VERB RESOURCE)"
    )


def _resource_name(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _brackets(values: Iterable[str]) -> str:
    return "[" + " ".join(values) + "]"


def table_rows(rules: Rules) -> list[tuple[str, str, str, str]]:
    """(resource, non-resource URLs, resource names, verbs) rows: one per resource and
    group of each rule, as `kubectl auth can-i --list` shows them, sorted the same way
    (resource rules by name, then the non-resource URLs)."""
    resource_rows: list[tuple[str, str, str, str]] = []
    url_rows: list[tuple[str, str, str, str]] = []
    for rule in rules.can:
        verbs = _brackets(rule["verbs"])
        if "resources" in rule:
            names = _brackets(rule.get("resourceNames", []))
            for group in rule.get("apiGroups") or [""]:
                for resource in rule["resources"]:
                    resource_rows.append((_resource_name(resource, group), "[]", names, verbs))
        else:
            url_rows.append(("", _brackets(rule["nonResourceURLs"]), "[]", verbs))
    return sorted(resource_rows) + sorted(url_rows, key=lambda row: row[1])


def render(rules: Rules, groups: Iterable[str] | None = None) -> str:
    """The compact table of `check --can`, the API groups the token can discover, and
    the note when the list is incomplete."""
    header = ("Resources", "Non-Resource URLs", "Resource Names", "Verbs")
    table = [header, *table_rows(rules)]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    lines = [
        "   ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "   "
        + row[3]
        for row in table
    ]
    text = f"What the token can do in namespace {rules.namespace}:\n" + "\n".join(lines) + "\n"
    if groups is not None:
        import textwrap

        listed = ", ".join(group or "core" for group in groups) or "none"
        line = f"API groups it can discover: {listed}"
        text += textwrap.fill(line, width=100, subsequent_indent="  ", break_on_hyphens=False)
        text += "\n"
    note = incomplete_note(rules)
    if note:
        text += f"note: {note}\n"
    return text


def discovered_groups(core: Mapping[str, Any] | None, apis: Mapping[str, Any]) -> list[str]:
    """The API group names of `GET /api` (the core group, "") and `GET /apis`."""
    groups = [""] if core is not None and core.get("versions") else []
    listed = apis.get("groups")
    for group in listed if isinstance(listed, list) else ():
        name = group.get("name") if isinstance(group, Mapping) else None
        if isinstance(name, str) and name:
            groups.append(name)
    return groups


# --- with an Api ----------------------------------------------------------------------


def review(api: Any, namespace: str) -> Rules:
    """Ask the API server (as `api`'s token, a `client.Api`) what it may do in `namespace`.
    Raises the client's ApiError when the review cannot be made."""
    answer = api.post(RULES_PATH, review_body(namespace), "create selfsubjectrulesreviews")
    return parse(answer, namespace)


def discover(api: Any) -> list[str]:
    """The API groups `api`'s token can discover (`GET /api`, `GET /apis`)."""
    return discovered_groups(api.get("/api", "get /api"), api.get("/apis", "get /apis"))
