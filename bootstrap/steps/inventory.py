"""`list`: what bootstrap-token manages on a cluster, and who holds long-lived tokens.

`rows` is pure: it turns the ServiceAccounts, token Secrets and (Cluster)RoleBindings
of a cluster into one `Row` per token Secret (and one per managed ServiceAccount
without a token Secret, as request mode leaves them). `collect` does the listing
(four LIST requests per cluster) and `render_table`/`render_json` the output.

Columns, all read from the objects (nothing is inferred from names):

- last used: the label `kubernetes.io/legacy-token-last-used` (a date) that the API
  server stamps on a token Secret when its token authenticates (1.28+; at most
  once a day, on the first use of the day).
- invalid since: the label `kubernetes.io/legacy-token-invalid-since` set by the
  legacy token cleaner; the authenticator then rejects the token.
- referenced: the Secret is listed in its ServiceAccount's `secrets`. Only such
  Secrets are eligible for the legacy token cleaner; bootstrap-token never adds
  its Secrets there. None when the ServiceAccount does not exist.
- roles: every RoleBinding/ClusterRoleBinding whose subjects include the
  ServiceAccount, as `Role/NAME`, `ClusterRole/NAME` (bound in the namespace
  through a RoleBinding) or `cluster:ClusterRole/NAME` (through a ClusterRoleBinding).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from bootstrap.errors import AuthError
from bootstrap.steps.manifests import (
    SA_NAME_ANNOTATION,
    TOKEN_SECRET_TYPE,
    is_managed,
    lease_of,
    segment,
)

log = logging.getLogger("bootstrap")

LAST_USED = "kubernetes.io/legacy-token-last-used"
INVALID_SINCE = "kubernetes.io/legacy-token-invalid-since"
API_VERSION = "bootstrap-token/v1"

Body = Mapping[str, Any]


@dataclass(frozen=True)
class Row:
    """One token Secret (or a managed ServiceAccount without one), as listed."""

    cluster: str
    namespace: str
    service_account: str | None
    secret: str | None
    managed: bool  # the Secret (else the ServiceAccount, else a binding of it) is labelled ours
    created: str | None  # the Secret's (else the ServiceAccount's) creationTimestamp
    last_used: str | None
    invalid_since: str | None
    referenced: bool | None  # listed in the ServiceAccount's `secrets`; None: no such SA
    service_account_exists: bool
    roles: tuple[str, ...]
    # The lease (--ttl) of the row's object: the Secret's, else the ServiceAccount's, else
    # the earliest of its bindings'; None: no lease, it stays until revoked.
    lease: str | None = None


def _meta(body: Body) -> Mapping[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _key(body: Body) -> tuple[str, str]:
    meta = _meta(body)
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def roles_of(
    bindings: Iterable[Body], cluster_bindings: Iterable[Body]
) -> dict[tuple[str, str], list[str]]:
    """(namespace, service account) -> the roles bound to it, sorted."""
    found: dict[tuple[str, str], set[str]] = {}
    for binding, cluster_wide in [(b, False) for b in bindings] + [
        (b, True) for b in cluster_bindings
    ]:
        ref = _map(binding.get("roleRef"))
        role = f"{'cluster:' if cluster_wide else ''}{ref.get('kind')}/{ref.get('name')}"
        binding_ns = _meta(binding).get("namespace")
        for subject in binding.get("subjects") or []:
            subject = _map(subject)
            if subject.get("kind") != "ServiceAccount":
                continue
            ns = subject.get("namespace") or binding_ns
            if isinstance(ns, str) and isinstance(subject.get("name"), str):
                found.setdefault((ns, subject["name"]), set()).add(role)
    return {key: sorted(value) for key, value in found.items()}


def rows(
    cluster: str,
    service_accounts: Iterable[Body],
    secrets: Iterable[Body],
    bindings: Iterable[Body],
    cluster_bindings: Iterable[Body],
    *,
    unmanaged: bool = False,
) -> list[Row]:
    """The inventory of one cluster, sorted by namespace, ServiceAccount, Secret.

    Token Secrets labelled as ours are listed, and with `unmanaged` every other token
    Secret too; a managed ServiceAccount without any listed token Secret gets a row
    of its own (secret None)."""
    accounts = {_key(sa): sa for sa in service_accounts}
    bindings, cluster_bindings = list(bindings), list(cluster_bindings)
    roles = roles_of(bindings, cluster_bindings)
    # Accounts that only a binding of ours names (a run killed after binding a
    # pre-existing account, before its Secret): listed too, nothing of ours is invisible.
    ours_bound: dict[tuple[str, str], list[str]] = {}
    for binding in [*bindings, *cluster_bindings]:
        if not is_managed(dict(binding)):
            continue
        for key in roles_of([binding], []):
            ours_bound.setdefault(key, [])
            if lease_of(binding):
                ours_bound[key].append(str(lease_of(binding)))
    result: list[Row] = []
    with_secret: set[tuple[str, str]] = set()
    for secret in secrets:
        if secret.get("type") != TOKEN_SECRET_TYPE:
            continue
        managed = is_managed(dict(secret))
        if not managed and not unmanaged:
            continue
        ns, name = _key(secret)
        meta = _meta(secret)
        owner = _map(meta.get("annotations")).get(SA_NAME_ANNOTATION)
        owner = owner if isinstance(owner, str) else None
        labels = _map(meta.get("labels"))
        account = accounts.get((ns, owner or ""))
        referenced = None
        if account is not None:
            listed = account.get("secrets") or []
            referenced = any(_map(ref).get("name") == name for ref in listed)
        with_secret.add((ns, owner or ""))
        result.append(
            Row(
                cluster=cluster,
                namespace=ns,
                service_account=owner,
                secret=name,
                managed=managed,
                created=meta.get("creationTimestamp"),
                last_used=labels.get(LAST_USED),
                invalid_since=labels.get(INVALID_SINCE),
                referenced=referenced,
                service_account_exists=account is not None,
                roles=tuple(roles.get((ns, owner or ""), ())),
                lease=lease_of(secret),
            )
        )
    for (ns, name), account in accounts.items():
        if (ns, name) in with_secret:
            continue
        managed_account = is_managed(dict(account))
        if not managed_account and (ns, name) not in ours_bound:
            continue
        lease = lease_of(account) if managed_account else None
        if not managed_account and ours_bound[ns, name]:
            lease = min(ours_bound[ns, name])
        result.append(
            Row(
                cluster=cluster,
                namespace=ns,
                service_account=name,
                secret=None,
                managed=True,
                created=_meta(account).get("creationTimestamp"),
                last_used=None,
                invalid_since=None,
                referenced=None,
                service_account_exists=True,
                roles=tuple(roles.get((ns, name), ())),
                lease=lease,
            )
        )
    result.sort(key=lambda r: (r.cluster, r.namespace, r.service_account or "", r.secret or ""))
    return result


def paths(namespace: str | None, unmanaged: bool) -> dict[str, str]:
    """The LIST requests for one cluster: ServiceAccounts, Secrets, RoleBindings
    (namespace-scoped when `namespace` is given) and ClusterRoleBindings."""
    where = f"/namespaces/{segment(namespace)}" if namespace else ""
    # Managed only: the label selects (Secrets of other types are dropped in `rows`).
    # With --unmanaged: every token Secret (a field selector secrets support).
    secret_filter = (
        "?fieldSelector=" + quote(f"type={TOKEN_SECRET_TYPE}", safe="")
        if unmanaged
        else "?labelSelector=" + quote("app.kubernetes.io/managed-by=bootstrap-token", safe="")
    )
    return {
        "serviceaccounts": f"/api/v1{where}/serviceaccounts",
        "secrets": f"/api/v1{where}/secrets{secret_filter}",
        "rolebindings": f"/apis/rbac.authorization.k8s.io/v1{where}/rolebindings",
        "clusterrolebindings": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    }


def collect(api: Any, cluster: str, namespace: str | None, unmanaged: bool) -> list[Row]:
    """List the objects of one cluster with `api` (a `client.Api`) and make the rows.

    The Secrets' `data` (the tokens) comes with the LIST and is dropped here,
    never logged nor kept."""
    scope = f"in namespace {namespace}" if namespace else "in all namespaces"
    items: dict[str, list[Body]] = {}
    for resource, path in paths(namespace, unmanaged).items():
        where = "" if resource == "clusterrolebindings" else f" {scope}"
        try:
            body = api.get(path, f"list {resource}{where}")
        except AuthError:
            if resource != "clusterrolebindings" or namespace is None:
                raise
            # A bootstrapper bound in one namespace (manifests/deploy/) cannot list
            # cluster-wide objects: its list is still whole for the namespace.
            log.info("not allowed to list clusterrolebindings: cluster roles not shown")
            body = {}
        listed = body.get("items") or []
        items[resource] = [
            {k: v for k, v in item.items() if k != "data"}
            for item in listed
            if isinstance(item, Mapping)
        ]
    return rows(
        cluster,
        items["serviceaccounts"],
        items["secrets"],
        items["rolebindings"],
        items["clusterrolebindings"],
        unmanaged=unmanaged,
    )


def last_use(row: Row) -> str:
    """The LAST USED cell. The API server stamps the date of the first use of each day,
    and bootstrap-token's own verification is a use: a token never used since shows
    its issue day. That day says "verified at issue" (a later use on the same day
    cannot be told apart: the label is a date)."""
    if not row.secret:
        return "n/a"
    if not row.last_used:
        return "-"
    if row.created and row.last_used == row.created[:10]:
        return "verified at issue"
    return row.last_used


def used_since_issue(row: Row) -> bool | None:
    """Whether the token was used on a day after it was issued (None: not known)."""
    if not row.secret or not row.last_used or not row.created:
        return None
    return row.last_used > row.created[:10]


def to_json(row: Row) -> dict[str, Any]:
    document = asdict(row)
    document["roles"] = list(row.roles)
    document["used_since_issue"] = used_since_issue(row)
    return document


def render_json(items: Iterable[Row]) -> str:
    document = {
        "apiVersion": API_VERSION,
        "kind": "TokenList",
        "items": [to_json(row) for row in items],
    }
    return json.dumps(document, indent=2) + "\n"


WIDTH = 100  # the default table fits this many columns; -o wide shows everything
WIDE_COLUMNS = (
    "CLUSTER",
    "NAMESPACE",
    "SERVICE ACCOUNT",
    "SECRET",
    "MANAGED",
    "CREATED",
    "LAST USED",
    "INVALID SINCE",
    "CLEANER MAY REVOKE",
    "LEASE",
    "ROLES",
)
COLUMNS = ("NAMESPACE", "SERVICE ACCOUNT", "SECRET", "CREATED", "LAST USED", "LEASE", "ROLES")


def _cells(row: Row) -> dict[str, str]:
    """The table's cells, foreign text (names, annotations, roles) made visible."""
    from bootstrap.sanitize import visible

    return {k: visible(v) for k, v in _raw_cells(row).items()}


