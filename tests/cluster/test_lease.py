"""Leases (--ttl), sweep, the sweeper's role and killed runs, on the real dev cluster."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.pod import create, make_pod
from tests.conftest import REPO, Admin, DevCluster, DevTool, remember_token, run_tool

RBAC = "/apis/rbac.authorization.k8s.io/v1"
LEASE = "bootstrap-token/expires-at"
MANAGED = {"app.kubernetes.io/managed-by": "bootstrap-token"}
SWEEP_FILE = REPO / "manifests" / "deploy" / "cronjob-sweep.yaml"


def get(admin: Admin, path: str) -> dict[str, Any]:
    status, body = admin.request("GET", path)
    assert status == 200, body
    result: dict[str, Any] = body
    return result


def exists(admin: Admin, path: str) -> bool:
    return admin.request("GET", path)[0] == 200


def annotations(body: dict[str, Any]) -> dict[str, str]:
    return dict(body["metadata"].get("annotations") or {})


def read_token(env_file: Path) -> str:
    out = subprocess.run(
        ["sh", "-c", f'. "{env_file}" && printf %s "$TOKEN"'], capture_output=True, text=True
    ).stdout
    remember_token(out)
    return out


def until_401(admin: Admin, token: str) -> float:
    """Seconds until the token gets 401 (the API server caches a success for 10 s)."""
    start = time.monotonic()
    while time.monotonic() - start < 15:
        if admin.whoami(token)[0] == 401:
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError("the token still authenticates 15 s after its Secret was deleted")


def role(admin: Admin, namespace: str, name: str = "r") -> None:
    create(
        admin,
        f"{RBAC}/namespaces/{namespace}/roles",
        {
            "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        },
    )


def wait_past(lease: str) -> None:
    end = datetime.fromisoformat(lease.replace("Z", "+00:00"))
    time.sleep(max(0.0, (end - datetime.now(timezone.utc)).total_seconds()) + 0.2)


@pytest.fixture
def cluster_bindings(admin: Admin) -> Iterator[list[str]]:
    """ClusterRoleBindings a test made (or had made): deleted afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        admin.request("DELETE", f"{RBAC}/clusterrolebindings/{name}")


# --- --ttl ---------------------------------------------------------------------------


