"""Leases and the sweep: delete what bootstrap-token created once its lease ran out.

A run with `--ttl` stamps the annotation `bootstrap-token/expires-at` (RFC 3339, UTC) on
every object it creates, in the create request itself, so even a run killed right after
its first request leaves an object that expires. Objects that were there before the run
(a ServiceAccount such as `default`, a binding someone else made) never get a lease.

`sweep` lists the namespace (or every namespace), decides for every object, and only
then deletes, Secrets first (that revokes their tokens), then bindings, then
ServiceAccounts. An object is deleted only when all of these hold:

- it carries the label `app.kubernetes.io/managed-by: bootstrap-token` and a lease
  that parses and lies in the past;
- a Secret: of type `kubernetes.io/service-account-token`, annotated with the name of
  a live ServiceAccount (and its UID, once the token controller stamped it), and its
  account label (when present) names the same account: never a Secret of another
  account, never another kind of Secret;
- a RoleBinding / ClusterRoleBinding: its only subject is one ServiceAccount (a
  binding that also binds others is kept), and no token Secret of ours for that
  account outlives this sweep (a newer token, e.g. rotated with a later lease, keeps
  its powers);
- a ServiceAccount: no token Secret of it (ours or not) outlives this sweep, since
  deleting the account would kill that token too.

Everything else is kept, with the reason. Deletes carry the UID as a precondition (an
object replaced in between is not deleted), and with a dry-run `Plan` they are sent as
server-side dry runs. `decide` is pure; `look` lists and decides, `delete` deletes one object.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from bootstrap.console import NOTICE
from bootstrap.errors import AuthError
from bootstrap.steps import manifests
from bootstrap.steps.manifests import segment

log = logging.getLogger("bootstrap")

RBAC = "/apis/rbac.authorization.k8s.io/v1"
Body = Mapping[str, Any]


def lease_until(seconds: int, now: datetime | None = None) -> str:
    """The lease of an object created now that lives `seconds`: RFC 3339, UTC, whole
    seconds rounded up (a lease never ends before the asked TTL)."""
    start = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    end = start + timedelta(seconds=seconds)
    if end.microsecond:
        end = end.replace(microsecond=0) + timedelta(seconds=1)
    return end.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ttl(text: str) -> int:
    """--ttl DURATION ("90s", "30m", "2h", "7d") in seconds, at least 1."""
    from bootstrap.errors import UsageError
    from bootstrap.steps.tokenrequest import parse_duration

    seconds = parse_duration(text, "--ttl", minimum=0)
    if seconds < 1:
        raise UsageError(f"--ttl {text!r} must be at least 1s")
    return seconds


def parse_lease(text: str) -> datetime | None:
    """A lease annotation as an aware UTC time; None when it is not RFC 3339 with a zone."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(timezone.utc)


@dataclass(frozen=True)
class Decision:
    action: str  # "delete" or "keep"
    kind: str  # Secret, RoleBinding, ClusterRoleBinding, ServiceAccount
    namespace: str | None  # None for a ClusterRoleBinding
    name: str
    lease: str
    reason: str = ""  # why it is kept
    body: Body | None = None

    @property
    def what(self) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind} {self.name}"
        )

    @property
    def path(self) -> str:
        name = segment(self.name)
        ns = segment(self.namespace or "")
        return {
            "Secret": f"/api/v1/namespaces/{ns}/secrets/{name}",
            "ServiceAccount": f"/api/v1/namespaces/{ns}/serviceaccounts/{name}",
            "RoleBinding": f"{RBAC}/namespaces/{ns}/rolebindings/{name}",
            "ClusterRoleBinding": f"{RBAC}/clusterrolebindings/{name}",
        }[self.kind]


