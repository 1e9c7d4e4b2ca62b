"""Delivery where the token is consumed, against the real dev cluster: Argo CD cluster
Secrets and kubeconfig Secrets, written to files or applied (--apply-to) into a
management cluster, here the dev cluster's second context `dev-localhost-admin`."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import stat
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Admin, DevCluster, DevTool, remember_token, run_tool

MGMT_CONTEXT = "dev-localhost-admin"


@pytest.fixture
def mgmt(admin: Admin) -> Iterator[str]:
    """The management side's namespace (Argo CD's `argocd`, Flux's `flux-system`)."""
    name = f"t-mgmt-{uuid.uuid4().hex[:6]}"
    status, body = admin.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert status == 201, body
    yield name
    admin.request("DELETE", f"/api/v1/namespaces/{name}")


def kube_env(dev_cluster: DevCluster) -> dict[str, str]:
    return {"KUBECONFIG": str(dev_cluster.kubeconfig)}


def get_secret(admin: Admin, namespace: str, name: str) -> dict[str, Any]:
    status, body = admin.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
    assert status == 200, body
    return dict(body)


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def curl_whoami(server: str, ca_file: Path, token: str) -> tuple[int, str | None]:
    """A SelfSubjectReview sent by curl, TLS verified against `ca_file`."""
    process = subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(ca_file),
            "-H",
            f"Authorization: Bearer {token}",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}',
            "-w",
            "\n%{http_code}",
            f"{server}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    body, _, code = process.stdout.rpartition("\n")
    if code != "201":
        return int(code), None
    return 201, json.loads(body)["status"]["userInfo"]["username"]


def eventually_unauthorized(admin: Admin, token: str, seconds: float = 25) -> int:
    """kube-apiserver caches a successful token authentication for 10 s."""
    deadline = time.monotonic() + seconds
    status = admin.whoami(token)[0]
    while status != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
        status = admin.whoami(token)[0]
    return status


def service_account_exists(admin: Admin, namespace: str, name: str) -> bool:
    status, _ = admin.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")
    return status == 200


