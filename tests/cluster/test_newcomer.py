"""Issue 19 against the real cluster: quiet success (one line per token, a fleet's
summary, a live count on a terminal), `-o json` on stdout, "what can this token do?"
(`can` in -o json, `check --can`) for tokens bound to `view`, to one Role and to
nothing, and a revoked token that `check` calls only invalid."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tests.cluster.test_features import eventually_status, read_env
from tests.cluster.test_lifecycle import check, create
from tests.conftest import Admin, DevCluster, DevTool, remember_token
from tests.terminal import run_on_a_terminal

SELF_REVIEWS = {"selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"}


def test_a_successful_issue_prints_one_line_and_v_prints_the_steps(
    dev_tool: DevTool, namespace: str, tmp_path: Path
) -> None:
    result = dev_tool()
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        f"bootstrap-token: system:serviceaccount:{namespace}:default on cluster dev, "
        f"does not expire -> {tmp_path / 'dev.env'}\n"
    )
    steps = dev_tool("-v", "--out", "again.env")
    assert steps.returncode == 0, steps.stderr
    lines = steps.stderr.splitlines()
    assert lines[0].startswith("bootstrap-token: cluster dev at https://")
    assert f"bootstrap-token: reusing Secret {namespace}/default-token, token already present" in (
        lines
    )
    assert lines[-1].endswith(f"-> {tmp_path / 'again.env'}")
    assert len(lines) >= 5


def test_a_fleet_of_seven_prints_its_summary_only(
    dev_tool: DevTool, namespace: str, tmp_path: Path
) -> None:
    accounts = ["a", "b", "c", "d", "e", "f", "g"]
    flags = [word for account in accounts for word in ("--service-account", account)]
    result = dev_tool(*flags, "--out", "{service_account}.env")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].split() == ["TARGET", "RESULT", "DETAIL"]
    assert lines[1] == (
        f"dev/a   ok      system:serviceaccount:{namespace}:a on cluster dev, does not expire "
        f"-> {tmp_path / 'a.env'}"
    )
    assert lines[-1] == "7 of 7 ok"
    assert len(lines) == 9  # was 51 before issue 19
    assert "\r" not in result.stderr and "\x1b[" not in result.stderr  # no tty: plain lines


def on_a_terminal(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """The tool on a terminal that shows colour (TERM=xterm, no NO_COLOR)."""
    full = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    return run_on_a_terminal(args, {**full, **env, "TERM": "xterm"}, cwd)


def test_a_fleet_on_a_terminal_shows_a_live_count_and_colours_warnings(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    env = {"KUBECONFIG": str(dev_cluster.kubeconfig)}
    base = ["--cluster", "dev", "-n", namespace, "--service-account", "a"]
    text = on_a_terminal(
        [*base, "--service-account", "b", "--out", "{service_account}.env"], env, tmp_path
    )
    assert "bootstrap-token: 0/2 done" in text
    assert "bootstrap-token: 2/2 done" in text
    assert "2 of 2 ok" in text
    # a powerful token's warning stands out (bold reverse red) on a terminal
    powerful = on_a_terminal(
        [*base, "--clusterrole", "cluster-admin", "--out", "admin.env"], env, tmp_path
    )
    assert "\x1b[1;31;7mbootstrap-token: warning: the new token for" in powerful
    remember_token(read_env(tmp_path / "admin.env")["TOKEN"])


def rules_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    can = document["can"]
    assert isinstance(can, list)
    assert document["can_incomplete"] is False
    return can


def test_what_can_the_token_do_bound_to_view_to_one_role_and_to_nothing(
    dev_tool: DevTool, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    rule = {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}
    create(
        admin, f"{rbac}/roles", {"metadata": {"name": "settings-reader"}, "rules": [
            {**rule, "resourceNames": ["settings"]}]}
    )  # fmt: skip
    assert dev_tool("--service-account", "viewer", "--clusterrole", "view").returncode == 0
    assert dev_tool("--service-account", "reader", "--role", "settings-reader").returncode == 0
    issued = dev_tool("--service-account", "nobody", "-o", "json", stdout_may_hold_token=True)
    assert issued.returncode == 0, issued.stderr
    remember_token(json.loads(issued.stdout)["token"])

    # nothing bound: only what every authenticated user has (self reviews, discovery)
    nothing = rules_of(json.loads(issued.stdout))
    assert {r for rule in nothing for r in rule.get("resources", [])} <= SELF_REVIEWS
    assert any("/api" in rule.get("nonResourceURLs", []) for rule in nothing)

    viewer = check("viewer@dev.env", "-o", "json", cwd=tmp_path)
    assert viewer.returncode == 0, viewer.stderr
    view_rules = rules_of(json.loads(viewer.stdout))
    pods = [r for r in view_rules if "pods" in r.get("resources", []) and r["apiGroups"] == [""]]
    assert pods and set(pods[0]["verbs"]) == {"get", "list", "watch"}
    assert not any("secrets" in r.get("resources", []) for r in view_rules)

    reader = check("reader@dev.env", "-o", "json", cwd=tmp_path)
    assert reader.returncode == 0, reader.stderr
    reader_rules = rules_of(json.loads(reader.stdout))
    assert {**rule, "resourceNames": ["settings"]} in reader_rules
    assert not any("pods" in r.get("resources", []) for r in reader_rules)

    table = check("reader@dev.env", "--can", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    start = lines.index(f"What the token can do in namespace {namespace}:")
    assert re.split(r"\s{3,}", lines[start + 1]) == [
        "Resources",
        "Non-Resource URLs",
        "Resource Names",
        "Verbs",
    ]
    assert ["configmaps", "[]", "[settings]", "[get]"] in [line.split() for line in lines]
    groups = " ".join(table.stdout.split("API groups it can discover: ")[1].split())
    assert groups.startswith("core, ")
    assert "apps" in groups.split(", ")
    assert max(len(line) for line in lines[lines.index(lines[-1]) :]) <= 100


def test_check_of_a_revoked_token_says_only_invalid(
    dev_tool: DevTool, admin: Admin, tmp_path: Path
) -> None:
    assert dev_tool().returncode == 0
    token = read_env(tmp_path / "dev.env")["TOKEN"]
    assert dev_tool("revoke").returncode == 0
    assert eventually_status(admin, token, 401) == 401  # the apiserver's 10 s auth cache
    result = check("dev.env", cwd=tmp_path)
    assert result.returncode == 11
    assert result.stdout.splitlines()[0] == "dev.env: invalid"
    assert "expire" not in result.stdout