def _meta(body: Body) -> Mapping[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _annotations(body: Body) -> Mapping[str, Any]:
    value = _meta(body).get("annotations")
    return value if isinstance(value, Mapping) else {}


def _expired(body: Body, now: datetime) -> tuple[bool, str | None, str]:
    """(expired, lease text, reason to keep though labelled and leased)."""
    lease = manifests.lease_of(body)
    if lease is None or not manifests.is_managed(dict(body)):
        return False, lease, ""
    when = parse_lease(lease)
    if when is None:
        return False, lease, f"has a lease {lease!r} that is not an RFC 3339 time"
    return when <= now, lease, ""


def decide(
    service_accounts: Iterable[Body],
    token_secrets: Iterable[Body],
    bindings: Iterable[Body],
    cluster_bindings: Iterable[Body],
    now: datetime,
) -> list[Decision]:
    """What to delete and what to keep, in the order to delete: Secrets, bindings,
    ServiceAccounts. Objects without an expired lease of ours are not mentioned, except
    a leased object whose lease cannot be read (kept, with the reason).

    `token_secrets` must hold every token Secret of the namespaces looked at (ours and
    others'), without their data: a ServiceAccount with a live token is never deleted."""
    accounts = {
        (str(_meta(a).get("namespace")), str(_meta(a).get("name"))): a for a in service_accounts
    }
    secrets = [s for s in token_secrets if s.get("type") == manifests.TOKEN_SECRET_TYPE]
    decisions: list[Decision] = []
    doomed_secrets: set[tuple[str, str]] = set()

    def keep(kind: str, ns: str | None, name: str, lease: str | None, reason: str) -> None:
        decisions.append(Decision("keep", kind, ns, name, lease or "", reason))

    for secret in secrets:
        ns, name = str(_meta(secret).get("namespace")), str(_meta(secret).get("name"))
        expired, lease, problem = _expired(secret, now)
        if problem:
            keep("Secret", ns, name, lease, problem)
        if not expired or lease is None:
            continue
        owner = _annotations(secret).get(manifests.SA_NAME_ANNOTATION)
        labelled = (_meta(secret).get("labels") or {}).get(manifests.SA_LABEL)
        account = accounts.get((ns, str(owner)))
        live_uid = _meta(account).get("uid") if account is not None else None
        if not isinstance(owner, str) or not owner:
            reason = "names no ServiceAccount"
        elif labelled is not None and labelled != owner:
            reason = f"is labelled for ServiceAccount {labelled!r} but belongs to {owner!r}"
        elif account is None:
            reason = manifests.stale(dict(secret), owner, None) or ""
        else:
            # Not stamped by the token controller yet: it belongs to the live account.
            reason = manifests.stale(dict(secret), owner, str(live_uid)) or ""
        if reason:
            keep("Secret", ns, name, lease, reason)
            continue
        doomed_secrets.add((ns, name))
        decisions.append(Decision("delete", "Secret", ns, name, lease, body=secret))

    def live_tokens(ns: str, account: str, ours_only: bool) -> list[str]:
        """Token Secrets of the account that outlive this sweep."""
        return sorted(
            str(_meta(s).get("name"))
            for s in secrets
            if str(_meta(s).get("namespace")) == ns
            and _annotations(s).get(manifests.SA_NAME_ANNOTATION) == account
            and (ns, str(_meta(s).get("name"))) not in doomed_secrets
            and (manifests.is_managed(dict(s)) or not ours_only)
        )

    for binding, kind in [(b, "RoleBinding") for b in bindings] + [
        (b, "ClusterRoleBinding") for b in cluster_bindings
    ]:
        name = str(_meta(binding).get("name"))
        scope = str(_meta(binding).get("namespace")) if kind == "RoleBinding" else None
        expired, lease, problem = _expired(binding, now)
        if problem:
            keep(kind, scope, name, lease, problem)
        if not expired or lease is None:
            continue
        subjects = [s for s in binding.get("subjects") or [] if isinstance(s, Mapping)]
        first = subjects[0] if subjects else {}
        if len(subjects) != 1 or first.get("kind") != "ServiceAccount":
            shown = ", ".join(
                f"{s.get('kind')} {str(s['namespace']) + '/' if s.get('namespace') else ''}"
                f"{s.get('name')}"
                for s in subjects
            )
            keep(
                kind,
                scope,
                name,
                lease,
                f"binds {shown or 'nobody'}, not one ServiceAccount alone (edit its subjects "
                "by hand if it must go)",
            )
            continue
        sa_ns, sa = str(first.get("namespace") or scope), str(first.get("name"))
        alive = live_tokens(sa_ns, sa, ours_only=True)
        if alive:
            keep(
                kind,
                scope,
                name,
                lease,
                f"ServiceAccount {sa_ns}/{sa} still has token Secret {', '.join(alive)} "
                "whose lease has not run out",
            )
            continue
        decisions.append(Decision("delete", kind, scope, name, lease, body=binding))

    for (ns, name), account in accounts.items():
        expired, lease, problem = _expired(account, now)
        if problem:
            keep("ServiceAccount", ns, name, lease, problem)
        if not expired or lease is None:
            continue
        alive = live_tokens(ns, name, ours_only=False)
        if alive:
            keep(
                "ServiceAccount",
                ns,
                name,
                lease,
                f"still has token Secret {', '.join(alive)} (deleting the account would revoke it)",
            )
            continue
        decisions.append(Decision("delete", "ServiceAccount", ns, name, lease, body=account))
    return decisions


def paths(namespace: str | None) -> dict[str, str]:
    """The LIST requests of one sweep: every ServiceAccount and token Secret (ours or
    not: see `decide`), and our bindings."""
    where = f"/namespaces/{segment(namespace)}" if namespace else ""
    managed = "?labelSelector=" + manifests.managed_selector()
    tokens = "?fieldSelector=" + quote(f"type={manifests.TOKEN_SECRET_TYPE}", safe="")
    return {
        "serviceaccounts": f"/api/v1{where}/serviceaccounts",
        "secrets": f"/api/v1{where}/secrets{tokens}",
        "rolebindings": f"{RBAC}{where}/rolebindings{managed}",
        "clusterrolebindings": f"{RBAC}/clusterrolebindings{managed}",
    }


def look(api: Any, namespace: str | None, now: datetime) -> list[Decision]:
    """List one cluster (`namespace`, or every one with None) and decide; no change."""
    scope = f"in namespace {namespace}" if namespace else "in all namespaces"
    items: dict[str, list[Body]] = {}
    for resource, path in paths(namespace).items():
        where = "cluster-wide" if resource == "clusterrolebindings" else scope
        try:
            body = api.get(path, f"list {resource} {where}")
        except AuthError:
            if resource != "clusterrolebindings" or namespace is None:
                raise
            # Swept in one namespace with rights only there (a RoleBinding cannot grant
            # cluster-wide lists): its ClusterRoleBindings wait for an --all-namespaces sweep.
            log.log(NOTICE, "not allowed to list clusterrolebindings: they are not swept")
            body = {}
        items[resource] = [
            {k: v for k, v in item.items() if k != "data"}  # the tokens: never kept
            for item in body.get("items") or []
            if isinstance(item, Mapping)
        ]
    cluster_bindings = items["clusterrolebindings"]
    if namespace is not None:  # only those binding an account of this namespace
        cluster_bindings = [
            b
            for b in cluster_bindings
            if any(
                isinstance(s, Mapping) and s.get("namespace") == namespace
                for s in b.get("subjects") or []
            )
        ]
    return decide(
        items["serviceaccounts"], items["secrets"], items["rolebindings"], cluster_bindings, now
    )


def delete(api: Any, decision: Decision, dry_run: bool) -> None:
    """Delete the object of a "delete" decision, exactly the one looked at (its UID is a
    precondition); with `dry_run`, as a server-side dry run."""
    from bootstrap.steps.plan import Plan
    from bootstrap.steps.revoke import _delete

    if decision.action != "delete" or decision.body is None:
        raise ValueError(f"{decision.what} is not to be deleted")
    resource = decision.path.rsplit("/", 2)[-2]
    where = "cluster-wide" if decision.namespace is None else f"in namespace {decision.namespace}"
    path = Plan(dry_run=dry_run).path(decision.path)
    _delete(api, path, dict(decision.body), f"delete {resource} {where}", dry_run)
