"""Connections and credentials at their limits: hostile or absent servers, exec
plugins that hang or fail, bombs and malformed URLs, plain http, impersonation,
the context's namespace. (The differential comparison with kubectl lives in
tests/conformance/.)"""

from __future__ import annotations

import base64
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.test_faults import read_token
from tests.conftest import Admin, DevCluster, run_tool

ENV_NO_PROXY = {"HTTPS_PROXY": "", "https_proxy": "", "HTTP_PROXY": "", "http_proxy": ""}


def write_config(dev_cluster: DevCluster, path: Path, *, cluster: Any = None, **user: Any) -> Path:
    """The dev kubeconfig with cluster `dev` updated by `cluster` and the admin user by `user`."""
    config = dev_cluster.config
    config["clusters"] = [c for c in config["clusters"] if c["name"] == "dev"]
    config["clusters"][0]["cluster"].update(cluster or {})
    config["contexts"] = [c for c in config["contexts"] if c["name"] == "dev-admin"]
    admin_user = next(u for u in config["users"] if u["name"] == "dev-admin")
    admin_user["user"] = {k: v for k, v in admin_user["user"].items() if v is not None}
    admin_user["user"].update(user)
    admin_user["user"] = {k: v for k, v in admin_user["user"].items() if v is not None}
    config["users"] = [admin_user]
    path.write_text(json.dumps(config))
    return path