def test_ttl_stamps_one_lease_on_everything_the_run_creates(
    dev_tool: DevTool, admin: Admin, namespace: str, cluster_bindings: list[str]
) -> None:
    role(admin, namespace)
    crb = f"bootstrap-token:{namespace}:job:view"
    cluster_bindings.append(crb)
    before = datetime.now(timezone.utc)
    result = dev_tool(
        "--service-account", "job", "--role", "r", "--clusterrole", "view", "--ttl", "1h"
    )
    assert result.returncode == 0, result.stderr
    objects = [
        get(admin, f"/api/v1/namespaces/{namespace}/serviceaccounts/job"),
        get(admin, f"/api/v1/namespaces/{namespace}/secrets/job-token"),
        get(admin, f"{RBAC}/namespaces/{namespace}/rolebindings/bootstrap-token:job:r"),
        get(admin, f"{RBAC}/clusterrolebindings/{crb}"),
    ]
    leases = {annotations(o).get(LEASE) for o in objects}
    assert len(leases) == 1, leases
    [lease] = leases
    assert lease and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lease)
    end = datetime.fromisoformat(lease.replace("Z", "+00:00"))
    assert before + timedelta(seconds=3600) <= end <= before + timedelta(seconds=3620)
    assert all(
        o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "bootstrap-token"
        for o in objects
    )
    # the one line of a successful run says until when its objects live
    assert f", leased until {lease} (then sweep deletes it) -> " in result.stderr

    listed = dev_tool("list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)["items"]
    assert (row["secret"], row["lease"]) == ("job-token", lease)
    table = dev_tool("list")
    assert table.stdout.splitlines()[0].split()[-2:] == ["LEASE", "ROLES"]
    assert lease in table.stdout.splitlines()[1].split()
    # A dry run shows the lease on what it would create.
    dry = dev_tool("--service-account", "next", "--ttl", "2h", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    planned = [d for d in yaml.safe_load_all(dry.stdout) if d]
    assert [d["kind"] for d in planned] == ["ServiceAccount", "Secret"]
    assert all(re.fullmatch(r"\d{4}-.*Z", annotations(d)[LEASE]) for d in planned)


def test_ttl_never_leases_what_existed_before_and_sweep_keeps_it(
    dev_tool: DevTool, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    """A ServiceAccount made by hand, and a Secret and binding of an earlier run without
    --ttl: reused as they are by a run with --ttl, no lease; sweep keeps them all."""
    role(admin, namespace)
    create(admin, f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "pre"}})
    first = dev_tool("--service-account", "pre", "--role", "r")
    assert first.returncode == 0, first.stderr
    token = read_token(tmp_path / "pre@dev.env")
    again = dev_tool("--service-account", "pre", "--role", "r", "--ttl", "1s")
    assert again.returncode == 0, again.stderr
    assert (
        f"warning: --ttl: Secret {namespace}/pre-token existed before this run, so it gets no "
        "lease and sweep never deletes it (revoke it, or rotate --ttl for a token that expires)"
    ) in again.stderr
    paths = [
        f"/api/v1/namespaces/{namespace}/serviceaccounts/pre",
        f"/api/v1/namespaces/{namespace}/secrets/pre-token",
        f"{RBAC}/namespaces/{namespace}/rolebindings/bootstrap-token:pre:r",
    ]
    assert [LEASE in annotations(get(admin, p)) for p in paths] == [False, False, False]
    time.sleep(1.5)
    swept = dev_tool("sweep")
    assert (swept.returncode, swept.stdout) == (0, "")
    assert "bootstrap-token: 0 deleted, 0 kept" in swept.stderr
    assert all(exists(admin, p) for p in paths)
    assert admin.whoami(token) == (201, f"system:serviceaccount:{namespace}:pre")


def test_request_mode_token_lives_at_most_the_ttl(
    dev_tool: DevTool, admin: Admin, namespace: str
) -> None:
    before = datetime.now(timezone.utc)
    result = dev_tool(
        "--service-account",
        "short",
        "--mode",
        "request",
        "--duration",
        "2h",
        "--ttl",
        "15m",
        "--format",
        "json",
        "--out",
        "-",
        stdout_may_hold_token=True,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    remember_token(document["token"])
    expires = datetime.fromisoformat(document["expires_at"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=890) <= expires <= before + timedelta(seconds=910)
    account = get(admin, f"/api/v1/namespaces/{namespace}/serviceaccounts/short")
    lease = datetime.fromisoformat(annotations(account)[LEASE].replace("Z", "+00:00"))
    assert expires <= lease <= expires + timedelta(seconds=5)


# --- sweep -----------------------------------------------------------------------------


def test_sweep_deletes_expired_objects_one_line_each_and_the_token_gets_401(
    dev_tool: DevTool, admin: Admin, namespace: str, tmp_path: Path, cluster_bindings: list[str]
) -> None:
    role(admin, namespace)
    crb = f"bootstrap-token:{namespace}:job:view"
    cluster_bindings.append(crb)
    short = dev_tool(
        "--service-account", "job", "--role", "r", "--clusterrole", "view", "--ttl", "3s"
    )
    assert short.returncode == 0, short.stderr
    token = read_token(tmp_path / "job@dev.env")
    long = dev_tool("--service-account", "later", "--role", "r", "--ttl", "1h")
    assert long.returncode == 0, long.stderr
    later_token = read_token(tmp_path / "later@dev.env")
    lease = annotations(get(admin, f"/api/v1/namespaces/{namespace}/secrets/job-token"))[LEASE]
    wait_past(lease)
    doomed = [
        f"/api/v1/namespaces/{namespace}/secrets/job-token",
        f"{RBAC}/namespaces/{namespace}/rolebindings/bootstrap-token:job:r",
        f"{RBAC}/clusterrolebindings/{crb}",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/job",
    ]
    expected = [
        f"Secret {namespace}/job-token (lease expired {lease})",
        f"RoleBinding {namespace}/bootstrap-token:job:r (lease expired {lease})",
        f"ClusterRoleBinding {crb} (lease expired {lease})",
        f"ServiceAccount {namespace}/job (lease expired {lease})",
    ]

    dry = dev_tool("sweep", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [f"would delete {line}" for line in expected]
    assert all(exists(admin, p) for p in doomed)
    assert admin.whoami(token)[0] == 201

    swept = dev_tool("sweep")
    assert swept.returncode == 0, swept.stderr
    assert swept.stdout.splitlines() == [f"deleted {line}" for line in expected]
    assert "bootstrap-token: 4 deleted, 0 kept" in swept.stderr
    assert not any(exists(admin, p) for p in doomed)
    until_401(admin, token)
    # The other account's lease has not run out: all there, its token works.
    assert exists(admin, f"/api/v1/namespaces/{namespace}/serviceaccounts/later")
    assert admin.whoami(later_token) == (201, f"system:serviceaccount:{namespace}:later")
    again = dev_tool("sweep")
    assert (again.returncode, again.stdout) == (0, "")


def test_sweep_all_namespaces_and_all_clusters(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    other = f"t-sweep-other-{uuid.uuid4().hex[:5]}"
    create(admin, "/api/v1/namespaces", {"metadata": {"name": other}})
    try:
        env = {"KUBECONFIG": str(dev_cluster.kubeconfig)}
        for ns in (namespace, other):
            made = run_tool(
                "--cluster",
                "dev",
                "-n",
                ns,
                "--service-account",
                "job",
                "--ttl",
                "2s",
                env=env,
                cwd=tmp_path,
                timeout=60,
            )
            assert made.returncode == 0, made.stderr
            (tmp_path / "job@dev.env").unlink()
        lease = annotations(get(admin, f"/api/v1/namespaces/{other}/secrets/job-token"))[LEASE]
        wait_past(lease)
        # One namespace: the other is untouched.
        one = run_tool("sweep", "--cluster", "dev", "-n", namespace, env=env, cwd=tmp_path)
        assert one.returncode == 0, one.stderr
        assert len(one.stdout.splitlines()) == 2
        assert exists(admin, f"/api/v1/namespaces/{other}/secrets/job-token")
        # A fleet of two cluster entries for this one API server, every namespace: the
        # first sweeps, the second finds nothing left.
        config = dev_cluster.config
        [entry] = [c for c in config["clusters"] if c["name"] == "dev"]
        [context] = [c for c in config["contexts"] if c["name"] == "dev-admin"]
        config["clusters"] = [entry, {"name": "dev2", "cluster": entry["cluster"]}]
        config["contexts"] = [
            context,
            {"name": "dev2-admin", "context": {**context["context"], "cluster": "dev2"}},
        ]
        fleet = tmp_path / "fleet.yaml"
        fleet.write_text(json.dumps(config))
        fleet.chmod(0o600)
        swept = run_tool(
            "sweep",
            "--all-clusters",
            "--all-namespaces",
            env={"KUBECONFIG": str(fleet)},
            cwd=tmp_path,
        )
        assert swept.returncode == 0, swept.stderr
        mine = [line for line in swept.stdout.splitlines() if f" {other}/" in line]
        assert mine == [
            f"[dev] deleted Secret {other}/job-token (lease expired {lease})",
            f"[dev] deleted ServiceAccount {other}/job (lease expired {lease})",
        ]
        assert not any(
            line.startswith("[dev2]") and other in line for line in swept.stdout.splitlines()
        )
        assert not exists(admin, f"/api/v1/namespaces/{other}/serviceaccounts/job")
    finally:
        admin.request("DELETE", f"/api/v1/namespaces/{other}")


def test_sweep_owner_checks_keep_what_is_not_ours_alone(
    dev_tool: DevTool, admin: Admin, namespace: str
) -> None:
    """Labelled and expired, but: a token Secret whose account label names another
    account, a binding that also binds a user, an Opaque Secret, a ServiceAccount with a
    token Secret made by hand. All kept, each with its reason."""
    past = "2026-01-01T00:00:00Z"
    leased = {"labels": dict(MANAGED), "annotations": {LEASE: past}}
    base = f"/api/v1/namespaces/{namespace}"
    create(admin, f"{base}/serviceaccounts", {"metadata": {"name": "a", **leased}})
    create(admin, f"{base}/serviceaccounts", {"metadata": {"name": "b"}})
    create(
        admin,
        f"{base}/secrets",
        {
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": "b-looks-ours",
                "labels": {**MANAGED, "bootstrap-token/service-account": "a"},
                "annotations": {LEASE: past, "kubernetes.io/service-account.name": "b"},
            },
        },
    )
    create(
        admin,
        f"{base}/secrets",
        {
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": "a-by-hand",
                "annotations": {"kubernetes.io/service-account.name": "a"},
            },
        },
    )
    create(
        admin,
        f"{base}/secrets",
        {"metadata": {"name": "opaque", **leased}, "stringData": {"x": "y"}},
    )
    create(
        admin,
        f"{RBAC}/namespaces/{namespace}/rolebindings",
        {
            "metadata": {"name": "shared", **leased},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "a", "namespace": namespace},
                {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
            ],
        },
    )
    swept = dev_tool("sweep")
    assert swept.returncode == 0, swept.stderr
    assert swept.stdout == ""
    kept = [line for line in swept.stderr.splitlines() if line.endswith("; kept")]
    assert kept == [
        f"bootstrap-token: Secret {namespace}/b-looks-ours is labelled for ServiceAccount 'a' "
        "but belongs to 'b'; kept",
        f"bootstrap-token: RoleBinding {namespace}/shared binds ServiceAccount {namespace}/a, "
        "User alice, not one ServiceAccount alone (edit its subjects by hand if it must go); kept",
        f"bootstrap-token: ServiceAccount {namespace}/a still has token Secret a-by-hand "
        "(deleting the account would revoke it); kept",
    ]
    for path in (
        "secrets/b-looks-ours",
        "secrets/a-by-hand",
        "secrets/opaque",
        "serviceaccounts/a",
    ):
        assert exists(admin, f"{base}/{path}"), path
    assert exists(admin, f"{RBAC}/namespaces/{namespace}/rolebindings/shared")


# --- the sweeper's role ----------------------------------------------------------------


def sweeper_rules() -> list[dict[str, Any]]:
    documents = list(yaml.safe_load_all(SWEEP_FILE.read_text()))
    [role_document] = [d for d in documents if d["kind"] == "ClusterRole"]
    rules: list[dict[str, Any]] = role_document["rules"]
    return rules


PERMISSIONS = [
    (group, resource, verb)
    for rule in sweeper_rules()
    for group in rule["apiGroups"]
    for resource in rule["resources"]
    for verb in rule["verbs"]
]


def expired_set(admin: Admin, namespace: str, crb: str) -> list[str]:
    """An expired ServiceAccount, its token Secret, RoleBinding and ClusterRoleBinding,
    as a --ttl run leaves them; their paths."""
    past = "2026-01-01T00:00:00Z"
    leased = {"labels": dict(MANAGED), "annotations": {LEASE: past}}
    base = f"/api/v1/namespaces/{namespace}"
    account = create(admin, f"{base}/serviceaccounts", {"metadata": {"name": "job", **leased}})
    create(
        admin,
        f"{base}/secrets",
        {
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": "job-token",
                "labels": {**MANAGED, "bootstrap-token/service-account": "job"},
                "annotations": {
                    LEASE: past,
                    "kubernetes.io/service-account.name": "job",
                    "kubernetes.io/service-account.uid": account["metadata"]["uid"],
                },
            },
        },
    )
    subject = [{"kind": "ServiceAccount", "name": "job", "namespace": namespace}]
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
    create(
        admin,
        f"{RBAC}/namespaces/{namespace}/rolebindings",
        {"metadata": {"name": "job-view", **leased}, "roleRef": ref, "subjects": subject},
    )
    create(
        admin,
        f"{RBAC}/clusterrolebindings",
        {"metadata": {"name": crb, **leased}, "roleRef": ref, "subjects": subject},
    )
    return [
        f"{base}/secrets/job-token",
        f"{RBAC}/namespaces/{namespace}/rolebindings/job-view",
        f"{RBAC}/clusterrolebindings/{crb}",
        f"{base}/serviceaccounts/job",
    ]


def wait_allowed(admin: Admin, token: str, verb: str, resource: str, group: str) -> None:
    as_token = Admin(admin.server, admin.ca)
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "group": group}},
    }
    for _ in range(100):
        status, body = as_token.request(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review, token=token
        )
        if status == 201 and body["status"].get("allowed"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{verb} {resource} never became allowed")


@pytest.mark.parametrize(
    "missing", [None, *PERMISSIONS], ids=lambda p: "all" if p is None else f"no-{p[2]}-{p[1]}"
)
def test_the_sweepers_role_is_enough_and_each_permission_is_needed(
    admin: Admin,
    dev_cluster: DevCluster,
    namespace: str,
    tmp_path: Path,
    cluster_bindings: list[str],
    missing: tuple[str, str, str] | None,
) -> None:
    """sweep --all-namespaces, in-cluster, as the CronJob runs it, bound to the shipped
    ClusterRole (all) or to it less one permission: that one is then refused (exit 5)."""
    suffix = uuid.uuid4().hex[:5]
    crb = f"bootstrap-token:{namespace}:job:view"
    cluster_bindings.append(crb)
    doomed = expired_set(admin, namespace, crb)
    rules = []
    for rule in sweeper_rules():
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                verbs = [v for v in rule["verbs"] if (group, resource, v) != missing]
                if verbs:
                    rules.append({"apiGroups": [group], "resources": [resource], "verbs": verbs})
    cluster_role = f"t-sweeper-{suffix}"
    create(admin, f"{RBAC}/clusterroles", {"metadata": {"name": cluster_role}, "rules": rules})
    try:
        pod = make_pod(admin, dev_cluster, tmp_path, namespace, account="sweeper", role=None)
        create(
            admin,
            f"{RBAC}/clusterrolebindings",
            {
                "metadata": {"name": cluster_role},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_role,
                },
                "subjects": [{"kind": "ServiceAccount", "name": "sweeper", "namespace": namespace}],
            },
        )
        cluster_bindings.append(cluster_role)
        token = (pod.directory / "token").read_text()
        probe = (
            ("", "secrets", "list")
            if missing != ("", "secrets", "list")
            else ("", "serviceaccounts", "list")
        )
        wait_allowed(admin, token, probe[2], probe[1], probe[0])
        cronjob = next(
            d for d in yaml.safe_load_all(SWEEP_FILE.read_text()) if d["kind"] == "CronJob"
        )
        args = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
        result = pod.run(*args)
        if missing is None:
            assert result.returncode == 0, result.stderr
            assert [
                line for line in result.stdout.splitlines() if namespace in line or crb in line
            ] == [
                f"deleted Secret {namespace}/job-token (lease expired 2026-01-01T00:00:00Z)",
                f"deleted RoleBinding {namespace}/job-view (lease expired 2026-01-01T00:00:00Z)",
                f"deleted ClusterRoleBinding {crb} (lease expired 2026-01-01T00:00:00Z)",
                f"deleted ServiceAccount {namespace}/job (lease expired 2026-01-01T00:00:00Z)",
            ]
            assert not any(exists(admin, p) for p in doomed)
        else:
            group, resource, verb = missing
            assert result.returncode == 5, result.stderr
            [error] = result.error_lines
            assert error.startswith("error: forbidden: user 'system:serviceaccount:"), error
            assert f"may not {verb} {resource} " in error, error
            assert f'cannot {verb} resource "{resource}" in API group "{group}"' in error, error
    finally:
        admin.request("DELETE", f"{RBAC}/clusterroles/{cluster_role}")


