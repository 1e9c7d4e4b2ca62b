"""Token safety (issue 10, items 9, 11, 13), against the real dev cluster:

- nothing the tool prints holds a secret of the run, even when the server echoes
  the request back (a hostile server: tests/hostile.py), and a token that is not a
  plain bearer token is refused before anything is printed or written;
- when the server will not say who the token is, the tool says it did not check;
- a powerful token is never minted silently, and a role is not bound to a
  namespace's `default` ServiceAccount by accident.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Admin, DevCluster, DevTool, remember_token, run_tool
from tests.faultproxy import issue_cert
from tests.hostile import EchoProxy

SSR = r"/apis/authentication\.k8s\.io/v1/selfsubjectreviews"
SSAR = r"/apis/authorization\.k8s\.io/v1/selfsubjectaccessreviews"
ALL_POWERS = [
    "cluster-admin",
    "read-secrets-cluster-wide",
    "read-secrets-kube-system",
    "exec-pods-cluster-wide",
    "escalate-roles",
    "bind-roles",
    "impersonate",
]


@pytest.fixture
def hostile(
    dev_cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EchoProxy]:
    """A TLS proxy to the dev cluster (certificate from the cluster's CA) that can echo."""
    pki = dev_cluster.state / "pki"
    directory = tmp_path_factory.mktemp("hostile")
    cert, key = issue_cert(pki / "ca.crt", pki / "ca.key", directory)
    with EchoProxy(
        dev_cluster.server,
        pki / "ca.crt",
        cert,
        key,
        upstream_client_cert=(pki / "admin.crt", pki / "admin.key"),
    ) as running:
        yield running


def kubeconfig_via(dev_cluster: DevCluster, server: str, path: Path, **user: Any) -> dict[str, str]:
    """KUBECONFIG env: the dev kubeconfig with cluster `dev` at `server` (and another user)."""
    config = dev_cluster.config
    config["clusters"] = [c for c in config["clusters"] if c["name"] == "dev"]
    config["clusters"][0]["cluster"]["server"] = server
    config["contexts"] = [c for c in config["contexts"] if c["name"] == "dev-admin"]
    if user:
        config["users"] = [{"name": "dev-admin", "user": user}]
    path.write_text(json.dumps(config))
    return {"KUBECONFIG": str(path)}


def json_out(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    remember_token(document["token"])
    return document


# --- item 9: nothing printed holds a secret ---------------------------------------------


@pytest.mark.parametrize("user", ["token", "basic"])
def test_admin_credentials_echoed_by_the_server_are_not_printed(
    dev_cluster: DevCluster, hostile: EchoProxy, namespace: str, tmp_path: Path, user: str
) -> None:
    """The server quotes the admin's Authorization header in a 503 (logged while
    retrying) and then a 403 (the error line). Neither the bearer token nor the
    password (nor its base64 in the Basic header) reaches the output."""
    secret = "opaque-" + secrets.token_hex(12)  # not JWT-shaped: the pattern cannot help
    credentials = {"token": secret} if user == "token" else {"username": "ops", "password": secret}
    basic = base64.b64encode(f"ops:{secret}".encode()).decode()
    remember_token(secret)
    remember_token(basic)
    # The ServiceAccount is created first: its POST is answered 503, then 403.
    hostile.echo(503, method="POST", path="/serviceaccounts$", times=1)
    hostile.echo(403, method="POST", path="/serviceaccounts$")
    hostile.echo(403, method="GET", path="/serviceaccounts/")  # the read after a 403
    env = kubeconfig_via(dev_cluster, hostile.url, tmp_path / "k.json", **credentials)
    result = run_tool(
        "--cluster", "dev", "-n", namespace, "--service-account", "x", "-v", env=env, cwd=tmp_path
    )
    assert result.returncode == 5, result.stderr
    assert hostile.echoed == 3
    printed = result.stdout + result.stderr
    assert secret not in printed and basic not in printed
    assert "retrying" in result.stderr and "Authorization: <redacted>" not in printed
    header = "Bearer <redacted>" if user == "token" else "Basic <redacted>"
    assert f"it carried Authorization: {header}" in result.error_lines[0], result.stderr


def test_new_token_echoed_by_the_server_is_not_printed_in_github_mode(
    dev_cluster: DevCluster, admin: Admin, hostile: EchoProxy, namespace: str, tmp_path: Path
) -> None:
    """In GitHub Actions the new token is masked only once `::add-mask::` is printed;
    a server echoing the verify request would put it into the error line before that.
    (The server cuts its message at 500 characters, which keeps a JWT's signature out:
    what would leak is the token's start, which must not appear either.)"""
    hostile.echo(400, method="POST", path=SSR)
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    env = kubeconfig_via(dev_cluster, hostile.url, tmp_path / "k.json")
    env |= {"GITHUB_ENV": str(github_env), "RUNNER_TEMP": str(tmp_path)}
    result = run_tool(
        "--cluster",
        "dev",
        "-n",
        namespace,
        "--service-account",
        "ci",
        "--format",
        "github",
        env=env,
        cwd=tmp_path,
    )
    token = admin.secret_token(namespace, "ci-token")
    assert token, "the token Secret was filled"
    remember_token(token)
    assert result.returncode == 4, result.stderr
    assert hostile.echoed == 1
    assert result.stdout == "" and github_env.read_text() == ""
    assert token[:40] not in result.stderr
    assert "it carried Authorization: Bearer <redacted>" in result.error_lines[0]


def test_a_token_that_is_not_plain_is_refused_before_anything_is_printed(
    dev_cluster: DevCluster, hostile: EchoProxy, namespace: str, tmp_path: Path
) -> None:
    """A TokenRequest answer whose token carries a line break and a workflow command:
    printed after `::add-mask::`, the runner would execute that command. An audience-
    bound token is not sent back to the server, so nothing else would catch it."""
    evil = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n::set-env name=NODE_OPTIONS::--require=/tmp/x.js"

    def poison(document: dict[str, Any]) -> dict[str, Any]:
        document["status"]["token"] = evil
        return document

    hostile.mutate_json(poison, method="POST", path=r"/serviceaccounts/ci/token$")
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    env = kubeconfig_via(dev_cluster, hostile.url, tmp_path / "k.json")
    env |= {"GITHUB_ENV": str(github_env), "RUNNER_TEMP": str(tmp_path)}
    result = run_tool(
        "--cluster", "dev", "-n", namespace, "--service-account", "ci", "--mode", "request",
        "--audience", "vault", "--format", "github", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.stdout == ""  # no `::add-mask::` line the payload could follow
    assert result.returncode == 8, result.stderr
    assert hostile.count("POST", r"/token$", fault="mutate_json") == 1
    assert github_env.read_text() == ""
    assert "set-env" not in result.stderr
    assert result.error_lines == [
        "error: the new token is not a plain bearer token (empty, too long, or containing "
        "whitespace, quotes, ':' or other characters no token has); it was not written "
        "anywhere. Check what the API server (or a proxy before it) returns"
    ]


# --- item 11: the identity is checked, or the tool says it was not ----------------------


@pytest.mark.parametrize("status", [404, 403])
def test_identity_not_checked_is_said(
    dev_cluster: DevCluster,
    admin: Admin,
    hostile: EchoProxy,
    namespace: str,
    tmp_path: Path,
    status: int,
) -> None:
    """Servers before 1.28 answer 404 for SelfSubjectReview, and RBAC can refuse it
    (403): GET /api then proves the token authenticates, not whose it is."""
    hostile.fail(status, method="POST", path=SSR, times=5)
    env = kubeconfig_via(dev_cluster, hostile.url, tmp_path / "k.json")
    result = run_tool(
        "--cluster", "dev", "-n", namespace, "--service-account", "ci", "--format", "json",
        "--out", "ci.json", "-q", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert hostile.count("POST", SSR) == 1 and hostile.count("GET", r"^/api$") == 1
    assert "verified" not in result.stderr
    reason = {
        404: "the server has no SelfSubjectReview API (404: Kubernetes < 1.28)",
        403: "the server refused the SelfSubjectReview (403 Forbidden)",
    }[status]
    assert result.stderr == (
        "bootstrap-token: warning: the token authenticates (GET /api succeeded) but its "
        f"identity was NOT checked: {reason}; it should be "
        f"system:serviceaccount:{namespace}:ci\n"
    )
    document = json_out(tmp_path / "ci.json")
    assert document["identity"] is None and document["identity_checked"] is False
    assert document["powers"] == []
    assert admin.whoami(document["token"]) == (201, f"system:serviceaccount:{namespace}:ci")


def test_identity_checked_is_said(dev_tool: DevTool, namespace: str, tmp_path: Path) -> None:
    result = dev_tool("--service-account", "ci", "--format", "json", "--out", "ci.json", "-v")
    assert result.returncode == 0, result.stderr
    assert (
        f"bootstrap-token: verified: the token authenticates as system:serviceaccount:{namespace}:ci "
        "(SelfSubjectReview)\n" in result.stderr
    )
    document = json_out(tmp_path / "ci.json")
    assert document["identity"] == f"system:serviceaccount:{namespace}:ci"
    assert document["identity_checked"] is True


# --- item 13: a powerful token is never minted silently ----------------------------------


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("bootstrap-token: warning:")]


@pytest.fixture
def cleanup(admin: Admin) -> Iterator[list[str]]:
    """Paths to DELETE after the test (cluster-wide objects outlive the namespace)."""
    paths: list[str] = []
    yield paths
    for path in paths:
        admin.request("DELETE", path)


def test_a_plain_token_has_no_powers_and_no_warning(dev_tool: DevTool, tmp_path: Path) -> None:
    result = dev_tool("--service-account", "plain", "--format", "json", "--out", "p.json", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert json_out(tmp_path / "p.json")["powers"] == []


def test_clusterrole_cluster_admin_is_warned_about(
    dev_tool: DevTool, namespace: str, tmp_path: Path, cleanup: list[str]
) -> None:
    cleanup.append(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/"
        f"bootstrap-token:{namespace}:boss:cluster-admin"
    )
    result = dev_tool(
        "--service-account", "boss", "--clusterrole", "cluster-admin", "--format", "json",
        "--out", "boss.json", "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert warnings_of(result.stderr) == [
        f"bootstrap-token: warning: the new token for system:serviceaccount:{namespace}:boss is "
        "powerful. It is cluster-admin: it may do anything to anything in every namespace. "
        "Anyone holding it has these rights: keep it like an admin credential, or issue a "
        "token for a ServiceAccount with a narrower role."
    ]
    assert json_out(tmp_path / "boss.json")["powers"] == ALL_POWERS


def test_existing_service_account_bound_to_cluster_admin_is_warned_about(
    dev_tool: DevTool, admin: Admin, namespace: str, tmp_path: Path, cleanup: list[str]
) -> None:
    """Nothing in the command line says so: the binding was made by someone else."""
    status, body = admin.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "ops"}}
    )
    assert status == 201, body
    binding = f"t-{namespace}-ops"
    status, body = admin.request(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "metadata": {"name": binding},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "ops", "namespace": namespace}],
        },
    )
    assert status == 201, body
    cleanup.append(f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{binding}")
    result = dev_tool("--service-account", "ops", "--format", "json", "--out", "ops.json", "-q")
    assert result.returncode == 0, result.stderr
    [warning] = warnings_of(result.stderr)
    assert (
        f"token for system:serviceaccount:{namespace}:ops is powerful. It is cluster-admin"
        in warning
    )
    assert json_out(tmp_path / "ops.json")["powers"] == ALL_POWERS


def test_controller_account_in_kube_system_is_warned_about(
    dev_cluster: DevCluster, admin: Admin, tmp_path: Path
) -> None:
    """The bootstrap RBAC policy binds `system:serviceaccount:kube-system:generic-garbage-
    collector` to a role that may get, list and delete everything: a token for that name
    can read every Secret. (The tool creates the account; revoke --all removes it.)"""
    env = {"KUBECONFIG": str(dev_cluster.kubeconfig)}
    sa = "generic-garbage-collector"
    status, _ = admin.request("GET", f"/api/v1/namespaces/kube-system/serviceaccounts/{sa}")
    assert status == 404, "the dev cluster has no such account: the tool will create it"
    args = ("--cluster", "dev", "-n", "kube-system", "--service-account", sa)
    try:
        result = run_tool(
            *args, "--format", "json", "--out", "gc.json", "-q", env=env, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        assert warnings_of(result.stderr) == [
            f"bootstrap-token: warning: the new token for system:serviceaccount:kube-system:{sa} "
            "is powerful. It may list Secrets in every namespace [read-secrets-cluster-wide]; "
            "read Secrets in kube-system [read-secrets-kube-system]. Its ServiceAccount is in "
            "kube-system, beside the control plane's own accounts. Anyone holding it has these "
            "rights: keep it like an admin credential, or issue a token for a ServiceAccount "
            "with a narrower role."
        ]
        assert json_out(tmp_path / "gc.json")["powers"] == [
            "read-secrets-cluster-wide",
            "read-secrets-kube-system",
        ]
    finally:
        assert run_tool("revoke", *args, "--all", env=env, cwd=tmp_path).returncode == 0


def test_any_token_in_kube_system_is_warned_about(
    dev_cluster: DevCluster, admin: Admin, tmp_path: Path
) -> None:
    env = {"KUBECONFIG": str(dev_cluster.kubeconfig)}
    sa = f"t-plain-{uuid.uuid4().hex[:6]}"
    args = ("--cluster", "dev", "-n", "kube-system", "--service-account", sa)
    try:
        result = run_tool(
            *args, "--format", "json", "--out", "ks.json", "-q", env=env, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        [warning] = warnings_of(result.stderr)
        assert (
            "Its ServiceAccount is in kube-system, beside the control plane's own accounts."
            in warning
        )
        assert json_out(tmp_path / "ks.json")["powers"] == []
    finally:
        assert run_tool("revoke", *args, "--all", env=env, cwd=tmp_path).returncode == 0


def test_audience_bound_token_is_not_assessed(
    dev_cluster: DevCluster, hostile: EchoProxy, namespace: str, tmp_path: Path
) -> None:
    """The API server refuses a token for other audiences: no review is asked."""
    env = kubeconfig_via(dev_cluster, hostile.url, tmp_path / "k.json")
    result = run_tool(
        "--cluster", "dev", "-n", namespace, "--service-account", "v", "--mode", "request",
        "--audience", "vault", "--format", "json", "--out", "v.json", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert hostile.count("POST", SSAR) == 0 and hostile.count("POST", SSR) == 0
    document = json_out(tmp_path / "v.json")
    assert document["powers"] is None and document["identity_checked"] is False


def test_role_for_the_implicit_default_service_account_is_refused(
    dev_tool: DevTool, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    """Every Pod of the namespace that names no account runs as `default`."""
    result = dev_tool("--clusterrole", "view", "--role", "edit")
    assert result.returncode == 2
    assert result.error_lines == [
        f"error: --role edit, --clusterrole view would be bound to the ServiceAccount 'default' "
        f"of namespace '{namespace}', which every Pod there runs as unless it names another: "
        "name a ServiceAccount of its own (--service-account NAME), or pass "
        "--service-account default if that is really meant"
    ]
    status, _ = admin.request(
        "GET",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/"
        f"bootstrap-token:{namespace}:default:view",
    )
    assert status == 404
    assert admin.secrets_of(namespace, "default") == []
    assert not list(tmp_path.glob("*.env"))


def test_role_for_default_service_account_given_explicitly_is_bound(
    dev_tool: DevTool, namespace: str, tmp_path: Path, cleanup: list[str]
) -> None:
    cleanup.append(
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/"
        f"bootstrap-token:{namespace}:default:view"
    )
    result = dev_tool("--service-account", "default", "--clusterrole", "view", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # view reads no Secrets: nothing to warn about


def test_binding_a_role_that_grants_nothing_is_warned_about(
    dev_tool: DevTool, tmp_path: Path
) -> None:
    """The reviews wait (at most 1 s) for a binding of the run to be in effect; a role
    that does not exist never is, which is most likely a typo: one warning names it."""
    result = dev_tool("--service-account", "x", "--role", "no-such-role", "--format", "json",
                      "--out", "x.json", "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    namespace = json_out(tmp_path / "x.json")["namespace"]
    assert warnings_of(result.stderr) == [
        f"bootstrap-token: warning: Role {namespace}/no-such-role does not exist (yet): the "
        "binding grants nothing until it is created; check the name"
    ]
    assert json_out(tmp_path / "x.json")["powers"] == []