def argocd_token(secret: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    config = json.loads(decoded(secret)["config"])
    token = config["bearerToken"]
    remember_token(token)
    return token, config


# --- Argo CD: register, then rotate, in one command each (docs/delivery.md) ----------------


def test_argocd_apply_to_then_rotate(
    dev_tool: DevTool,
    dev_cluster: DevCluster,
    admin: Admin,
    namespace: str,
    mgmt: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """docs/delivery.md's example: register, then rotate, one command each (here the
    ServiceAccount's namespace and Argo CD's are fresh ones instead of kube-system/argocd)."""
    account = ("--service-account", "argocd-manager", "--clusterrole", "cluster-admin")
    flags = (*account, "--format", "argocd", "--apply-to", f"{MGMT_CONTEXT}/{mgmt}")
    first = dev_tool(*flags, "-v")
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    assert f"applied Secret {mgmt}/cluster-dev (context '{MGMT_CONTEXT}')" in first.stderr
    assert os.listdir(tmp_path) == []  # the token never touched the disk

    secret = get_secret(admin, mgmt, "cluster-dev")
    assert secret["metadata"]["labels"] == {
        "argocd.argoproj.io/secret-type": "cluster",
        "app.kubernetes.io/managed-by": "bootstrap-token",
    }
    assert secret["type"] == "Opaque"
    values = decoded(secret)
    assert set(values) == {"name", "server", "config"}
    assert values["name"] == "dev"
    assert values["server"] == dev_cluster.server
    token1, config = argocd_token(secret)
    assert set(config) == {"bearerToken", "tlsClientConfig"}
    assert config["tlsClientConfig"]["insecure"] is False
    assert set(config["tlsClientConfig"]) == {"caData", "insecure"}

    # What Argo CD would do with it: the CA from caData verifies the server, the token
    # authenticates as the ServiceAccount.
    ca_file = tmp_path_factory.mktemp("argocd") / "ca.crt"
    ca_file.write_bytes(base64.b64decode(config["tlsClientConfig"]["caData"]))
    identity = f"system:serviceaccount:{namespace}:argocd-manager"
    assert curl_whoami(values["server"], ca_file, token1) == (201, identity)

    second = dev_tool("rotate", *flags)
    assert second.returncode == 0, second.stderr
    assert second.stdout == ""
    assert os.listdir(tmp_path) == []

    rotated = get_secret(admin, mgmt, "cluster-dev")
    assert rotated["metadata"]["uid"] == secret["metadata"]["uid"]  # updated in place
    assert rotated["metadata"]["resourceVersion"] != secret["metadata"]["resourceVersion"]
    managers = {(m["manager"], m["operation"]) for m in rotated["metadata"]["managedFields"]}
    assert managers == {("bootstrap-token", "Apply")}
    token2, _ = argocd_token(rotated)
    assert token2 != token1
    assert curl_whoami(values["server"], ca_file, token2) == (201, identity)
    assert eventually_unauthorized(admin, token1) == 401

    # Unregister: the token dies with its Secret, the binding of cluster-admin goes too.
    revoked = dev_tool("revoke", *account[:2], "--all")
    assert revoked.returncode == 0, revoked.stderr
    assert eventually_unauthorized(admin, token2) == 401


def test_kubeconfig_secret_apply_to(
    dev_tool: DevTool,
    admin: Admin,
    namespace: str,
    mgmt: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    result = dev_tool(
        "--service-account",
        "flux",
        "--format",
        "kubeconfig-secret",
        "--apply-to",
        f"{MGMT_CONTEXT}/{mgmt}",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert os.listdir(tmp_path) == []

    secret = get_secret(admin, mgmt, "dev-kubeconfig")
    assert secret["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "bootstrap-token"}
    values = decoded(secret)
    assert set(values) == {"value"}
    remember_token(yaml.safe_load(values["value"])["users"][0]["user"]["token"])
    kubeconfig = tmp_path_factory.mktemp("flux") / "kubeconfig"
    kubeconfig.write_text(values["value"])
    whoami = subprocess.run(
        [
            *("kubectl", "--kubeconfig", str(kubeconfig), "auth", "whoami"),
            *("-o", "jsonpath={.status.userInfo.username}"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout == f"system:serviceaccount:{namespace}:flux"


# --- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output_format", "file_name"),
    [("argocd", "dev.argocd.yaml"), ("kubeconfig-secret", "dev.kubeconfig-secret.yaml")],
)
def test_file_output(
    dev_tool: DevTool,
    dev_cluster: DevCluster,
    admin: Admin,
    namespace: str,
    mgmt: str,
    tmp_path: Path,
    output_format: str,
    file_name: str,
) -> None:
    result = dev_tool("--format", output_format)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert os.listdir(tmp_path) == [file_name]  # no CA file: the manifest embeds it
    path = tmp_path / file_name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = yaml.safe_load(path.read_text())
    token = admin.secret_token(namespace, "default-token")
    assert token is not None
    remember_token(token)
    assert token in path.read_text()

    # `check` reads the manifest back and tries its credentials; --renew-before keeps it.
    checked = run_tool("check", file_name, env=kube_env(dev_cluster), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"{file_name}: valid\n")
    assert f"  format:     {output_format}\n" in checked.stdout
    assert f"  identity:   system:serviceaccount:{namespace}:default\n" in checked.stdout
    before = path.read_bytes()
    kept = dev_tool("--format", output_format, "--renew-before", "1h")
    assert kept.returncode == 0, kept.stderr
    assert f"{path} is still valid" in kept.stderr
    assert path.read_bytes() == before

    if output_format == "argocd":
        assert document["metadata"]["namespace"] == "argocd"
        assert document["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "cluster"
        return
    # The file is a manifest kubectl applies as is, into the namespace one names.
    applied = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(dev_cluster.kubeconfig),
            "apply",
            "-n",
            mgmt,
            "-f",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == "secret/dev-kubeconfig created\n"
    value = decoded(get_secret(admin, mgmt, "dev-kubeconfig"))["value"]
    assert yaml.safe_load(value)["users"][0]["user"]["token"] == token


def test_stdout(dev_tool: DevTool, namespace: str) -> None:
    result = dev_tool("--format", "argocd", "--out", "-", stdout_may_hold_token=True)
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    assert document["metadata"]["name"] == "cluster-dev"
    remember_token(json.loads(document["stringData"]["config"])["bearerToken"])
    assert json.loads(document["stringData"]["config"])["bearerToken"] not in result.stderr


# --- refusals, all before the target cluster is asked for anything ----------------------------


def weak_kubeconfig(dev_cluster: DevCluster, admin: Admin, mgmt: str, path: Path) -> Path:
    """The dev kubeconfig plus a context `weak` whose user may not touch Secrets."""
    status, body = admin.request(
        "POST", f"/api/v1/namespaces/{mgmt}/serviceaccounts", {"metadata": {"name": "weak"}}
    )
    assert status == 201, body
    status, body = admin.request(
        "POST",
        f"/api/v1/namespaces/{mgmt}/serviceaccounts/weak/token",
        {"spec": {"expirationSeconds": 600}},
    )
    assert status == 201, body
    token = body["status"]["token"]
    remember_token(token)
    config = dev_cluster.config
    config["users"].append({"name": "weak", "user": {"token": token}})
    config["contexts"].append(
        {"name": "weak", "context": {"cluster": "dev-localhost", "user": "weak"}}
    )
    path.write_text(json.dumps(config))
    return path


def test_apply_to_refusals_come_before_the_target(
    dev_tool: DevTool,
    dev_cluster: DevCluster,
    admin: Admin,
    namespace: str,
    mgmt: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    flags = ("--service-account", "never", "--format", "argocd", "--apply-to")

    unknown = dev_tool(*flags, f"no-such-context/{mgmt}")
    assert unknown.returncode == 3
    assert unknown.error_lines == [
        "error: --apply-to: unknown context 'no-such-context'; the kubeconfig's contexts: "
        "dev-admin, dev-localhost-admin"
    ]

    missing = dev_tool(*flags, f"{MGMT_CONTEXT}/no-such-namespace")
    assert missing.returncode == 4
    assert missing.error_lines == [
        "error: --apply-to: namespace 'no-such-namespace' does not exist in the cluster of "
        "context 'dev-localhost-admin' (namespaces \"no-such-namespace\" not found); "
        "create it or name another"
    ]

    kubeconfig = weak_kubeconfig(
        dev_cluster, admin, mgmt, tmp_path_factory.mktemp("weak") / "config"
    )
    forbidden = dev_tool(*flags, f"weak/{mgmt}", env={"KUBECONFIG": str(kubeconfig)})
    assert forbidden.returncode == 5
    (line,) = forbidden.error_lines
    assert line.startswith(
        "error: --apply-to: forbidden: user 'weak' (context 'weak') may not get secrets in "
        f"namespace {mgmt} ("
    )
    assert line.endswith(
        f"; the context's user needs get, create and patch on secrets in namespace {mgmt}"
    )

    foreign = {"metadata": {"name": "cluster-dev"}, "stringData": {"keep": "me"}}
    status, body = admin.request("POST", f"/api/v1/namespaces/{mgmt}/secrets", foreign)
    assert status == 201, body
    taken = dev_tool(*flags, f"{MGMT_CONTEXT}/{mgmt}")
    assert taken.returncode == 6
    assert taken.error_lines == [
        f"error: --apply-to: Secret {mgmt}/cluster-dev (context 'dev-localhost-admin') exists "
        "and was not made by bootstrap-token (no label "
        "app.kubernetes.io/managed-by=bootstrap-token); it is left alone: choose another "
        "name with --secret-name, or add that label to hand it over"
    ]
    assert decoded(get_secret(admin, mgmt, "cluster-dev")) == {"keep": "me"}

    # None of these touched the target: no ServiceAccount, no token Secret, no file.
    assert not service_account_exists(admin, namespace, "never")
    assert admin.secrets_of(namespace, "never") == []
    assert os.listdir(tmp_path) == []


def test_apply_to_patch_forbidden_after_get(
    dev_cluster: DevCluster,
    admin: Admin,
    namespace: str,
    mgmt: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A user who may read Secrets but not patch them: the dry-run apply says so, first."""
    kubeconfig = weak_kubeconfig(
        dev_cluster, admin, mgmt, tmp_path_factory.mktemp("reader") / "config"
    )
    role = {
        "metadata": {"name": "secret-reader"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
    }
    binding = {
        "metadata": {"name": "weak-reads-secrets"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "secret-reader",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "weak", "namespace": mgmt}],
    }
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{mgmt}"
    assert admin.request("POST", f"{rbac}/roles", role)[0] == 201
    assert admin.request("POST", f"{rbac}/rolebindings", binding)[0] == 201
    deadline = time.monotonic() + 5
    while True:  # the RBAC authorizer's cache sees the binding a moment later
        result = run_tool(
            "--cluster", "dev", "-n", namespace, "--service-account", "never",
            "--format", "kubeconfig-secret", "--apply-to", f"weak/{mgmt}",
            env={"KUBECONFIG": str(kubeconfig)}, cwd=tmp_path,
        )  # fmt: skip
        if "may not get secrets" not in result.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert result.returncode == 5
    (line,) = result.error_lines
    assert line.startswith(
        "error: --apply-to: forbidden: user 'weak' (context 'weak') may not apply secrets in "
        f"namespace {mgmt} (server-side apply) ("
    )
    assert line.endswith(
        f"; the context's user needs get, create and patch on secrets in namespace {mgmt} "
        "(e.g. a Role with those verbs, bound to it)"
    )
    assert not service_account_exists(admin, namespace, "never")
    assert os.listdir(tmp_path) == []


def test_argocd_carries_tls_server_name(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    """A cluster reached by IP with `tls-server-name: localhost`: Argo CD gets
    `serverName`, and with it (SNI and the name checked) caData verifies the server."""
    config = dev_cluster.config
    cluster = dict(config["clusters"][0]["cluster"], **{"tls-server-name": "localhost"})
    config["clusters"].append({"name": "dev-sni", "cluster": cluster})
    config["contexts"].append(
        {"name": "dev-sni-admin", "context": {"cluster": "dev-sni", "user": "dev-admin"}}
    )
    kubeconfig = tmp_path / "sni.kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    result = run_tool(
        *("--cluster", "dev-sni", "-n", namespace, "--format", "argocd", "--out", "-"),
        env={"KUBECONFIG": str(kubeconfig)},
        cwd=tmp_path,
        stdout_may_hold_token=True,
    )
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    argo = json.loads(document["stringData"]["config"])
    remember_token(argo["bearerToken"])
    tls = argo["tlsClientConfig"]
    assert tls["serverName"] == "localhost"
    assert document["stringData"]["server"].startswith("https://127.0.0.1:")

    context = ssl.create_default_context(cadata=base64.b64decode(tls["caData"]).decode("ascii"))
    url = urllib.parse.urlsplit(document["stringData"]["server"])
    raw = socket.create_connection((url.hostname, url.port), timeout=10)
    with context.wrap_socket(raw, server_hostname=tls["serverName"]) as conn:
        conn.sendall(
            b"GET /api HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            + f"Authorization: Bearer {argo['bearerToken']}\r\n\r\n".encode()
        )
        status_line = conn.recv(64).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 200 OK"
