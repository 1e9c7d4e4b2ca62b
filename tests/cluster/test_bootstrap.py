"""bootstrap-token end to end against the real dev cluster."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from pathlib import Path

import yaml

from tests.conftest import Admin, DevCluster, DevTool, remember_token, run_tool


def env_of(kubeconfig: Path) -> dict[str, str]:
    return {"KUBECONFIG": str(kubeconfig)}


def source_env(
    env_file: Path, script: str, shell: str = "bash"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shell, "-c", f'. "{env_file}" && {script}'],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ["PATH"]},
    )


def token_from_env_file(env_file: Path) -> str:
    out = source_env(env_file, 'printf %s "$TOKEN"').stdout
    remember_token(out)
    return out


def test_env_file_makes_curl_work_without_insecure(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    result = dev_tool("--service-account", "reader")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    env_file = tmp_path / "reader@dev.env"
    token = token_from_env_file(env_file)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert f"system:serviceaccount:{namespace}:reader" in result.stderr

    for shell in ("sh", "bash"):
        curl = source_env(
            env_file,
            'curl -sS --fail "$APISERVER/apis/authentication.k8s.io/v1/selfsubjectreviews" '
            '-H "Authorization: Bearer $TOKEN" --cacert "$CACERT" -H "Content-Type: application/json" '
            '-d \'{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}\'',
            shell,
        )
        assert curl.returncode == 0, curl.stderr
        review = json.loads(curl.stdout)
        assert (
            review["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:reader"
        )
    api = source_env(
        env_file,
        'curl -sS --fail "$APISERVER/api" -H "Authorization: Bearer $TOKEN" --cacert "$CACERT"',
    )
    assert api.returncode == 0 and '"APIVersions"' in api.stdout, api.stderr
    exported = source_env(env_file, "env")
    for name in ("APISERVER", "TOKEN", "CACERT", "NAMESPACE"):
        assert f"{name}=" in exported.stdout
    remember_token(token)
    assert admin.whoami(token) == (201, f"system:serviceaccount:{namespace}:reader")


def test_second_run_is_idempotent(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    args = ("--cluster", "dev", "-n", namespace, "--out", "a.env")
    first = run_tool(*args, env=env_of(dev_cluster.kubeconfig), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    token1 = token_from_env_file(tmp_path / "a.env")
    second = run_tool(*args, "-v", env=env_of(dev_cluster.kubeconfig), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    token2 = token_from_env_file(tmp_path / "a.env")
    assert token1 == token2
    assert len(admin.secrets_of(namespace, "default")) == 1
    assert "exists, reusing it" in second.stderr


def test_kubeconfig_output_works_with_kubectl_and_the_python_client(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    out = tmp_path / "ci.kubeconfig"
    result = run_tool(
        "--cluster",
        "dev",
        "-n",
        namespace,
        "--service-account",
        "ci",
        "--format",
        "kubeconfig",
        "--out",
        str(out),
        env=env_of(dev_cluster.kubeconfig),
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    config = yaml.safe_load(out.read_text())
    remember_token(config["users"][0]["user"]["token"])
    assert config["current-context"] == f"{namespace}/ci@dev"
    assert "certificate-authority-data" in config["clusters"][0]["cluster"]

    whoami = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(out),
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout == f"system:serviceaccount:{namespace}:ci"

    from kubernetes import client
    from kubernetes import config as kconfig

    api_client = kconfig.new_client_from_config(config_file=str(out))
    versions = client.CoreApi(api_client).get_api_versions()
    assert "v1" in versions.versions


def test_json_to_stdout_holds_the_fields_and_nothing_else(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    result = run_tool(
        "--cluster",
        "dev",
        "-n",
        namespace,
        "--format",
        "json",
        "--out",
        "-",
        env=env_of(dev_cluster.kubeconfig),
        cwd=tmp_path,
        stdout_may_hold_token=True,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    remember_token(document["token"])
    assert document["identity"] == f"system:serviceaccount:{namespace}:default"
    assert document["apiserver"] == dev_cluster.server
    # json carries the CA itself: no CA file is written for it.
    assert document["cacert_path"] is None
    assert document["ca_pem"] == dev_cluster.ca_file.read_text()
    assert list(tmp_path.iterdir()) == []
    assert admin.whoami(document["token"])[0] == 201


def test_hostname_cluster_and_ca_given_as_file(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    """The dev-localhost cluster names the server by host name; the CA comes as a
    file path in a second KUBECONFIG file, and must not be lost in the output."""
    base = dev_cluster.config
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(
        base64.b64decode(base["clusters"][1]["cluster"]["certificate-authority-data"])
    )
    override = {
        "clusters": [
            {
                "name": "edge",
                "cluster": {
                    "server": base["clusters"][1]["cluster"]["server"],
                    "certificate-authority": "ca.pem",
                },
            }
        ],
        "contexts": [{"name": "edge-admin", "context": {"cluster": "edge", "user": "dev-admin"}}],
    }
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump(override))
    result = run_tool(
        "--cluster",
        "edge",
        "-n",
        namespace,
        "--format",
        "kubeconfig",
        "--out",
        "edge.kubeconfig",
        env={"KUBECONFIG": f"{extra}:{dev_cluster.kubeconfig}"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((tmp_path / "edge.kubeconfig").read_text())
    remember_token(config["users"][0]["user"]["token"])
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"].startswith("https://localhost:")
    assert base64.b64decode(cluster["certificate-authority-data"]) == ca_file.read_bytes()


def test_merge_into_existing_kubeconfig_keeps_every_entry(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    out = tmp_path / "config"
    existing = dev_cluster.config
    out.write_text(json.dumps(existing))
    result = run_tool(
        "--cluster",
        "dev",
        "-n",
        namespace,
        "--format",
        "kubeconfig",
        "--out",
        str(out),
        env=env_of(dev_cluster.kubeconfig),
    )
    assert result.returncode == 0, result.stderr
    merged = yaml.safe_load(out.read_text())
    for section in ("clusters", "users", "contexts"):
        names = {e["name"] for e in merged[section]}
        assert {e["name"] for e in existing[section]} <= names
    assert merged["current-context"] == "dev-admin"
    ours = next(u for u in merged["users"] if u["name"] == f"{namespace}/default@dev")
    remember_token(ours["user"]["token"])
    assert json.loads((tmp_path / "config.bak").read_text()) == existing
    whoami = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(out),
            "--context",
            f"{namespace}/default@dev",
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert whoami.stdout == f"system:serviceaccount:{namespace}:default", whoami.stderr


def test_existing_secret_of_another_kind_is_left_alone(
    dev_tool: DevTool, dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    status, _ = admin.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        {"metadata": {"name": "default-token"}, "stringData": {"password": "x"}},
    )
    assert status == 201
    result = dev_tool()
    assert result.returncode == 6
    assert len(result.error_lines) == 1
    assert "not a service-account token" in result.stderr
    assert not (tmp_path / "dev.env").exists()
    status, body = admin.request("GET", f"/api/v1/namespaces/{namespace}/secrets/default-token")
    assert body["type"] == "Opaque"


def test_missing_namespace_says_how_to_fix_it(dev_cluster: DevCluster, tmp_path: Path) -> None:
    result = run_tool(
        "--cluster", "dev", "-n", "no-such-ns-x1", env=env_of(dev_cluster.kubeconfig), cwd=tmp_path
    )
    assert result.returncode == 4
    assert result.error_lines == [
        "error: namespace 'no-such-ns-x1' does not exist; create it "
        "(kubectl create namespace no-such-ns-x1) or pick another --namespace"
    ]


def test_unknown_cluster_and_ambiguous_context(dev_cluster: DevCluster, tmp_path: Path) -> None:
    unknown = run_tool("--cluster", "nope", env=env_of(dev_cluster.kubeconfig), cwd=tmp_path)
    assert unknown.returncode == 3
    assert unknown.error_lines == [
        "error: unknown cluster 'nope'; known clusters: dev, dev-localhost"
    ]

    config = dev_cluster.config
    config["contexts"].append(
        {"name": "other", "context": {"cluster": "dev-localhost", "user": "dev-admin"}}
    )
    ambiguous_file = tmp_path / "two.yaml"
    ambiguous_file.write_text(json.dumps(config))
    ambiguous = run_tool(
        "--cluster", "dev-localhost", "--kubeconfig", str(ambiguous_file), cwd=tmp_path
    )
    assert ambiguous.returncode == 3
    assert "dev-localhost-admin, other" in ambiguous.stderr and "--context" in ambiguous.stderr


def test_malformed_kubeconfig_is_one_clean_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusters: [\n  - name: x\n    cluster: {server: }\n  oops")
    result = run_tool("--cluster", "x", "--kubeconfig", str(bad), cwd=tmp_path)
    assert result.returncode == 3
    assert len(result.error_lines) == 1 and "not valid YAML at line" in result.stderr


def test_debug_shows_timings_but_never_the_token(
    dev_tool: DevTool, dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    result = dev_tool("--debug")
    assert result.returncode == 0, result.stderr
    token = token_from_env_file(tmp_path / "dev.env")
    assert token not in result.stderr
    assert "timings:" in result.stderr and "POST /api/v1/namespaces" in result.stderr