def _raw_cells(row: Row) -> dict[str, str]:
    account = row.service_account or "<none>"
    if row.service_account and not row.service_account_exists:
        account += " (missing)"
    return {
        "CLUSTER": row.cluster,
        "NAMESPACE": row.namespace,
        "SERVICE ACCOUNT": account,
        "SECRET": row.secret or "<none>",
        "MANAGED": "yes" if row.managed else "no",
        "CREATED": row.created or "-",
        "LAST USED": last_use(row),
        "INVALID SINCE": row.invalid_since or "-",
        "CLEANER MAY REVOKE": {None: "-", True: "yes", False: "no"}[row.referenced],
        "LEASE": row.lease or "-",
        "ROLES": ",".join(row.roles) or "-",
    }


def _lines(table: list[tuple[str, ...]]) -> str:
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    ]
    return "\n".join(lines) + "\n"


def render_wide(items: Iterable[Row]) -> str:
    cells = [_cells(row) for row in items]
    return _lines([WIDE_COLUMNS, *(tuple(c[k] for k in WIDE_COLUMNS) for c in cells)])


def render_table(items: Iterable[Row]) -> str:
    """The default table: the columns a user reads first, the creation date only, the
    cluster only when there are several, the lease only when one object has one, and ROLES cut to fit 100 columns (-o wide
    shows them whole)."""
    rows_ = list(items)
    columns: tuple[str, ...] = COLUMNS
    if len({row.cluster for row in rows_}) > 1:
        columns = ("CLUSTER", *COLUMNS)
    if not any(row.lease for row in rows_):  # no --ttl anywhere: no column of dashes
        columns = tuple(c for c in columns if c != "LEASE")
    cells = []
    for row in rows_:
        cell = _cells(row)
        cell["CREATED"] = cell["CREATED"][:10]
        cells.append(cell)
    fixed = [c for c in columns if c != "ROLES"]
    used = sum(max(len(c), *(len(x[c]) for x in cells)) + 2 for c in fixed) if cells else 0
    room = max(20, WIDTH - used)  # very long names: wider than 100 rather than no roles
    for cell in cells:
        if len(cell["ROLES"]) > room:
            cell["ROLES"] = cell["ROLES"][: max(0, room - 3)] + "..."
    return _lines([columns, *(tuple(c[k] for k in columns) for c in cells)])


def render(items: Iterable[Row], output: str) -> str:
    """table, wide or json."""
    if output == "json":
        return render_json(items)
    return render_wide(items) if output == "wide" else render_table(items)
