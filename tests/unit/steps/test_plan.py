"""bootstrap.steps.plan: dry-run paths, one log line per object, and the plan printed on stdout."""

from __future__ import annotations

import logging

import pytest
import yaml

from bootstrap.steps.manifests import token_secret
from bootstrap.steps.plan import Plan, render


def test_dry_run_paths_carry_dry_run_all() -> None:
    assert Plan().path("/api/v1/namespaces/ns/secrets") == "/api/v1/namespaces/ns/secrets"
    dry = Plan(dry_run=True)
    assert dry.path("/api/v1/namespaces/ns/secrets") == "/api/v1/namespaces/ns/secrets?dryRun=All"
    assert dry.path("/x?labelSelector=a") == "/x?labelSelector=a&dryRun=All"


def test_each_entry_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bootstrap")
    plan = Plan()
    plan.record("exists", "ServiceAccount ns/a", "not created by bootstrap-token")
    plan.record("create", "Secret ns/a-token")
    plan.record("delete", "Secret ns/a-token-1")
    plan.record("keep", "ClusterRoleBinding x", "also binds User alice")
    plan.record("exists", "Secret ns/a-token", quiet=True)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "ServiceAccount ns/a exists, reusing it (not created by bootstrap-token)"),
        ("INFO", "Secret ns/a-token created"),
        ("INFO", "deleted Secret ns/a-token-1"),
        ("INFO", "ClusterRoleBinding x also binds User alice; kept"),
        ("DEBUG", "Secret ns/a-token exists, reusing it"),
    ]
    assert plan.summary() == "1 deleted, 1 kept"


def test_dry_run_lines_say_would(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bootstrap")
    plan = Plan(dry_run=True)
    plan.record("create", "Secret ns/a-token")
    plan.record("delete", "Secret ns/old")
    plan.record("keep", "ServiceAccount ns/default", "was not created by bootstrap-token")
    plan.record("exists", "Secret ns/x", quiet=True)  # shown: no later step says it
    assert [r.getMessage() for r in caplog.records] == [
        "Secret ns/a-token would be created",
        "Secret ns/old would be deleted",
        "ServiceAccount ns/default was not created by bootstrap-token; would be kept",
        "Secret ns/x exists, would be reused",
    ]
    assert plan.summary() == (
        "dry run, nothing was changed: 1 to create, 1 existing, 1 to delete, 1 to keep"
    )
    assert Plan(dry_run=True).summary() == "dry run, nothing was changed: 0 to delete, 0 to keep"


def test_render_comments_then_the_objects_as_the_server_returned_them() -> None:
    plan = Plan(dry_run=True)
    returned = token_secret("ns", "a-token", "a", "u-1")
    returned["metadata"].update(
        uid="made-up", resourceVersion="", creationTimestamp="2026-01-01T00:00:00Z"
    )
    returned["metadata"]["managedFields"] = [{"manager": "x"}]
    plan.record("exists", "ServiceAccount ns/a")
    plan.record("create", "Secret ns/a-token", body=returned)
    plan.record("keep", "RoleBinding ns/b", "also binds Group g")
    text = render("title", plan)
    assert text.splitlines()[:4] == [
        "# title",
        "# exists  ServiceAccount ns/a",
        "# create  Secret ns/a-token",
        "# keep    RoleBinding ns/b  (also binds Group g)",
    ]
    (document,) = yaml.safe_load_all(text)
    assert document == token_secret("ns", "a-token", "a", "u-1")
    assert "uid" in returned["metadata"]  # the caller's object is left as it was
    assert list(yaml.safe_load_all(render("only comments", Plan(dry_run=True)))) == []