# --- killed runs -------------------------------------------------------------------------


def labelled(admin: Admin, namespace: str) -> list[tuple[str, dict[str, Any]]]:
    """Every object labelled as bootstrap-token's in the namespace, and the
    ClusterRoleBindings naming one of its accounts."""
    selector = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dbootstrap-token"
    found = []
    for kind, path in (
        ("ServiceAccount", f"/api/v1/namespaces/{namespace}/serviceaccounts"),
        ("Secret", f"/api/v1/namespaces/{namespace}/secrets"),
        ("RoleBinding", f"{RBAC}/namespaces/{namespace}/rolebindings"),
        ("ClusterRoleBinding", f"{RBAC}/clusterrolebindings"),
    ):
        for item in get(admin, f"{path}?{selector}")["items"]:
            if kind == "ClusterRoleBinding" and not any(
                s.get("namespace") == namespace for s in item.get("subjects") or []
            ):
                continue
            found.append((kind, item))
    return found


def check_files(directory: Path) -> None:
    """A complete, valid output or none, and no temp file."""
    names = sorted(p.name for p in directory.iterdir())
    assert set(names) <= {"job.env", "job.ca.crt"}, names
    if "job.env" in names:
        assert read_token(directory / "job.env")
        assert (directory / "job.env").read_text().endswith("\n")
    if "job.ca.crt" in names:
        assert (directory / "job.ca.crt").read_text().rstrip().endswith("-----END CERTIFICATE-----")


