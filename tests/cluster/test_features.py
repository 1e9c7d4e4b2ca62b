"""Beyond the recipe: short-lived tokens, revoke/rotate, RBAC, fleets, CI formats
and conventions, each against the real dev cluster."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from tests.conftest import Admin, DevCluster, DevTool, remember_token, run_tool

VENV_BIN = Path(sys.executable).parent


def kube_env(dev_cluster: DevCluster) -> dict[str, str]:
    return {"KUBECONFIG": str(dev_cluster.kubeconfig)}


def read_env(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["sh", "-c", f'. "{path}" && env -0'], capture_output=True, text=True, check=True
    ).stdout
    values = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    if "TOKEN" in values:
        remember_token(values["TOKEN"])
    return values


def eventually_status(admin: Admin, token: str, want: int, seconds: float = 25) -> int:
    """kube-apiserver caches a successful token authentication for 10 s, so a revoked
    token keeps working for up to 10 s after its last successful use."""
    deadline = time.monotonic() + seconds
    status = admin.whoami(token)[0]
    while status != want and time.monotonic() < deadline:
        time.sleep(0.1)
        status = admin.whoami(token)[0]
    return status


def _as_token_once(admin: Admin, token: str, path: str) -> int:
    return Admin(admin.server, admin.ca).request("GET", path, token=token)[0]


def _as_token(admin: Admin, token: str, path: str) -> int:
    """GET as the token; a 403 is retried briefly, since a new binding reaches the
    RBAC authorizer's cache a moment after it is created."""
    plain = Admin(admin.server, admin.ca)
    deadline = time.monotonic() + 3
    status = plain.request("GET", path, token=token)[0]
    while status == 403 and time.monotonic() < deadline:
        time.sleep(0.1)
        status = plain.request("GET", path, token=token)[0]
    return status


# --- short-lived tokens ------------------------------------------------------------


