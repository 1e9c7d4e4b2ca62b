"""The shipped least-privilege role (manifests/deploy/bootstrapper-clusterrole.yaml) on
the real cluster: every command works with exactly this role, bound by a RoleBinding in
its namespace, run in-cluster as that ServiceAccount; anywhere else, or beyond the role,
it is a clear 403 (exit 5, verb and resource named)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.pod import Pod, apply_roles, create, make_pod
from tests.conftest import Admin, DevCluster, remember_token

RBAC = "/apis/rbac.authorization.k8s.io/v1"


@pytest.fixture
def pod(admin: Admin, dev_cluster: DevCluster, tmp_path: Path, namespace: str) -> Pod:
    apply_roles(dev_cluster)
    return make_pod(admin, dev_cluster, tmp_path, namespace)


@pytest.fixture
def elsewhere(admin: Admin) -> Iterator[str]:
    """A second namespace, where the bootstrapper has no RoleBinding."""
    name = f"t-elsewhere-{uuid.uuid4().hex[:5]}"
    create(admin, "/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    admin.request("DELETE", f"/api/v1/namespaces/{name}")


def token_secrets(admin: Admin, namespace: str, account: str) -> list[str]:
    return sorted(s["metadata"]["name"] for s in admin.secrets_of(namespace, account))


def test_every_command_works_with_only_the_bootstrapper_role(pod: Pod, admin: Admin) -> None:
    ns = pod.namespace
    # A Role the admin lets the bootstrapper hand out (the role's `bind` resourceNames).
    create(
        admin,
        f"{RBAC}/namespaces/{ns}/roles",
        {
            "metadata": {"name": "bootstrap-token-grantable"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        },
    )

    dry = pod.run("--service-account", "app", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"# create  ServiceAccount {ns}/app" in dry.stdout.replace("   ", "  ")
    assert token_secrets(admin, ns, "app") == []

    issued = pod.run("--service-account", "app", "--role", "bootstrap-token-grantable", "-v")
    assert issued.returncode == 0, issued.stderr
    assert f"verified: the token authenticates as system:serviceaccount:{ns}:app" in issued.stderr
    status, binding = admin.request(
        "GET", f"{RBAC}/namespaces/{ns}/rolebindings/bootstrap-token:app:bootstrap-token-grantable"
    )
    assert status == 200, binding
    assert token_secrets(admin, ns, "app") == ["app-token"]

    # list, in its namespace: the cluster-wide bindings are out of reach, the rest is there.
    listed = pod.run("list", "-n", ns, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)["items"]
    assert (row["namespace"], row["service_account"], row["secret"]) == (ns, "app", "app-token")

    request = pod.run(
        "--service-account",
        "app",
        "--mode",
        "request",
        "--format",
        "json",
        "--out",
        "-",
        stdout_may_hold_token=True,
    )
    assert request.returncode == 0, request.stderr
    short = json.loads(request.stdout)
    remember_token(short["token"])
    assert admin.whoami(short["token"]) == (201, f"system:serviceaccount:{ns}:app")

    for command in (["rotate", "--dry-run"], ["revoke", "--dry-run"]):
        result = pod.run(*command, "--service-account", "app")
        assert result.returncode == 0, result.stderr
    assert token_secrets(admin, ns, "app") == ["app-token"]

    rotated = pod.run("rotate", "--service-account", "app")
    assert rotated.returncode == 0, rotated.stderr
    after = token_secrets(admin, ns, "app")
    assert len(after) == 1 and after[0].startswith("app-token-"), after

    revoked = pod.run("revoke", "--service-account", "app")
    assert revoked.returncode == 0, revoked.stderr
    assert token_secrets(admin, ns, "app") == []

    everything = pod.run("revoke", "--all", "--service-account", "app")
    assert everything.returncode == 0, everything.stderr
    assert f"deleted RoleBinding {ns}/bootstrap-token:app:bootstrap-token-grantable" in (
        everything.stderr
    )
    assert f"deleted ServiceAccount {ns}/app" in everything.stderr
    # The cluster-wide part is out of a RoleBinding's reach: said, not failed.
    assert (
        f"ClusterRoleBindings of ServiceAccount {ns}/app were not looked for (listing "
        "clusterrolebindings cluster-wide is forbidden to these credentials" in everything.stderr
    )
    assert admin.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/app")[0] == 404


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "may not get serviceaccounts in namespace {elsewhere}"),
        (("--mode", "request"), "may not get serviceaccounts in namespace {elsewhere}"),
        (("--dry-run",), "may not get serviceaccounts in namespace {elsewhere}"),
        (("rotate",), "may not get serviceaccounts in namespace {elsewhere}"),
        (("revoke",), "may not get serviceaccounts in namespace {elsewhere}"),
        (("revoke", "--all"), "may not get serviceaccounts in namespace {elsewhere}"),
    ],
)
def test_the_role_is_refused_in_another_namespace(
    pod: Pod, elsewhere: str, args: tuple[str, ...], words: str
) -> None:
    command = [a for a in args if a in ("rotate", "revoke")]
    rest = [a for a in args if a not in ("rotate", "revoke")]
    result = pod.run(*command, "-n", elsewhere, "--service-account", "app", *rest)
    assert result.returncode == 5, result.stderr
    assert len(result.error_lines) == 1
    line = result.error_lines[0]
    assert line.startswith(
        f"error: forbidden: user 'system:serviceaccount:{pod.namespace}:bootstrapper' "
        "(context 'in-cluster') "
    ), line
    assert words.format(elsewhere=elsewhere) in line


@pytest.mark.parametrize(
    ("args", "words"),
    [
        # `bind` is granted for the listed Roles only.
        (("--role", "edit-everything"), "may not create rolebindings in namespace"),
        # Nothing cluster-scoped: a RoleBinding cannot grant it.
        (("--clusterrole", "view"), "may not get clusterrolebindings cluster-wide"),
    ],
)
def test_bindings_beyond_the_role_are_refused(
    pod: Pod, admin: Admin, args: tuple[str, ...], words: str
) -> None:
    create(
        admin,
        f"{RBAC}/namespaces/{pod.namespace}/roles",
        {
            "metadata": {"name": "edit-everything"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
        },
    )
    result = pod.run("--service-account", "app", *args)
    assert result.returncode == 5, result.stderr
    assert len(result.error_lines) == 1
    assert words in result.error_lines[0], result.error_lines
    # The API's message may span lines (an escalation refusal lists rules): still one line.
    assert all(
        line.startswith(("bootstrap-token: ", "error: ")) for line in result.stderr.splitlines()
    ), result.stderr
