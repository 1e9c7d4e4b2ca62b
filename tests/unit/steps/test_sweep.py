"""bootstrap.steps.sweep: leases as text, and what a sweep deletes or keeps (pure `decide`)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

from bootstrap.steps.manifests import with_lease
from bootstrap.steps.sweep import decide, lease_until, parse_lease, paths

MANAGED = {"app.kubernetes.io/managed-by": "bootstrap-token"}
NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=timezone.utc)
PAST = "2026-12-06T11:59:59Z"
FUTURE = "2026-12-06T12:00:01Z"


def sa(name: str, uid: str, lease: str | None = None, managed: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "ci", "name": name, "uid": uid}
    if managed:
        meta["labels"] = dict(MANAGED)
    return with_lease({"metadata": meta}, lease)


def token(
    name: str,
    owner: str,
    uid: str | None,
    lease: str | None = None,
    managed: bool = True,
    account_label: str | None = None,
) -> dict[str, Any]:
    annotations = {"kubernetes.io/service-account.name": owner}
    if uid:
        annotations["kubernetes.io/service-account.uid"] = uid
    labels = dict(MANAGED) if managed else {}
    if account_label:
        labels["bootstrap-token/service-account"] = account_label
    body = {
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "namespace": "ci",
            "name": name,
            "uid": f"uid-{name}",
            "labels": labels,
            "annotations": annotations,
        },
    }
    return with_lease(body, lease)


def rb(name: str, *subjects: tuple[str, str], lease: str | None = PAST) -> dict[str, Any]:
    body = {
        "metadata": {"namespace": "ci", "name": name, "labels": dict(MANAGED)},
        "roleRef": {"kind": "Role", "name": "edit"},
        "subjects": [{"kind": k, "name": n, "namespace": "ci"} for k, n in subjects],
    }
    return with_lease(body, lease)


def outcome(decisions: list[Any]) -> list[tuple[str, str, str]]:
    return [(d.action, d.what, d.reason) for d in decisions]


def test_lease_until_is_utc_and_rounds_up_to_whole_seconds() -> None:
    start = datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=timezone.utc)
    assert lease_until(3600, start) == "2026-01-01T01:00:01Z"
    assert lease_until(90, datetime(2026, 1, 1, tzinfo=timezone.utc)) == "2026-01-01T00:01:30Z"


def test_parse_lease_needs_a_time_zone() -> None:
    assert parse_lease("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_lease("2026-01-01T02:00:00+02:00") == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_lease("2026-01-01T00:00:00") is None
    assert parse_lease("tomorrow") is None


def test_expired_objects_go_secrets_first_then_bindings_then_accounts() -> None:
    decisions = decide(
        [sa("job", "u1", PAST)],
        [token("job-token", "job", "u1", PAST)],
        [rb("bootstrap-token:job:edit", ("ServiceAccount", "job"))],
        [],
        NOW,
    )
    assert outcome(decisions) == [
        ("delete", "Secret ci/job-token", ""),
        ("delete", "RoleBinding ci/bootstrap-token:job:edit", ""),
        ("delete", "ServiceAccount ci/job", ""),
    ]


def test_unexpired_unleased_and_unlabelled_objects_are_not_touched() -> None:
    decisions = decide(
        [sa("a", "u1", FUTURE), sa("b", "u2"), sa("c", "u3", PAST, managed=False)],
        [
            token("a-token", "a", "u1", FUTURE),
            token("b-token", "b", "u2"),
            token("c-token", "c", "u3", PAST, managed=False),
        ],
        [rb("x", ("ServiceAccount", "b"), lease=None)],
        [],
        NOW,
    )
    assert decisions == []


def test_a_pre_existing_account_keeps_living_and_its_binding_goes() -> None:
    """`default` existed before the run: no lease, never deleted; the run's binding and
    Secret had leases."""
    decisions = decide(
        [sa("default", "u0", managed=False)],
        [token("default-token", "default", "u0", PAST)],
        [rb("bootstrap-token:default:edit", ("ServiceAccount", "default"))],
        [],
        NOW,
    )
    assert outcome(decisions) == [
        ("delete", "Secret ci/default-token", ""),
        ("delete", "RoleBinding ci/bootstrap-token:default:edit", ""),
    ]


def test_owner_checks_keep_secrets_of_other_or_earlier_accounts() -> None:
    decisions = decide(
        [sa("a", "u-live", PAST)],
        [
            token("earlier", "a", "u-old", PAST),
            token("relabelled", "a", "u-live", PAST, account_label="b"),
            token("orphan", "gone", "u9", PAST),
        ],
        [],
        [],
        NOW,
    )
    assert outcome(decisions) == [
        (
            "keep",
            "Secret ci/earlier",
            "belongs to an earlier ServiceAccount 'a' (uid u-old, the live one is u-live)",
        ),
        ("keep", "Secret ci/relabelled", "is labelled for ServiceAccount 'b' but belongs to 'a'"),
        ("keep", "Secret ci/orphan", "names ServiceAccount 'gone', which does not exist"),
        (
            "keep",
            "ServiceAccount ci/a",
            "still has token Secret earlier, relabelled (deleting the account would revoke it)",
        ),
    ]


def test_a_live_token_keeps_its_account_and_bindings() -> None:
    """Rotated with a later lease: the new token keeps its account and its powers. A
    hand-made token Secret of the account keeps the account (not the binding)."""
    decisions = decide(
        [sa("a", "u1", PAST), sa("h", "u2", PAST)],
        [
            token("a-token", "a", "u1", PAST),
            token("a-token-1f2e3d", "a", "u1", FUTURE),
            token("by-hand", "h", "u2", managed=False),
        ],
        [rb("ra", ("ServiceAccount", "a")), rb("rh", ("ServiceAccount", "h"))],
        [],
        NOW,
    )
    assert outcome(decisions) == [
        ("delete", "Secret ci/a-token", ""),
        (
            "keep",
            "RoleBinding ci/ra",
            "ServiceAccount ci/a still has token Secret a-token-1f2e3d whose lease has not run out",
        ),
        ("delete", "RoleBinding ci/rh", ""),
        (
            "keep",
            "ServiceAccount ci/a",
            "still has token Secret a-token-1f2e3d (deleting the account would revoke it)",
        ),
        (
            "keep",
            "ServiceAccount ci/h",
            "still has token Secret by-hand (deleting the account would revoke it)",
        ),
    ]


def test_a_binding_with_other_subjects_is_kept() -> None:
    crb = rb("crb", ("ServiceAccount", "a"), ("User", "alice"))
    del crb["metadata"]["namespace"]
    decisions = decide([sa("a", "u1")], [], [], [crb], NOW)
    assert outcome(decisions) == [
        (
            "keep",
            "ClusterRoleBinding crb",
            "binds ServiceAccount ci/a, User ci/alice, not one ServiceAccount alone (edit its "
            "subjects by hand if it must go)",
        )
    ]


def test_an_unreadable_lease_is_kept_and_said() -> None:
    decisions = decide([sa("a", "u1", "next week")], [], [], [], NOW)
    assert outcome(decisions) == [
        ("keep", "ServiceAccount ci/a", "has a lease 'next week' that is not an RFC 3339 time")
    ]


def test_paths_list_every_account_and_token_secret_and_our_bindings() -> None:
    assert paths("ci") == {
        "serviceaccounts": "/api/v1/namespaces/ci/serviceaccounts",
        "secrets": "/api/v1/namespaces/ci/secrets?fieldSelector=type%3Dkubernetes.io%2Fservice-account-token",
        "rolebindings": "/apis/rbac.authorization.k8s.io/v1/namespaces/ci/rolebindings?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dbootstrap-token",
        "clusterrolebindings": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dbootstrap-token",
    }
    assert paths(None)["secrets"] == (
        "/api/v1/secrets?fieldSelector=type%3Dkubernetes.io%2Fservice-account-token"
    )


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bootstrap", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "KUBECONFIG": "/nonexistent"},
    )


def test_usage_errors_of_sweep_and_ttl() -> None:
    for args, message in [
        (("sweep",), "error: sweep needs -n NAMESPACE or --all-namespaces (-A)"),
        (
            ("sweep", "-n", "ci", "-A"),
            "error: use either -n/--namespace or -A/--all-namespaces, not both",
        ),
        (("--ttl", "0s", "--cluster", "x"), "error: --ttl '0s' must be at least 1s"),
        (
            ("--ttl", "soon", "--cluster", "x"),
            "error: --ttl 'soon' is not a duration like 1h, 30m, 1h30m or 3600s",
        ),
        (
            ("--ttl", "5m", "--mode", "request", "--cluster", "x"),
            "error: --ttl 300s is shorter than the shortest request-mode token (10m): use "
            "--ttl 10m or more with --mode request",
        ),
    ]:
        done = run_cli(*args)
        assert (done.returncode, done.stderr) == (2, message + "\n"), args


def test_the_python_api_takes_a_ttl_and_checks_it_before_any_request() -> None:
    import pytest

    from bootstrap.api import issue_token
    from bootstrap.errors import UsageError

    with pytest.raises(UsageError, match=r"^--ttl '0s' must be at least 1s$"):
        issue_token("nowhere", ttl="0s", environ={"KUBECONFIG": "/nonexistent"})
    with pytest.raises(UsageError, match="shorter than the shortest request-mode token"):
        issue_token("nowhere", ttl=60, mode="request", environ={"KUBECONFIG": "/nonexistent"})