@pytest.mark.parametrize("command", ["issue", "rotate"])
def test_a_run_killed_at_any_point_leaves_nothing_invisible(
    dev_cluster: DevCluster,
    admin: Admin,
    namespace: str,
    tmp_path: Path,
    cluster_bindings: list[str],
    command: str,
) -> None:
    """SIGKILL after the 1st, 2nd, ... answer of a run (and halfway through writing each
    output file), until a run gets through: each time the files are whole or absent,
    every object it made is labelled, leased and shown by `list`; then `revoke --all`
    (even kills) or `sweep` after the lease (odd kills) leaves nothing of ours."""
    role(admin, namespace)
    cluster_bindings.append(f"bootstrap-token:{namespace}:job:view")
    env = {"KUBECONFIG": str(dev_cluster.kubeconfig)}
    flags = ["--cluster", "dev", "-n", namespace, "--service-account", "job"]
    run_flags = [*flags, "--role", "r", "--clusterrole", "view", "--out", "job.env", "--ttl", "1s"]
    points = [f"request:{n}" for n in range(1, 60)] + ["write:1", "write:2"]
    killed = 0
    index = -1
    while index + 1 < len(points):
        index += 1
        point = points[index]
        work = tmp_path / f"run-{index}"
        work.mkdir()
        if command == "rotate":  # a token to rotate, first
            made = run_tool(*run_flags, env=env, cwd=work)
            assert made.returncode == 0, made.stderr
            for name in ("job.env", "job.ca.crt"):
                (work / name).unlink()
        result = run_tool(
            command, *run_flags, env={**env, "_BOOTSTRAP_TOKEN_KILL_AT": point}, cwd=work
        )
        check_files(work)
        if result.returncode == 0:  # got through: the kills while writing come next
            assert point.startswith("request:"), point
            done = run_tool("revoke", *flags, "--all", env=env)
            assert done.returncode == 0, done.stderr
            points[index + 1 :] = [p for p in points[index + 1 :] if p.startswith("write:")]
            continue
        assert result.returncode == -9, (point, result.stderr)
        killed += 1
        objects = labelled(admin, namespace)
        assert all(LEASE in annotations(o) for _, o in objects), point
        listed = run_tool("list", "--cluster", "dev", "-n", namespace, "--format", "json", env=env)
        rows = json.loads(listed.stdout)["items"]
        for kind, item in objects:
            name = item["metadata"]["name"]
            if kind == "Secret":
                assert name in {r["secret"] for r in rows}, (point, name)
            elif kind == "ServiceAccount":
                assert name in {r["service_account"] for r in rows}, (point, name)
            else:
                role_shown = (
                    "cluster:ClusterRole/view" if kind == "ClusterRoleBinding" else "Role/r"
                )
                assert any(
                    role_shown in r["roles"] and r["service_account"] == "job" for r in rows
                ), (point, name)
        if killed % 2:
            if objects:
                wait_past(max(annotations(o)[LEASE] for _, o in objects))
            cleaned = run_tool("sweep", "--cluster", "dev", "-n", namespace, env=env)
        else:
            cleaned = run_tool("revoke", *flags, "--all", env=env)
        assert cleaned.returncode == 0, (point, cleaned.stderr)
        left = [(k, o["metadata"]["name"]) for k, o in labelled(admin, namespace)]
        assert left == [], (point, left)
    # ten requests and more (the ServiceAccount made first, one rules review for the
    # powers), and the two files
    assert killed >= 12


def test_the_bootstrapper_role_issues_with_a_ttl_and_sweeps_its_namespace(
    admin: Admin, dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    """manifests/deploy/bootstrapper-clusterrole.yaml bound in one namespace: issue
    --ttl and sweep -n there (cluster-wide bindings out of reach: an info line)."""
    from tests.cluster.pod import apply_roles

    apply_roles(dev_cluster)
    pod = make_pod(admin, dev_cluster, tmp_path, namespace)
    issued = pod.run("--service-account", "app", "--ttl", "1s")
    assert issued.returncode == 0, issued.stderr
    lease = annotations(get(admin, f"/api/v1/namespaces/{namespace}/secrets/app-token"))[LEASE]
    wait_past(lease)
    swept = pod.run("sweep", "-n", namespace)
    assert swept.returncode == 0, swept.stderr
    assert swept.stdout.splitlines() == [
        f"deleted Secret {namespace}/app-token (lease expired {lease})",
        f"deleted ServiceAccount {namespace}/app (lease expired {lease})",
    ]
    assert "not allowed to list clusterrolebindings: they are not swept" in swept.stderr
