"""Which objects revoke, rotate and issue touch, role names, and the server-side
--dry-run, against the real dev cluster (docs/objects.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from tests.cluster.test_features import _as_token, read_env
from tests.conftest import Admin, DevCluster, DevTool, remember_token, run_dev_cluster, run_tool

RBAC = "/apis/rbac.authorization.k8s.io/v1"


def _exists(admin: Admin, path: str) -> bool:
    status, body = admin.request("GET", path)
    assert status in (200, 404), body
    return status == 200


def _secret(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/secrets/{name}"


def _crb(name: str) -> str:
    return f"{RBAC}/clusterrolebindings/{quote(name, safe=':')}"


def _snapshot(admin: Admin, namespace: str) -> dict[str, list[tuple[str, str]]]:
    """Every object of the kinds bootstrap-token makes, with its resourceVersion."""
    paths = {
        "serviceaccounts": f"/api/v1/namespaces/{namespace}/serviceaccounts",
        "secrets": f"/api/v1/namespaces/{namespace}/secrets",
        "rolebindings": f"{RBAC}/namespaces/{namespace}/rolebindings",
        "clusterrolebindings": f"{RBAC}/clusterrolebindings",
    }
    snapshot = {}
    for kind, path in paths.items():
        status, body = admin.request("GET", path)
        assert status == 200, body
        snapshot[kind] = sorted(
            (item["metadata"]["name"], item["metadata"]["resourceVersion"])
            for item in body["items"]
            if kind != "clusterrolebindings" or f":{namespace}:" in item["metadata"]["name"]
            # The ServiceAccount controller adds `default` to a new namespace whenever it
            # gets to it, possibly between two snapshots: not the tool's doing.
            if not (kind == "serviceaccounts" and item["metadata"]["name"] == "default")
        )
    return snapshot


# --- A. only what belongs to this ServiceAccount -------------------------------------


def test_revoke_refuses_a_labelled_secret_of_another_service_account(
    dev_tool: DevTool, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    """Issue 10.12: `a-token` made for ServiceAccount b must survive `revoke` of a."""
    made = dev_tool("--service-account", "b", "--secret", "a-token", "--out", "b.env")
    assert made.returncode == 0, made.stderr
    own = dev_tool("--service-account", "a", "--secret", "a-own", "--out", "a.env")
    assert own.returncode == 0, own.stderr
    b_token = read_env(tmp_path / "b.env")["TOKEN"]

    result = dev_tool("revoke", "--service-account", "a")
    assert result.returncode == 6, result.stderr
    assert result.error_lines == [
        f"error: Secret {namespace}/a-token belongs to ServiceAccount 'b', not 'a'; it is left "
        "alone and nothing was deleted (if ServiceAccount 'a' has another token Secret, "
        "name it with --secret)"
    ]
    assert _exists(admin, _secret(namespace, "a-token"))
    assert _exists(admin, _secret(namespace, "a-own"))  # nothing at all was deleted
    assert admin.whoami(b_token) == (201, f"system:serviceaccount:{namespace}:b")

    named = dev_tool("revoke", "--service-account", "a", "--secret", "a-own")
    assert named.returncode == 0, named.stderr
    assert not _exists(admin, _secret(namespace, "a-own"))
    assert _exists(admin, _secret(namespace, "a-token"))


def test_rotate_keeps_a_secret_of_another_service_account_named_like_its_own(
    dev_tool: DevTool, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    made = dev_tool("--service-account", "b", "--secret", "a-token", "--out", "b.env")
    assert made.returncode == 0, made.stderr
    b_token = read_env(tmp_path / "b.env")["TOKEN"]

    rotated = dev_tool("rotate", "--service-account", "a", "--out", "a.env")
    assert rotated.returncode == 0, rotated.stderr
    # rotate's one line ends with what it deleted and kept (issue 19)
    assert rotated.stderr.endswith(
        f"; rotated: Secret {namespace}/a-token belongs to ServiceAccount 'b', not 'a'; kept\n"
    )
    assert _exists(admin, _secret(namespace, "a-token"))
    assert admin.whoami(b_token)[0] == 201
    assert admin.whoami(read_env(tmp_path / "a.env")["TOKEN"]) == (
        201,
        f"system:serviceaccount:{namespace}:a",
    )


def test_revoke_all_keeps_a_binding_that_also_binds_others(
    dev_tool: DevTool, admin: Admin, namespace: str
) -> None:
    made = dev_tool("--service-account", "robot", "--clusterrole", "view")
    assert made.returncode == 0, made.stderr
    name = f"bootstrap-token:{namespace}:robot:view"
    status, binding = admin.request("GET", _crb(name))
    assert status == 200, binding
    binding["subjects"].append(
        {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}
    )
    status, body = admin.request("PUT", _crb(name), binding)
    assert status == 200, body
    try:
        result = dev_tool("revoke", "--service-account", "robot", "--all")
        assert result.returncode == 0, result.stderr
        # one line by default (issue 19), naming each object and why one was kept
        assert result.stderr == (
            f"bootstrap-token: ClusterRoleBinding {name} also binds User alice, so it is not "
            "ours alone (edit its subjects by hand if it must go); kept; deleted Secret "
            f"{namespace}/robot-token; deleted ServiceAccount {namespace}/robot\n"
        )
        status, kept = admin.request("GET", _crb(name))
        assert status == 200 and {s["name"] for s in kept["subjects"]} == {"robot", "alice"}
        assert not _exists(admin, f"/api/v1/namespaces/{namespace}/serviceaccounts/robot")
        assert not _exists(admin, _secret(namespace, "robot-token"))
    finally:
        admin.request("DELETE", _crb(name))


@pytest.fixture
def restore_cluster() -> Iterator[None]:
    yield
    run_dev_cluster("up")


@pytest.mark.usefixtures("restore_cluster")
def test_revoke_keeps_a_secret_of_an_earlier_service_account_of_the_same_name(
    dev_tool: DevTool, admin: Admin, namespace: str
) -> None:
    """A token Secret whose uid annotation is not the live ServiceAccount's. (The
    token controller deletes such Secrets at once, so it is stopped here.)"""
    made = dev_tool("--service-account", "reborn")
    assert made.returncode == 0, made.stderr
    sa_path = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    old_uid = admin.request("GET", f"{sa_path}/reborn")[1]["metadata"]["uid"]
    run_dev_cluster("stop", "kube-controller-manager")
    assert admin.request("DELETE", f"{sa_path}/reborn")[0] == 200
    body = {
        "metadata": {
            "name": "reborn",
            "labels": {"app.kubernetes.io/managed-by": "bootstrap-token"},
        }
    }
    status, created = admin.request("POST", sa_path, body)
    assert status == 201, created
    new_uid = created["metadata"]["uid"]

    result = dev_tool("revoke", "--service-account", "reborn")
    assert result.returncode == 0, result.stderr
    assert (
        f"bootstrap-token: Secret {namespace}/reborn-token belongs to an earlier "
        f"ServiceAccount 'reborn' (uid {old_uid}, the live one is {new_uid}); kept\n"
        in result.stderr
    )
    assert _exists(admin, _secret(namespace, "reborn-token"))


# --- B. role names -------------------------------------------------------------------


def test_role_names_with_colons_and_non_ascii_are_bound_and_revoked(
    dev_tool: DevTool, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    """Issue 10.8: names go into URL paths quoted; `system:auth-delegator` and any name
    the API server accepts for a Role work."""
    role = {
        "metadata": {"name": "team:leser-ü"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
    }
    status, body = admin.request("POST", f"{RBAC}/namespaces/{namespace}/roles", role)
    assert status == 201, body
    made = dev_tool(
        "--service-account",
        "ro",
        "--role",
        "team:leser-ü",
        "--clusterrole",
        "system:auth-delegator",
    )
    assert made.returncode == 0, made.stderr
    assert "warning" not in made.stderr
    token = read_env(tmp_path / "ro@dev.env")["TOKEN"]
    assert _as_token(admin, token, f"/api/v1/namespaces/{namespace}/configmaps") == 200
    role_binding = f"{RBAC}/namespaces/{namespace}/rolebindings/" + quote(
        "bootstrap-token:ro:team:leser-ü", safe=":"
    )
    cluster_binding = _crb(f"bootstrap-token:{namespace}:ro:system:auth-delegator")
    status, bound = admin.request("GET", role_binding)
    assert status == 200 and bound["roleRef"]["name"] == "team:leser-ü"
    assert _exists(admin, cluster_binding)

    again = dev_tool("--service-account", "ro", "--role", "team:leser-ü", "-v")
    assert again.returncode == 0, again.stderr
    assert (
        f"bootstrap-token: RoleBinding {namespace}/bootstrap-token:ro:team:leser-ü exists, "
        f"reusing it (grants Role {namespace}/team:leser-ü)\n" in again.stderr
    )

    revoked = dev_tool("revoke", "--service-account", "ro", "--all")
    assert revoked.returncode == 0, revoked.stderr
    assert not _exists(admin, role_binding)
    assert not _exists(admin, cluster_binding)


@pytest.mark.parametrize(
    ("flag", "name", "problem"),
    [
        ("--clusterrole", "x?dryRun=All", "it contains '?', which would end the URL path"),
        ("--role", "edit#x", "it contains '#', which would end the URL path"),
        ("--role", "my role", "it contains whitespace or control characters"),
        ("--clusterrole", "a/b", "it contains '/', which the API server refuses in RBAC names"),
    ],
)
def test_role_names_that_would_rewrite_the_url_are_refused_before_any_request(
    dev_tool: DevTool, admin: Admin, namespace: str, flag: str, name: str, problem: str
) -> None:
    result = dev_tool("--service-account", "never", flag, name, "--timeout", "5")
    assert result.returncode == 2, result.stderr
    assert result.error_lines == [
        f"error: {flag} {name!r} is not a valid role name: {problem} "
        "(see kubectl get roles,clusterroles -A)"
    ]
    assert not _exists(admin, f"/api/v1/namespaces/{namespace}/serviceaccounts/never")
    assert _snapshot(admin, namespace)["clusterrolebindings"] == []


def test_a_role_that_does_not_exist_is_warned_about(
    dev_tool: DevTool, admin: Admin, namespace: str
) -> None:
    missing = f"no-such-role-{namespace}"
    result = dev_tool("--service-account", "ghostly", "--role", "ghost", "--clusterrole", missing)
    try:
        assert result.returncode == 0, result.stderr
        assert (
            f"bootstrap-token: warning: Role {namespace}/ghost does not exist (yet): the binding "
            "grants nothing until it is created; check the name\n" in result.stderr
        )
        assert (
            f"bootstrap-token: warning: ClusterRole {missing} does not exist (yet): the "
            "binding grants nothing until it is created; check the name\n" in result.stderr
        )
    finally:
        dev_tool("revoke", "--service-account", "ghostly", "--all")


# --- C. what is said -------------------------------------------------------------------


def test_revoke_help_does_not_promise_to_create_anything() -> None:
    revoke_help = run_tool("revoke", "--help")
    assert revoke_help.returncode == 0
    assert "created if missing" not in revoke_help.stdout
    assert "ServiceAccount whose token to revoke; repeat for several." in revoke_help.stdout
    assert "--dry-run" in revoke_help.stdout
    assert "--dry-run" in run_tool("rotate", "--help").stdout
    assert "ServiceAccount (created if missing)" in run_tool("--help").stdout


def test_a_reused_secret_is_reported_as_reused(dev_tool: DevTool, namespace: str) -> None:
    first = dev_tool("-v")
    assert first.returncode == 0, first.stderr
    assert f"token controller filled Secret {namespace}/default-token after" in first.stderr
    second = dev_tool("-v")
    assert second.returncode == 0, second.stderr
    assert (
        f"bootstrap-token: reusing Secret {namespace}/default-token, token already present\n"
        in second.stderr
    )
    assert "filled" not in second.stderr


def test_revoke_reports_each_deletion_once(dev_tool: DevTool, namespace: str) -> None:
    assert dev_tool("--service-account", "robot").returncode == 0
    result = dev_tool("revoke", "--service-account", "robot")
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"bootstrap-token: deleted Secret {namespace}/robot-token\n"
    steps = dev_tool("--service-account", "robot")
    assert steps.returncode == 0, steps.stderr
    verbose = dev_tool("revoke", "--service-account", "robot", "-v")
    assert verbose.returncode == 0, verbose.stderr
    # with -v: the step line, then the result line; each names the Secret once
    assert verbose.stderr == f"bootstrap-token: deleted Secret {namespace}/robot-token\n" * 2


# --- D. server-side dry run --------------------------------------------------------------


def test_dry_run_changes_nothing_and_says_what_exists_and_what_would_be_created(
    dev_tool: DevTool, admin: Admin, namespace: str
) -> None:
    """Issue 12.10."""
    sa_path = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    status, account = admin.request("POST", sa_path, {"metadata": {"name": "planned"}})
    assert status == 201, account
    role = {"metadata": {"name": "r"}, "rules": []}
    assert admin.request("POST", f"{RBAC}/namespaces/{namespace}/roles", role)[0] == 201
    before = _snapshot(admin, namespace)

    result = dev_tool(
        "--service-account", "planned", "--role", "r", "--clusterrole", "view", "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    assert _snapshot(admin, namespace) == before
    plan = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert plan == [
        "# bootstrap-token issue --dry-run: cluster dev, ServiceAccount planned; "
        "server-side dry run, nothing was changed",
        f"# exists  ServiceAccount {namespace}/planned  (not created by bootstrap-token)",
        f"# create  RoleBinding {namespace}/bootstrap-token:planned:r  (grants Role {namespace}/r)",
        f"# create  ClusterRoleBinding bootstrap-token:{namespace}:planned:view  "
        "(grants ClusterRole view)",
        f"# create  Secret {namespace}/planned-token",
    ]
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in documents] == ["RoleBinding", "ClusterRoleBinding", "Secret"]
    annotations = documents[2]["metadata"]["annotations"]
    assert annotations["kubernetes.io/service-account.uid"] == account["metadata"]["uid"]
    assert "uid" not in documents[2]["metadata"]
    assert "dry run, nothing was changed: 3 to create, 1 existing" in result.stderr


def test_dry_run_fails_where_the_real_run_fails(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    """Server-side dry run runs admission and RBAC: a missing namespace and a user who may
    read but not create fail the dry run with the real run's error."""
    for args in (("-n", f"{namespace}-missing"),):
        dry = dev_tool(*args, "--dry-run")
        real = dev_tool(*args)
        assert dry.returncode == real.returncode == 4, dry.stderr
        assert (
            dry.error_lines
            == real.error_lines
            == [
                f"error: namespace '{namespace}-missing' does not exist; create it (kubectl create "
                f"namespace {namespace}-missing) or pick another --namespace"
            ]
        )
        assert dry.stdout == ""

    # A user that may read ServiceAccounts and Secrets here, and create nothing.
    sa_path = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    assert admin.request("POST", sa_path, {"metadata": {"name": "reader"}})[0] == 201
    role = {
        "metadata": {"name": "reader"},
        "rules": [
            {"apiGroups": [""], "resources": ["serviceaccounts", "secrets"], "verbs": ["get"]}
        ],
    }
    assert admin.request("POST", f"{RBAC}/namespaces/{namespace}/roles", role)[0] == 201
    binding = {
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
    }
    assert admin.request("POST", f"{RBAC}/namespaces/{namespace}/rolebindings", binding)[0] == 201
    status, issued = admin.request(
        "POST", f"{sa_path}/reader/token", {"spec": {"expirationSeconds": 600}}
    )
    assert status == 201, issued
    token = issued["status"]["token"]
    remember_token(token)
    config: dict[str, Any] = dev_cluster.config
    config["users"] = [{"name": "dev-admin", "user": {"token": token}}]
    kubeconfig = tmp_path / "reader.yaml"
    kubeconfig.write_text(json.dumps(config))
    env = {"KUBECONFIG": str(kubeconfig)}
    expected = (
        "error: forbidden: user 'dev-admin' (context 'dev-admin') may not create serviceaccounts "
        f"in namespace {namespace} "
    )
    for _ in range(30):  # the RBAC authorizer's cache may lag the binding a moment
        dry = dev_tool("--service-account", "wanted", "--dry-run", env=env)
        if dry.returncode != 5 or "may not get" not in dry.stderr:
            break
    real = dev_tool("--service-account", "wanted", env=env)
    assert dry.returncode == real.returncode == 5, dry.stderr
    assert dry.error_lines[0].startswith(expected), dry.stderr
    assert real.error_lines[0].startswith(expected), real.stderr
    assert not _exists(admin, f"{sa_path}/wanted")