def tool(config: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    return run_tool(
        "--kubeconfig",
        str(config),
        "--cluster",
        "dev",
        *args,
        cwd=cwd,
        env={**ENV_NO_PROXY, **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a server that trickles ------------------------------------------------------------


class Trickler:
    """Answers every connection with `head`, then one byte every 0.5 s, forever."""

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(self.head)
            while not self.stop.is_set():
                conn.sendall(b"x")
                time.sleep(0.5)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.mark.parametrize(
    "head",
    [b"HTTP/1.1 200 OK\r\nX-Slow: ", b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{"],
    ids=["headers", "body"],
)
def test_trickling_server_is_cut_off_at_the_timeout(
    dev_cluster: DevCluster, tmp_path: Path, head: bytes
) -> None:
    server = Trickler(head)
    try:
        config = write_config(
            dev_cluster, tmp_path / "k.json", cluster={"server": f"http://127.0.0.1:{server.port}"}
        )
        started = time.monotonic()
        result = tool(config, "--timeout", "3", cwd=tmp_path)
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert result.returncode == 4, result.stderr
    assert elapsed < 5.0, f"the tool outlived --timeout 3 by far: {elapsed:.1f} s"
    assert len(result.error_lines) == 1 and "no response" in result.error_lines[0]
    assert "--timeout (3 s)" in result.error_lines[0]


# --- servers never reached ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "reason"),
    [
        ("https://127.0.0.1:{port}", "connection refused"),
        ("https://no-such-host.invalid:6443", "host name does not resolve"),
    ],
    ids=["refused", "dns"],
)
def test_server_never_reached_fails_within_the_grace(
    dev_cluster: DevCluster, tmp_path: Path, server: str, reason: str
) -> None:
    config = write_config(
        dev_cluster, tmp_path / "k.json", cluster={"server": server.format(port=free_port())}
    )
    started = time.monotonic()
    result = tool(config, "--timeout", "60", cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert result.returncode == 4, result.stderr
    assert 4.5 < elapsed < 9.0, f"expected to give up after the 5 s grace, took {elapsed:.1f} s"
    assert len(result.error_lines) == 1
    assert reason in result.error_lines[0]
    assert "gave up after 5 s" in result.error_lines[0]
    assert result.stderr.count("retrying") <= 1, "one line per retry is noise"


# --- kubeconfig input that kubectl refuses ----------------------------------------------


def test_yaml_bomb_is_refused_fast(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    result = run_tool("--kubeconfig", str(bomb), "--cluster", "dev", cwd=tmp_path)
    assert time.monotonic() - started < 5
    assert result.returncode == 3
    assert len(result.error_lines) == 1 and "excessive aliasing" in result.error_lines[0]


@pytest.mark.parametrize("server", ["https://h:99999", "https://h:abc", "https://[::1"])
def test_malformed_server_url_is_a_config_error(
    dev_cluster: DevCluster, tmp_path: Path, server: str
) -> None:
    config = write_config(dev_cluster, tmp_path / "k.json", cluster={"server": server})
    result = tool(config, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert result.error_lines == [result.error_lines[0]] and result.error_lines[0].startswith(
        f"error: cluster 'dev': server '{server}' is not a valid URL"
    )
    flagged = run_tool(
        "--cluster",
        "dev",
        "--server",
        server,
        cwd=tmp_path,
        env={"KUBECONFIG": str(dev_cluster.kubeconfig)},
    )
    assert flagged.returncode == 2, flagged.stderr
    assert flagged.error_lines[0].startswith(f"error: --server '{server}' is not a valid URL")


@pytest.mark.parametrize(
    "user",
    [{"token": "abc\ndef"}, {"tokenFile": "token.txt"}],
    ids=["token", "tokenFile"],
)
def test_token_with_a_line_break_is_a_config_error(
    dev_cluster: DevCluster, tmp_path: Path, user: dict[str, str]
) -> None:
    (tmp_path / "token.txt").write_text("\n  abc\ndef  \n")
    user = {"client-certificate-data": None, "client-key-data": None, **user}
    config = write_config(dev_cluster, tmp_path / "k.json", **user)
    result = tool(config, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert len(result.error_lines) == 1 and "contains a line break" in result.error_lines[0]


# --- exec plugins ----------------------------------------------------------------------------


def plugin(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def exec_user(command: str, **extra: Any) -> dict[str, Any]:
    return {
        "client-certificate-data": None,
        "client-key-data": None,
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": command,
            "interactiveMode": "Never",
            **extra,
        },
    }


def test_hanging_exec_plugin_is_killed_at_the_deadline(
    dev_cluster: DevCluster, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    plugin(tmp_path / "hang", f"sleep 300 &\necho $$ $! > {pids}\nwait\n")
    config = write_config(dev_cluster, tmp_path / "k.json", **exec_user(str(tmp_path / "hang")))
    started = time.monotonic()
    result = tool(config, "--timeout", "2", cwd=tmp_path)
    assert time.monotonic() - started < 5
    assert result.returncode == 3, result.stderr
    assert len(result.error_lines) == 1
    assert "did not finish before --timeout; killed it" in result.error_lines[0]
    time.sleep(0.2)
    for pid in pids.read_text().split():
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        ), f"plugin process {pid} still alive"


def test_exec_plugin_failure_is_one_error_line_with_its_reason(
    dev_cluster: DevCluster, tmp_path: Path
) -> None:
    plugin(
        tmp_path / "fail", "echo 'starting' >&2\necho 'boom: no session, run login' >&2\nexit 7\n"
    )
    config = write_config(dev_cluster, tmp_path / "k.json", **exec_user(str(tmp_path / "fail")))
    result = tool(config, cwd=tmp_path)
    assert result.returncode == 3
    assert result.error_lines == [
        "error: user 'dev-admin': getting credentials from its exec plugin: exec: executable "
        f"{tmp_path / 'fail'} failed with exit code 7: boom: no session, run login"
    ]
    assert "ERROR:root" not in result.stderr and "Traceback" not in result.stderr


def test_missing_exec_command_shows_the_install_hint(
    dev_cluster: DevCluster, tmp_path: Path
) -> None:
    user = exec_user("no-such-plugin-xyz", installHint="install it with: brew install xyz")
    config = write_config(dev_cluster, tmp_path / "k.json", **user)
    result = tool(config, cwd=tmp_path)
    assert result.returncode == 3
    assert result.error_lines[0] == (
        "error: user 'dev-admin': getting credentials from its exec plugin: exec: executable no-such-plugin-xyz not found"
    )
    assert "install it with: brew install xyz" in result.stderr


def test_exec_plugin_client_certificate_and_cluster_info(
    dev_cluster: DevCluster, tmp_path: Path
) -> None:
    """A relative command is found next to the kubeconfig; the plugin gets the cluster
    info and returns the admin's client certificate, which the tool then uses."""
    pki = dev_cluster.state / "pki"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": (pki / "admin.crt").read_text(),
            "clientKeyData": (pki / "admin.key").read_text(),
        },
    }
    (tmp_path / "conf" / "bin").mkdir(parents=True)
    (tmp_path / "conf" / "credential.json").write_text(json.dumps(credential))
    plugin(
        tmp_path / "conf" / "bin" / "plugin",
        f'printf %s "$KUBERNETES_EXEC_INFO" > {tmp_path}/info.json\n'
        f'echo "arg=$1 env=$MY_VAR" > {tmp_path}/args\ncat {tmp_path}/conf/credential.json\n',
    )
    user = exec_user(
        "./bin/plugin",
        args=["one"],
        env=[{"name": "MY_VAR", "value": "two"}],
        provideClusterInfo=True,
    )
    extension = [{"name": "client.authentication.k8s.io/exec", "extension": {"audience": "x"}}]
    config = write_config(
        dev_cluster, tmp_path / "conf" / "k.json", cluster={"extensions": extension}, **user
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = tool(config, "--out", str(tmp_path / "dev.env"), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["apiVersion"] == "client.authentication.k8s.io/v1"
    assert info["kind"] == "ExecCredential"
    assert info["spec"]["interactive"] is False
    assert info["spec"]["cluster"]["server"] == dev_cluster.server
    assert info["spec"]["cluster"]["config"] == {"audience": "x"}
    ca = base64.b64decode(info["spec"]["cluster"]["certificate-authority-data"])
    assert ca == dev_cluster.ca_file.read_bytes()
    assert (tmp_path / "args").read_text() == "arg=one env=two\n"
    assert read_token(tmp_path / "dev.env")


# --- plain http ---------------------------------------------------------------------------


@pytest.fixture
def http_forwarder(dev_cluster: DevCluster) -> Iterator[str]:
    """Plain http in front of the dev API server: requests with an Authorization header
    are forwarded with it, others with the admin's client certificate."""
    pki = dev_cluster.state / "pki"
    upstream = dev_cluster.server.removeprefix("https://")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _forward(self) -> None:
            import http.client

            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
            if "Authorization" not in self.headers:
                context.load_cert_chain(pki / "admin.crt", pki / "admin.key")
            host, port = upstream.rsplit(":", 1)
            conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
            }
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            self.send_response(response.status)
            self.send_header(
                "Content-Type", response.getheader("Content-Type") or "application/json"
            )
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_plain_http_server_works_with_a_warning_for_each_credential(
    dev_cluster: DevCluster, http_forwarder: str, namespace: str, tmp_path: Path
) -> None:
    config = write_config(dev_cluster, tmp_path / "k.json", cluster={"server": http_forwarder})
    result = tool(config, "-n", namespace, "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"bootstrap-token: warning: {http_forwarder} is plain http: the bootstrap credentials "
        "travel unencrypted; anyone on the network path can read them",
        f"bootstrap-token: warning: {http_forwarder} is plain http: the new token travels "
        "unencrypted; anyone on the network path can read it",
    ]
    assert "APISERVER='" + http_forwarder + "'" in (tmp_path / "dev.env").read_text()


# --- impersonation and the context's namespace --------------------------------------------


def test_impersonation_is_sent_with_the_bootstrap_requests(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    nobody = write_config(dev_cluster, tmp_path / "a.json", **{"as": "jane"})
    refused = tool(nobody, "-n", namespace, cwd=tmp_path)
    assert refused.returncode == 5, refused.stderr
    assert 'User "jane" cannot' in refused.error_lines[0]
    masters = write_config(
        dev_cluster,
        tmp_path / "b.json",
        **{"as": "jane", "as-groups": ["system:masters", "devs"], "as-user-extra": {"team": ["a"]}},
    )
    result = tool(masters, "-n", namespace, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # The new token is verified as itself, without impersonation.
    assert admin.whoami(read_token(tmp_path / "dev.env")) == (
        201,
        f"system:serviceaccount:{namespace}:default",
    )


def test_the_contexts_namespace_applies_without_n(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    config = dev_cluster.config
    for context in config["contexts"]:
        context["context"]["namespace"] = namespace
    path = tmp_path / "k.json"
    path.write_text(json.dumps(config))
    result = tool(path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"NAMESPACE='{namespace}'" in (tmp_path / "dev.env").read_text()
    assert admin.whoami(read_token(tmp_path / "dev.env"))[1] == (
        f"system:serviceaccount:{namespace}:default"
    )
    explicit = tool(path, "-n", "default", "--out", "d.env", cwd=tmp_path)
    assert explicit.returncode == 0, explicit.stderr
    assert "NAMESPACE='default'" in (tmp_path / "d.env").read_text()


def test_environment_proxy_is_skipped_for_loopback(dev_cluster: DevCluster, tmp_path: Path) -> None:
    """Go never proxies localhost or loopback from the environment: a dead proxy in
    HTTPS_PROXY must not matter for the dev cluster on 127.0.0.1."""
    dead = f"http://127.0.0.1:{free_port()}"
    result = tool(dev_cluster.kubeconfig, env={"HTTPS_PROXY": dead, "NO_PROXY": ""}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("shell", ["sh", "bash", "zsh"])
def test_the_env_files_own_curl_command_works_with_tls_server_name(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path, shell: str
) -> None:
    """The server is addressed by IP and its certificate checked for the name
    `kubernetes`: the command in the env file's comment must work as written."""
    config = write_config(
        dev_cluster, tmp_path / "k.json", cluster={"tls-server-name": "kubernetes"}
    )
    result = tool(config, "-n", namespace, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    env_file = tmp_path / "dev.env"
    command = env_file.read_text().splitlines()[2].removeprefix("#   ")
    assert command == (
        'curl --connect-to "$CURL_CONNECT_TO" "$CURL_APISERVER/api" '
        '-H "Authorization: Bearer $TOKEN" --cacert "$CACERT"'
    )
    read_token(env_file)
    process = subprocess.run(
        [shell, "-c", f'. "{env_file}" && {command} -sS -o /dev/null -w "%{{http_code}}"'],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ["PATH"]},
    )
    assert process.stdout == "200", process.stderr


def test_interactive_plugin_reads_our_terminal(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    """interactiveMode Always: the plugin gets the terminal on stdin (here a pty the
    test types an admin token into) and KUBERNETES_EXEC_INFO says interactive; without
    a terminal the tool refuses as kubectl does."""
    import pty

    made = tool(
        dev_cluster.kubeconfig,
        "-n", namespace, "--service-account", "typed-admin", "--clusterrole", "cluster-admin",
        "--out", str(tmp_path / "admin.env"), cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    admin_token = read_token(tmp_path / "admin.env")
    script = plugin(
        tmp_path / "ask",
        f'printf %s "$KUBERNETES_EXEC_INFO" > {tmp_path}/info.json\n'
        "printf 'token: ' >&2\nread -r token\n"
        'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
        '"status":{"token":"%s"}}\' "$token"\n',
    )
    user = exec_user(str(script), interactiveMode="Always")
    config = write_config(dev_cluster, tmp_path / "k.json", **user)
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "bootstrap", "--kubeconfig", str(config), "--cluster", "dev",
             "-n", namespace, "--service-account", "typed", "--out", str(tmp_path / "dev.env")],
            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
            env={**os.environ, **ENV_NO_PROXY},
        )  # fmt: skip
        os.write(master, admin_token.encode() + b"\n")
        _, stderr = process.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    assert process.returncode == 0, stderr.decode()
    assert json.loads((tmp_path / "info.json").read_text())["spec"]["interactive"] is True
    assert read_token(tmp_path / "dev.env")

    refused = subprocess.run(
        [sys.executable, "-m", "bootstrap", "--kubeconfig", str(config), "--cluster", "dev"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**os.environ, **ENV_NO_PROXY},
    )  # fmt: skip
    assert refused.returncode == 3
    assert refused.stderr.splitlines()[-1] == (
        "error: user 'dev-admin': getting credentials from its exec plugin: exec plugin cannot "
        "support interactive mode: standard input is not a terminal"
    )