def test_request_mode_reports_the_real_expiry(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    result = dev_tool("--mode", "request", "--duration", "20m")
    assert result.returncode == 0, result.stderr
    values = read_env(tmp_path / "dev.env")
    expires = datetime.fromisoformat(values["EXPIRES_AT"].replace("Z", "+00:00"))
    remaining = (expires - datetime.now(timezone.utc)).total_seconds()
    assert 19 * 60 < remaining <= 20 * 60 + 5
    assert admin.whoami(values["TOKEN"]) == (201, f"system:serviceaccount:{namespace}:default")
    assert admin.secrets_of(namespace, "default") == []  # no Secret in request mode


def test_request_mode_token_bound_to_a_secret_dies_with_it(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    status, _ = admin.request(
        "POST", f"/api/v1/namespaces/{namespace}/secrets", {"metadata": {"name": "anchor"}}
    )
    assert status == 201
    result = dev_tool("--mode", "request", "--bound-secret", "anchor")
    assert result.returncode == 0, result.stderr
    token = read_env(tmp_path / "dev.env")["TOKEN"]
    assert admin.whoami(token)[0] == 201
    admin.request("DELETE", f"/api/v1/namespaces/{namespace}/secrets/anchor")
    assert eventually_status(admin, token, 401) == 401


def test_request_mode_refuses_durations_below_ten_minutes(tmp_path: Path) -> None:
    result = run_tool("--cluster", "dev", "--mode", "request", "--duration", "5m", cwd=tmp_path)
    assert result.returncode == 2
    assert result.error_lines == ["error: --duration '5m' is too short: the API's minimum is 10m"]


# --- revoke and rotate -------------------------------------------------------------


def test_revoke_makes_the_token_fail_and_all_removes_only_what_we_created(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    for sa in ("default", "robot"):
        issued = dev_tool("--service-account", sa, "--clusterrole", "view", "--out", f"{sa}.env")
        assert issued.returncode == 0, issued.stderr
    token = read_env(tmp_path / "robot.env")["TOKEN"]
    assert admin.whoami(token)[0] == 201

    revoked = dev_tool("revoke", "--service-account", "robot")
    assert revoked.returncode == 0, revoked.stderr
    assert eventually_status(admin, token, 401) == 401
    assert admin.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/robot")[0] == 200

    everything = dev_tool("revoke", "--service-account", "robot", "--all")
    assert everything.returncode == 0, everything.stderr
    assert admin.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/robot")[0] == 404
    binding = f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/bootstrap-token:{namespace}:robot:view"
    assert admin.request("GET", binding)[0] == 404

    # `default` existed before bootstrap-token: --all deletes its Secret and binding, not it.
    default = dev_tool("revoke", "--all")
    assert default.returncode == 0, default.stderr
    assert admin.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default")[0] == 200
    assert "not created by bootstrap-token; kept" in default.stderr


def test_revoke_leaves_a_secret_it_did_not_create(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    admin.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        {"metadata": {"name": "default-token"}, "stringData": {"k": "v"}},
    )
    result = dev_tool("revoke")
    assert result.returncode == 6
    assert "was not created by bootstrap-token; it is left alone" in result.stderr
    assert admin.request("GET", f"/api/v1/namespaces/{namespace}/secrets/default-token")[0] == 200


def test_rotate_replaces_the_token_and_the_old_one_stops_working(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    first = dev_tool()
    assert first.returncode == 0, first.stderr
    old = read_env(tmp_path / "dev.env")["TOKEN"]
    rotated = dev_tool("rotate")
    assert rotated.returncode == 0, rotated.stderr
    new = read_env(tmp_path / "dev.env")["TOKEN"]
    assert new != old
    assert admin.whoami(new)[0] == 201
    assert eventually_status(admin, old, 401) == 401
    assert len(admin.secrets_of(namespace, "default")) == 1


# --- least privilege ---------------------------------------------------------------


def test_without_binding_the_token_only_does_discovery(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    assert dev_tool().returncode == 0
    token = read_env(tmp_path / "dev.env")["TOKEN"]
    assert _as_token(admin, token, "/api") == 200
    assert _as_token_once(admin, token, f"/api/v1/namespaces/{namespace}/pods") == 403


def test_clusterrole_and_role_grant_exactly_what_they_allow(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    role = {
        "metadata": {"name": "cm-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
    }
    status, body = admin.request(
        "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles", role
    )
    assert status == 201, body
    result = dev_tool("--service-account", "ro", "--role", "cm-reader")
    assert result.returncode == 0, result.stderr
    token = read_env(tmp_path / "ro@dev.env")["TOKEN"]
    assert _as_token(admin, token, f"/api/v1/namespaces/{namespace}/configmaps") == 200
    assert _as_token_once(admin, token, f"/api/v1/namespaces/{namespace}/pods") == 403

    viewer = dev_tool("--service-account", "viewer", "--clusterrole", "view", "--out", "viewer.env")
    assert viewer.returncode == 0, viewer.stderr
    token = read_env(tmp_path / "viewer.env")["TOKEN"]
    assert _as_token(admin, token, "/api/v1/namespaces/default/pods") == 200
    assert _as_token_once(admin, token, f"/api/v1/namespaces/{namespace}/secrets") == 403


# --- fleets --------------------------------------------------------------------------


def test_fleet_one_failing_cluster_does_not_stop_the_others(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    config = dev_cluster.config
    config["clusters"].append({"name": "gone", "cluster": {"server": "https://127.0.0.1:1"}})
    config["contexts"].append(
        {"name": "gone-admin", "context": {"cluster": "gone", "user": "dev-admin"}}
    )
    kubeconfig = tmp_path / "fleet.yaml"
    kubeconfig.write_text(json.dumps(config))
    (tmp_path / "creds").mkdir()
    result = run_tool(
        "--all-clusters",
        "--kubeconfig",
        str(kubeconfig),
        "-n",
        namespace,
        "--out",
        "creds/{cluster}.env",
        "--timeout",
        "3",
        cwd=tmp_path,
    )
    assert result.returncode == 10, result.stderr
    assert sorted(p.name for p in (tmp_path / "creds").glob("*.env")) == [
        "dev-localhost.env",
        "dev.env",
    ]
    summary = result.stderr[result.stderr.index("TARGET") :]
    assert re.search(r"^dev\s+ok\s", summary, re.M)
    assert re.search(r"^gone\s+FAILED\s+cannot reach the API server", summary, re.M)
    assert "2 of 3 ok" in summary
    for name in ("dev", "dev-localhost"):
        read_env(tmp_path / "creds" / f"{name}.env")


def test_fleet_needs_a_cluster_placeholder(tmp_path: Path) -> None:
    result = run_tool("--cluster", "a", "--cluster", "b", "--out", "x.env", cwd=tmp_path)
    assert result.returncode == 2
    assert "{cluster} placeholder" in result.stderr


# --- CI formats ----------------------------------------------------------------------


def test_github_format_masks_first_and_exports_to_github_env(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    github_env, github_output = tmp_path / "github_env", tmp_path / "github_output"
    github_env.write_text("EARLIER=1\n")
    result = run_tool(
        "--cluster",
        "dev",
        "-n",
        namespace,
        "--format",
        "github",
        env={
            **kube_env(dev_cluster),
            "GITHUB_ENV": str(github_env),
            "GITHUB_OUTPUT": str(github_output),
            "RUNNER_TEMP": str(tmp_path),
        },
        cwd=tmp_path,
        stdout_may_hold_token=True,
    )
    assert result.returncode == 0, result.stderr
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith("::add-mask::")
    token = first_line.removeprefix("::add-mask::")
    remember_token(token)
    lines = github_env.read_text().splitlines()
    assert lines[0] == "EARLIER=1" and f"TOKEN={token}" in lines
    cacert = next(line for line in lines if line.startswith("CACERT=")).split("=", 1)[1]
    assert Path(cacert).parent == tmp_path
    assert token not in github_output.read_text()
    assert f"identity=system:serviceaccount:{namespace}:default" in github_output.read_text()
    assert admin.whoami(token)[0] == 201


def test_github_format_outside_actions_is_a_clear_error(tmp_path: Path) -> None:
    result = run_tool("--cluster", "dev", "--format", "github", cwd=tmp_path)
    assert result.returncode == 2
    assert result.error_lines == [
        "error: --format github needs $GITHUB_ENV: run it inside GitHub Actions"
    ]


def test_dotenv_format_is_plain_key_value(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    result = dev_tool("--format", "dotenv")
    assert result.returncode == 0, result.stderr
    values = dict(line.split("=", 1) for line in (tmp_path / "dev.env").read_text().splitlines())
    remember_token(values["TOKEN"])
    assert list(values) == ["APISERVER", "TOKEN", "CACERT", "NAMESPACE", "CACERT_DATA"]
    assert not values["TOKEN"].startswith("'")
    # the CA itself, for a later CI job without the CACERT file (docs/ci.md)
    assert base64.b64decode(values["CACERT_DATA"]) == dev_cluster.ca_file.read_bytes()
    assert admin.whoami(values["TOKEN"])[0] == 201


# --- conventions ---------------------------------------------------------------------


def test_works_as_a_kubectl_plugin(dev_cluster: DevCluster, namespace: str, tmp_path: Path) -> None:
    env = {**os.environ, **kube_env(dev_cluster), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["kubectl", "bootstrap-token", "--cluster", "dev", "-n", namespace],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    read_env(tmp_path / "dev.env")
    help_text = subprocess.run(
        ["kubectl", "bootstrap-token", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    ).stdout
    assert "Usage: kubectl bootstrap-token" in help_text


def test_shell_completion_offers_cluster_names(dev_cluster: DevCluster) -> None:
    tool = str(VENV_BIN / "bootstrap-token")
    script = subprocess.run(
        [tool],
        env={**os.environ, "_BOOTSTRAP_TOKEN_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "complete " in script
    for shell in ("zsh", "fish"):
        source = subprocess.run(
            [tool],
            env={**os.environ, "_BOOTSTRAP_TOKEN_COMPLETE": f"{shell}_source"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert source.returncode == 0 and source.stdout
    words = subprocess.run(
        [tool],
        env={
            **os.environ,
            **kube_env(dev_cluster),
            "_BOOTSTRAP_TOKEN_COMPLETE": "bash_complete",
            "COMP_WORDS": "bootstrap-token --cluster dev",
            "COMP_CWORD": "2",
        },
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "plain,dev" in words and "plain,dev-localhost" in words


def test_dry_run_prints_manifests_and_applies_nothing(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    result = dev_tool("--service-account", "planned", "--clusterrole", "view", "--dry-run")
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout)]
    assert kinds == ["ServiceAccount", "ClusterRoleBinding", "Secret"]
    assert admin.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/planned")[0] == 404


def test_server_flag_bootstraps_through_kubectl_proxy(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    proxy = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(dev_cluster.kubeconfig), "proxy", "--port=0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proxy.stdout is not None
        line = proxy.stdout.readline()
        port = re.search(r":(\d+)", line)
        assert port, line
        proxy_url = f"http://127.0.0.1:{port.group(1)}"
        result = dev_tool("--server", proxy_url)
        assert result.returncode == 0, result.stderr
        values = read_env(tmp_path / "dev.env")
        assert values["APISERVER"] == dev_cluster.server
        assert admin.whoami(values["TOKEN"])[0] == 201

        # Asked otherwise: the outputs name the server the user wants to use.
        via = dev_tool("--server", proxy_url, "--emit-server", proxy_url, "--out", "via.env")
        assert via.returncode == 0, via.stderr
        assert read_env(tmp_path / "via.env")["APISERVER"] == proxy_url
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


def test_several_service_accounts_in_one_process(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    accounts = [f"svc-{i}" for i in range(6)]
    args = [arg for account in accounts for arg in ("--service-account", account)]
    result = dev_tool(*args, "--out", "{service_account}.env")
    assert result.returncode == 0, result.stderr
    assert "6 of 6 ok" in result.stderr
    for account in accounts:
        token = read_env(tmp_path / f"{account}.env")["TOKEN"]
        assert admin.whoami(token) == (201, f"system:serviceaccount:{namespace}:{account}")


def test_admin_credentials_from_an_exec_plugin(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    """Users of EKS/GKE/OIDC get their credentials from an exec plugin; the official
    client runs it. Here the plugin hands out a cluster-admin service-account token."""
    made = dev_tool(
        "--service-account", "plugin-admin", "--clusterrole", "cluster-admin", "--out", "admin.env"
    )
    assert made.returncode == 0, made.stderr
    admin_token = read_env(tmp_path / "admin.env")["TOKEN"]
    plugin = tmp_path / "credential-plugin"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": admin_token},
    }
    plugin.write_text(f"#!/bin/sh\ncat <<'JSON'\n{json.dumps(credential)}\nJSON\n")
    plugin.chmod(0o700)
    config = dev_cluster.config
    config["users"] = [
        {
            "name": "dev-admin",
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": str(plugin),
                    "interactiveMode": "Never",
                }
            },
        }
    ]
    kubeconfig = tmp_path / "exec.yaml"
    kubeconfig.write_text(json.dumps(config))
    result = run_tool(
        "--cluster",
        "dev",
        "-n",
        namespace,
        "--service-account",
        "via-exec",
        env={"KUBECONFIG": str(kubeconfig)},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    token = read_env(tmp_path / "via-exec@dev.env")["TOKEN"]
    assert admin.whoami(token) == (201, f"system:serviceaccount:{namespace}:via-exec")

    broken = plugin.with_name("broken-plugin")
    broken.write_text("#!/bin/sh\necho 'plugin: not logged in' >&2\nexit 1\n")
    broken.chmod(0o700)
    config["users"][0]["user"]["exec"]["command"] = str(broken)
    kubeconfig.write_text(json.dumps(config))
    failed = run_tool(
        "--cluster", "dev", "-n", namespace, env={"KUBECONFIG": str(kubeconfig)}, cwd=tmp_path
    )
    assert failed.returncode == 3
    assert len(failed.error_lines) == 1 and "exec plugin" in failed.stderr