def test_rotate_dry_run_names_the_secret_it_would_create_and_the_ones_it_would_delete(
    dev_tool: DevTool, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    assert dev_tool().returncode == 0
    token = read_env(tmp_path / "dev.env")["TOKEN"]
    before = _snapshot(admin, namespace)
    result = dev_tool("rotate", "--dry-run", "--out", "rotated.env")
    assert result.returncode == 0, result.stderr
    assert _snapshot(admin, namespace) == before
    assert not (tmp_path / "rotated.env").exists()
    plan = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert plan[1] == (
        f"# exists  ServiceAccount {namespace}/default  (not created by bootstrap-token)"
    )
    assert re.fullmatch(rf"# create  Secret {namespace}/default-token-[0-9a-f]{{6}}", plan[2])
    assert plan[3:] == [f"# delete  Secret {namespace}/default-token"]
    assert admin.whoami(token)[0] == 201


def test_revoke_dry_run_deletes_nothing_and_says_what_it_would_keep(
    dev_tool: DevTool, admin: Admin, namespace: str
) -> None:
    """The delete options travel in the request body, where the API server looks for
    dryRun too (it ignores the query then): nothing may be deleted."""
    assert dev_tool("--service-account", "robot", "--clusterrole", "view").returncode == 0
    assert dev_tool("--service-account", "other").returncode == 0
    before = _snapshot(admin, namespace)
    result = dev_tool("revoke", "--dry-run", "--all", "--service-account", "robot")
    assert result.returncode == 0, result.stderr
    assert _snapshot(admin, namespace) == before
    assert result.stdout.splitlines() == [
        "# bootstrap-token revoke --dry-run: cluster dev, ServiceAccount robot; "
        "server-side dry run, nothing was changed",
        f"# delete  Secret {namespace}/robot-token",
        f"# delete  ClusterRoleBinding bootstrap-token:{namespace}:robot:view",
        f"# delete  ServiceAccount {namespace}/robot",
    ]
    kept = dev_tool("revoke", "--dry-run", "--all")  # `default` existed before: kept
    assert kept.returncode == 0, kept.stderr
    assert (
        f"# keep    ServiceAccount {namespace}/default  (was not created by bootstrap-token)"
        in kept.stdout.splitlines()
    )
    assert _snapshot(admin, namespace) == before
    dev_tool("revoke", "--all", "--service-account", "robot")
