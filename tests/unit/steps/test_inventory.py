"""bootstrap.steps.inventory: objects -> rows (pure), the LIST paths, and the table/json output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bootstrap.steps.inventory import (
    collect,
    last_use,
    paths,
    render_json,
    render_table,
    render_wide,
    roles_of,
    rows,
)

MANAGED = {"app.kubernetes.io/managed-by": "bootstrap-token"}
TOKEN_TYPE = "kubernetes.io/service-account-token"


def sa(
    ns: str, name: str, managed: bool = True, secrets: list[str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "namespace": ns,
        "name": name,
        "creationTimestamp": "2026-01-01T00:00:00Z",
    }
    if managed:
        meta["labels"] = dict(MANAGED)
    body: dict[str, Any] = {"metadata": meta}
    if secrets is not None:
        body["secrets"] = [{"name": s} for s in secrets]
    return body


def secret(
    ns: str,
    name: str,
    owner: str,
    managed: bool = True,
    labels: dict[str, str] | None = None,
    kind: str = TOKEN_TYPE,
) -> dict[str, Any]:
    all_labels = {**(MANAGED if managed else {}), **(labels or {})}
    return {
        "type": kind,
        "metadata": {
            "namespace": ns,
            "name": name,
            "creationTimestamp": "2026-02-02T00:00:00Z",
            "labels": all_labels,
            "annotations": {"kubernetes.io/service-account.name": owner},
        },
        "data": {"token": "c2VjcmV0"},
    }


def binding(
    kind: str, name: str, role_kind: str, role: str, *subjects: tuple[str, str]
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if kind == "RoleBinding":
        meta["namespace"] = "ci"
    return {
        "metadata": meta,
        "roleRef": {"kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "namespace": ns, "name": n} for ns, n in subjects],
    }


def test_roles_from_rolebindings_and_clusterrolebindings() -> None:
    bindings = [
        binding("RoleBinding", "a", "Role", "deployer", ("ci", "bot")),
        binding("RoleBinding", "b", "ClusterRole", "edit", ("ci", "bot"), ("ci", "other")),
        {"metadata": {"name": "c", "namespace": "ci"}, "roleRef": {"kind": "Role", "name": "x"}},
        {
            "metadata": {"name": "d", "namespace": "ci"},
            "roleRef": {"kind": "Role", "name": "y"},
            "subjects": [
                {"kind": "User", "name": "bot"},
                {"kind": "ServiceAccount", "name": "bot"},
            ],
        },
    ]
    cluster = [binding("ClusterRoleBinding", "e", "ClusterRole", "view", ("ci", "bot"))]
    assert roles_of(bindings, cluster) == {
        ("ci", "bot"): ["ClusterRole/edit", "Role/deployer", "Role/y", "cluster:ClusterRole/view"],
        ("ci", "other"): ["ClusterRole/edit"],
    }


def test_rows_managed_only_by_default_and_unmanaged_on_request() -> None:
    accounts = [sa("ci", "bot"), sa("ci", "hand", managed=False, secrets=["hand-token"])]
    secrets = [
        secret(
            "ci", "bot-token", "bot", labels={"kubernetes.io/legacy-token-last-used": "2026-11-28"}
        ),
        secret("ci", "hand-token", "hand", managed=False),
        secret("ci", "not-a-token", "bot", kind="Opaque"),
    ]
    listed = rows("dev", accounts, secrets, [], [])
    assert [(r.service_account, r.secret, r.managed, r.last_used) for r in listed] == [
        ("bot", "bot-token", True, "2026-11-28")
    ]
    everything = rows("dev", accounts, secrets, [], [], unmanaged=True)
    assert [(r.secret, r.managed, r.referenced) for r in everything] == [
        ("bot-token", True, False),
        ("hand-token", False, True),
    ]


def test_a_managed_account_without_a_secret_gets_its_own_row() -> None:
    listed = rows("dev", [sa("ci", "req"), sa("ci", "theirs", managed=False)], [], [], [])
    assert len(listed) == 1
    row = listed[0]
    assert (row.service_account, row.secret, row.created, row.referenced) == (
        "req",
        None,
        "2026-01-01T00:00:00Z",
        None,
    )


def test_invalid_since_and_a_missing_service_account() -> None:
    labels = {"kubernetes.io/legacy-token-invalid-since": "2026-10-01"}
    (row,) = rows("dev", [], [secret("ci", "old", "gone", labels=labels)], [], [])
    assert row.invalid_since == "2026-10-01"
    assert row.service_account_exists is False
    assert row.referenced is None
    assert "gone (missing)" in render_table([row])


def test_render_wide_literal() -> None:
    listed = rows(
        "dev",
        [sa("ci", "bot")],
        [secret("ci", "bot-token", "bot")],
        [],
        [binding("ClusterRoleBinding", "e", "ClusterRole", "view", ("ci", "bot"))],
    )
    assert render_wide(listed).splitlines() == [
        "CLUSTER  NAMESPACE  SERVICE ACCOUNT  SECRET     MANAGED  CREATED               LAST USED"
        "  INVALID SINCE  CLEANER MAY REVOKE  LEASE  ROLES",
        "dev      ci         bot              bot-token  yes      2026-02-02T00:00:00Z  -        "
        "  -              no                  -      cluster:ClusterRole/view",
    ]


def test_render_table_literal_is_narrow() -> None:
    """Issue 19: the default table has words a user knows and the creation date only;
    issue 21: the lease too."""
    leased = secret("ci", "bot-token", "bot")
    leased["metadata"]["annotations"]["bootstrap-token/expires-at"] = "2026-02-02T02:00:00Z"
    listed = rows(
        "dev",
        [sa("ci", "bot"), sa("ci", "old")],
        [leased, secret("ci", "old-token", "old")],
        [],
        [binding("ClusterRoleBinding", "e", "ClusterRole", "view", ("ci", "bot"))],
    )
    assert render_table(listed).splitlines() == [
        "NAMESPACE  SERVICE ACCOUNT  SECRET     CREATED     LAST USED  LEASE                 ROLES",
        "ci         bot              bot-token  2026-02-02  -          2026-02-02T02:00:00Z  "
        "cluster:ClusterRo...",
        "ci         old              old-token  2026-02-02  -          -                     -",
    ]


def test_render_table_fits_100_columns_and_names_clusters_when_several() -> None:
    many_roles = [
        binding("RoleBinding", f"b{i}", "Role", f"a-rather-long-role-name-{i}", ("ci", "bot"))
        for i in range(6)
    ]
    listed = rows(
        "prod-eu",
        [sa("ci", "deployer")],
        [secret("ci", "deployer-token", "deployer")],
        many_roles,
        [],
    ) + rows("dev", [sa("ci", "bot")], [secret("ci", "bot-token", "bot")], many_roles, [])
    text = render_table(listed)
    assert max(len(line) for line in text.splitlines()) == 100
    assert text.splitlines()[0].startswith("CLUSTER  NAMESPACE  SERVICE ACCOUNT")
    assert text.splitlines()[2].endswith("...")  # dev: bot holds the six roles
    assert "Role/a-rather-long-role-name-5" in render_wide(listed)


@pytest.mark.parametrize(
    ("last_used", "cell", "later"),
    [
        (None, "-", None),
        ("2026-02-02", "verified at issue", False),
        ("2026-02-09", "2026-02-09", True),
    ],
)
def test_last_used_says_verified_at_issue(last_used: str | None, cell: str, later: bool) -> None:
    labels = {"kubernetes.io/legacy-token-last-used": last_used} if last_used else {}
    (row,) = rows(
        "dev", [sa("ci", "bot")], [secret("ci", "bot-token", "bot", labels=labels)], [], []
    )
    assert last_use(row) == cell
    assert json.loads(render_json([row]))["items"][0]["used_since_issue"] is later
    assert f"  {cell}  " in render_table([row])


def test_render_json_schema_has_nulls_and_no_token() -> None:
    listed = rows("dev", [sa("ci", "req")], [secret("ci", "bot-token", "bot")], [], [])
    document = json.loads(render_json(listed))
    assert document["apiVersion"] == "bootstrap-token/v1"
    assert document["kind"] == "TokenList"
    assert document["items"][0] == {
        "cluster": "dev",
        "namespace": "ci",
        "service_account": "bot",
        "secret": "bot-token",
        "managed": True,
        "created": "2026-02-02T00:00:00Z",
        "last_used": None,
        "invalid_since": None,
        "referenced": None,
        "service_account_exists": False,
        "roles": [],
        "used_since_issue": None,
        "lease": None,
    }
    assert "c2VjcmV0" not in render_json(listed)


def test_paths_select_managed_or_every_token_secret() -> None:
    managed = paths("ci", unmanaged=False)
    assert managed["secrets"] == (
        "/api/v1/namespaces/ci/secrets?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dbootstrap-token"
    )
    assert paths(None, unmanaged=True)["secrets"] == (
        "/api/v1/secrets?fieldSelector=type%3Dkubernetes.io%2Fservice-account-token"
    )
    assert paths(None, unmanaged=False)["rolebindings"] == (
        "/apis/rbac.authorization.k8s.io/v1/rolebindings"
    )
    assert (
        managed["clusterrolebindings"] == "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
    )


def test_collect_drops_secret_data() -> None:
    class FakeApi:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def get(self, path: str, what: str) -> dict[str, Any]:
            self.asked.append(what)
            if "/secrets" in path:
                return {"items": [secret("ci", "bot-token", "bot")]}
            if "/serviceaccounts" in path:
                return {"items": [sa("ci", "bot")]}
            return {"items": []}

    api = FakeApi()
    (row,) = collect(api, "dev", "ci", unmanaged=False)
    assert row.secret == "bot-token"
    assert api.asked == [
        "list serviceaccounts in namespace ci",
        "list secrets in namespace ci",
        "list rolebindings in namespace ci",
        "list clusterrolebindings",
    ]


def test_a_pre_existing_account_that_only_a_binding_of_ours_names_is_listed() -> None:
    """A run killed after binding `default` (which it did not create), before its token
    Secret: the binding is ours, so the account gets a row, with the binding's lease."""
    ours = binding("RoleBinding", "bootstrap-token:default:edit", "Role", "edit", ("ci", "default"))
    ours["metadata"]["labels"] = dict(MANAGED)
    ours["metadata"]["annotations"] = {"bootstrap-token/expires-at": "2026-03-03T03:03:03Z"}
    by_hand = binding("RoleBinding", "hand", "Role", "view", ("ci", "other"))
    listed = rows(
        "dev",
        [sa("ci", "default", managed=False), sa("ci", "other", managed=False)],
        [],
        [ours, by_hand],
        [],
    )
    assert [(r.service_account, r.secret, r.managed, r.lease, r.roles) for r in listed] == [
        ("default", None, True, "2026-03-03T03:03:03Z", ("Role/edit",))
    ]


def test_a_managed_account_row_shows_its_own_lease() -> None:
    account = sa("ci", "job-1")
    account["metadata"]["annotations"] = {"bootstrap-token/expires-at": "2026-04-04T04:04:04Z"}
    [row] = rows("dev", [account], [], [], [])
    assert (row.secret, row.lease) == (None, "2026-04-04T04:04:04Z")
