"""Reliability: faults survived, bad input refused, nothing lost. Each scenario
runs against the real dev cluster, some through a fault-injecting proxy."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Admin, DevCluster, remember_token, run_dev_cluster, run_tool
from tests.faultproxy import FaultProxy, issue_cert
from tests.terminal import run_on_a_terminal


def read_token(env_file: Path) -> str:
    out = subprocess.run(
        ["sh", "-c", f'. "{env_file}" && printf %s "$TOKEN"'], capture_output=True, text=True
    ).stdout
    remember_token(out)
    return out


def kubeconfig_for(dev_cluster: DevCluster, server: str, path: Path, **user: Any) -> Path:
    """The dev kubeconfig, with cluster `dev` pointed at `server` and optionally another user."""
    config = dev_cluster.config
    config["clusters"] = [c for c in config["clusters"] if c["name"] == "dev"]
    config["clusters"][0]["cluster"]["server"] = server
    config["contexts"] = [c for c in config["contexts"] if c["name"] == "dev-admin"]
    if user:
        config["users"] = [{"name": "dev-admin", "user": user}]
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def proxy(
    dev_cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultProxy]:
    pki = dev_cluster.state / "pki"
    directory = tmp_path_factory.mktemp("proxy")
    cert, key = issue_cert(pki / "ca.crt", pki / "ca.key", directory)
    with FaultProxy(
        dev_cluster.server,
        pki / "ca.crt",
        cert,
        key,
        upstream_client_cert=(pki / "admin.crt", pki / "admin.key"),
    ) as running:
        yield running


@pytest.fixture
def via_proxy(dev_cluster: DevCluster, proxy: FaultProxy, tmp_path: Path) -> dict[str, str]:
    return {"KUBECONFIG": str(kubeconfig_for(dev_cluster, proxy.url, tmp_path / "proxied.yaml"))}


@pytest.fixture
def restore_cluster(dev_cluster: DevCluster) -> Iterator[None]:
    """Whatever a test stops, the next test finds everything running again."""
    yield
    run_dev_cluster("up")


def run_background(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"} | env
    return subprocess.Popen(
        [sys.executable, "-m", "bootstrap", *args],
        env=full,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    from tests.conftest import TRANSCRIPT

    TRANSCRIPT.outputs.append(("stderr of a background run", err))
    TRANSCRIPT.outputs.append(("stdout of a background run", out))
    return process.returncode, out, err


# --- 1. transient failures ---------------------------------------------------------


def test_transient_errors_during_apply_and_wait_are_retried(
    proxy: FaultProxy, via_proxy: dict[str, str], admin: Admin, namespace: str, tmp_path: Path
) -> None:
    secrets = rf"/namespaces/{namespace}/secrets"
    # The ServiceAccount is created first (no GET before it): its POST is reset, then 503 twice.
    proxy.reset(method="POST", path="serviceaccounts$", times=1)
    proxy.fail(503, method="POST", path="serviceaccounts$", times=2)

    def lose_response(body: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("the Secret was created, but its response is lost")

    proxy.mutate_json(lose_response, method="POST", path=f"{secrets}$", times=1)
    proxy.fail(429, retry_after=1, method="GET", path=f"{secrets}/", times=1)
    started = time.monotonic()
    result = run_tool(
        "--cluster",
        "dev",
        "-n",
        namespace,
        "--service-account",
        "robot",
        "--timeout",
        "20",
        "-v",  # the retry lines are step lines
        env=via_proxy,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed >= 1.0, "Retry-After: 1 was not honoured"
    assert len(admin.secrets_of(namespace, "robot")) == 1
    assert proxy.count(fault="reset") == 1 and proxy.count(fault="fail") == 3
    assert "retrying" in result.stderr
    assert admin.whoami(read_token(tmp_path / "robot@dev.env"))[0] == 201


def test_the_wait_is_one_watch_relayed_as_it_streams(
    proxy: FaultProxy, via_proxy: dict[str, str], admin: Admin, namespace: str, tmp_path: Path
) -> None:
    # The usual wait: one watch from the version created, answered when the controller
    # writes the token (through a proxy that relays it as it streams); no GET, no poll.
    result = run_tool(
        *("--cluster", "dev", "-n", namespace, "--service-account", "watched", "--debug"),
        env=via_proxy,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    secrets = f"/api/v1/namespaces/{namespace}/secrets"
    assert [(e.method, e.status) for e in proxy.requests if e.path.startswith(secrets)] == [
        ("POST", 201),
        ("GET", 200),
    ]
    (watch,) = [e.path for e in proxy.requests if "watch=1" in e.path]
    assert watch.startswith(f"{secrets}?fieldSelector=metadata.name%3Dwatched-token&watch=1&")
    assert "-> MODIFIED" in result.stderr and "token controller filled Secret" in result.stderr
    assert admin.whoami(read_token(tmp_path / "watched@dev.env"))[0] == 201

    # A watch that is cut (or refused, or buffered past 1 s) gives way to the polls.
    proxy.clear_log()
    proxy.reset(method="GET", path=rf"{secrets}\?.*watch=1", times=1)
    result = run_tool(
        *("--cluster", "dev", "-n", namespace, "--service-account", "polled", "-v"),
        env=via_proxy,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert proxy.count(fault="reset") == 1
    assert proxy.count("GET", f"{secrets}/polled-token$") >= 1
    assert admin.whoami(read_token(tmp_path / "polled@dev.env"))[0] == 201


# --- 2. API server restarts while the tool waits -----------------------------------


@pytest.mark.usefixtures("restore_cluster")
def test_apiserver_restart_while_waiting_is_survived(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    run_dev_cluster("stop", "kube-controller-manager")  # so the tool has to wait
    process = run_background(
        "--cluster",
        "dev",
        "-n",
        namespace,
        "--timeout",
        "60",
        env={"KUBECONFIG": str(dev_cluster.kubeconfig)},
        cwd=tmp_path,
    )
    time.sleep(1.5)
    run_dev_cluster("stop", "kube-apiserver")
    time.sleep(2)
    assert process.poll() is None, "the tool gave up while the API server was down"
    run_dev_cluster("start", "kube-apiserver")
    run_dev_cluster("start", "kube-controller-manager")
    code, _, err = finish(process)
    assert code == 0, err
    assert admin.whoami(read_token(tmp_path / "dev.env"))[0] == 201


@pytest.mark.usefixtures("restore_cluster")
def test_apiserver_down_past_timeout_fails_cleanly(dev_cluster: DevCluster, tmp_path: Path) -> None:
    run_dev_cluster("stop", "kube-apiserver")
    started = time.monotonic()
    result = run_tool(
        "--cluster",
        "dev",
        "--timeout",
        "3",
        env={"KUBECONFIG": str(dev_cluster.kubeconfig)},
        cwd=tmp_path,
    )
    assert time.monotonic() - started < 6
    assert result.returncode == 4
    assert len(result.error_lines) == 1
    assert "cannot reach the API server" in result.stderr and "connection refused" in result.stderr
    assert not (tmp_path / "dev.env").exists()


# --- 3. token controller not running -----------------------------------------------


@pytest.mark.usefixtures("restore_cluster")
def test_controller_stopped_times_out_naming_the_token_controller(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    run_dev_cluster("stop", "kube-controller-manager")
    started = time.monotonic()
    result = run_tool(
        "--cluster",
        "dev",
        "-n",
        namespace,
        "--timeout",
        "5",
        env={"KUBECONFIG": str(dev_cluster.kubeconfig)},
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 7
    assert elapsed < 6.5, elapsed
    assert len(result.error_lines) == 1
    assert (
        "token controller" in result.stderr
        and "--service-account-private-key-file" in result.stderr
    )
    assert "waiting for the token controller" in result.stderr  # the non-TTY progress line
    # what the run left behind, and the command that removes it (issue 19)
    assert result.error_lines[0].endswith(
        f". Left behind: the token Secret {namespace}/default-token (and the ServiceAccount "
        "and bindings this run created); to remove them: bootstrap-token revoke --cluster dev "
        f"-n {namespace} --service-account default --all"
    )
    assert list(tmp_path.iterdir()) == []

    # On a terminal the wait shows as a live status line instead.
    text = run_on_a_terminal(
        ["--cluster", "dev", "-n", namespace, "--timeout", "1.5", "--out", "tty.env"],
        {**os.environ, "KUBECONFIG": str(dev_cluster.kubeconfig)},
        tmp_path,
        quiet_for=10,
    )
    assert "\rbootstrap-token: waiting for the token controller" in text.replace("\x1b[K", "")
    assert "error: timed out after 1.5 s" in text

    # The suggested revoke removes what was left behind, controller or not.
    suggested = result.error_lines[0].split("to remove them: bootstrap-token ", 1)[1].split()
    assert admin.secrets_of(namespace, "default") != []
    removed = run_tool(*suggested, env={"KUBECONFIG": str(dev_cluster.kubeconfig)}, cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert admin.secrets_of(namespace, "default") == []


# --- 4. ServiceAccount deleted while waiting ---------------------------------------


@pytest.mark.usefixtures("restore_cluster")
def test_service_account_deleted_while_waiting_is_a_clear_error(
    dev_cluster: DevCluster, admin: Admin, namespace: str, tmp_path: Path
) -> None:
    run_dev_cluster("stop", "kube-controller-manager")
    process = run_background(
        "--cluster",
        "dev",
        "-n",
        namespace,
        "--service-account",
        "doomed",
        "--timeout",
        "60",
        env={"KUBECONFIG": str(dev_cluster.kubeconfig)},
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 10
    while admin.request("GET", f"/api/v1/namespaces/{namespace}/secrets/doomed-token")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    admin.request("DELETE", f"/api/v1/namespaces/{namespace}/serviceaccounts/doomed")
    run_dev_cluster("start", "kube-controller-manager")  # the controller now deletes the Secret
    code, _, err = finish(process, timeout=60)
    assert code == 6, err
    assert "disappeared while waiting" in err and "ServiceAccount is missing" in err
    assert not (tmp_path / "doomed@dev.env").exists()


# --- 5. 401 and 403: never retried -------------------------------------------------


def test_invalid_credentials_401_fail_at_once(
    dev_cluster: DevCluster, proxy: FaultProxy, tmp_path: Path
) -> None:
    kubeconfig = kubeconfig_for(
        dev_cluster, proxy.url, tmp_path / "bad.yaml", token="expired-token"
    )
    started = time.monotonic()
    result = run_tool("--cluster", "dev", env={"KUBECONFIG": str(kubeconfig)}, cwd=tmp_path)
    assert time.monotonic() - started < 3
    assert result.returncode == 5
    assert len(result.error_lines) == 1
    assert "401 Unauthorized" in result.stderr and "create serviceaccounts" in result.stderr
    assert proxy.count() == 1  # no retry


@pytest.mark.parametrize(
    ("user", "server", "expected"),
    [
        (
            {"token": "abc\u20acdef"},  # a euro sign: no HTTP header can carry it
            None,
            "error: cannot create serviceaccounts in namespace default: an HTTP header field "
            "holds a character outside Latin-1; check the credentials (token, user names) and "
            "the server of the kubeconfig",
        ),
        (
            {},
            "https://a..b:6443",
            "error: cluster 'dev': server 'https://a..b:6443' is not a valid URL: the host "
            "name 'a..b' is not a valid DNS name",
        ),
    ],
)
def test_what_http_cannot_carry_is_one_error_line_before_any_request(
    dev_cluster: DevCluster,
    proxy: FaultProxy,
    tmp_path: Path,
    user: dict[str, str],
    server: str | None,
    expected: str,
) -> None:
    kubeconfig = kubeconfig_for(dev_cluster, server or proxy.url, tmp_path / "odd.yaml", **user)
    result = run_tool("--cluster", "dev", env={"KUBECONFIG": str(kubeconfig)}, cwd=tmp_path)
    assert (result.returncode, result.error_lines) == (3, [expected])
    assert "abc" not in result.stderr  # the token is never shown
    assert proxy.count() == 0  # nothing was sent


def test_forbidden_403_names_the_verb_and_resource(
    dev_cluster: DevCluster, proxy: FaultProxy, namespace: str, tmp_path: Path
) -> None:
    # A real RBAC refusal: bootstrap with a token that may only do discovery.
    issued = run_tool(
        "--cluster",
        "dev",
        "-n",
        namespace,
        "--service-account",
        "nobody",
        env={"KUBECONFIG": str(dev_cluster.kubeconfig)},
        cwd=tmp_path,
    )
    assert issued.returncode == 0, issued.stderr
    token = read_token(tmp_path / "nobody@dev.env")
    kubeconfig = kubeconfig_for(dev_cluster, proxy.url, tmp_path / "weak.yaml", token=token)
    result = run_tool(
        "--cluster",
        "dev",
        "-n",
        namespace,
        "--out",
        "x.env",
        env={"KUBECONFIG": str(kubeconfig)},
        cwd=tmp_path,
    )
    assert result.returncode == 5
    assert result.error_lines[0].startswith(
        f"error: forbidden: user 'dev-admin' (context 'dev-admin') may not get serviceaccounts in namespace {namespace}"
    )
    # Refused to create the account, it asks whether the account exists (it may only
    # read it): refused again, and that is the end.
    assert proxy.count() == 2


# --- 6. a server that hangs ----------------------------------------------------------


def test_silent_server_respects_the_overall_timeout(
    proxy: FaultProxy, via_proxy: dict[str, str], tmp_path: Path
) -> None:
    proxy.silent(window=30)
    started = time.monotonic()
    result = run_tool("--cluster", "dev", "--timeout", "3", env=via_proxy, cwd=tmp_path)
    assert time.monotonic() - started < 5
    assert result.returncode == 4
    assert len(result.error_lines) == 1 and "no response" in result.stderr


# --- 7. output faults ------------------------------------------------------------------


def test_missing_output_directory_fails_before_any_request(
    proxy: FaultProxy, via_proxy: dict[str, str], tmp_path: Path
) -> None:
    result = run_tool("--cluster", "dev", "--out", "nowhere/dev.env", env=via_proxy, cwd=tmp_path)
    assert result.returncode == 9
    assert "does not exist" in result.stderr
    assert proxy.count() == 0


def test_disk_full_keeps_the_previous_file(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    # Client certificate as file paths: with -data the tool briefly writes them to tmpfs,
    # which the size limit below would also refuse.
    pki = dev_cluster.state / "pki"
    kubeconfig = tmp_path.parent / f"{tmp_path.name}-files.yaml"
    kubeconfig_for(
        dev_cluster,
        dev_cluster.server,
        kubeconfig,
        **{"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")},
    )
    env = {"KUBECONFIG": str(kubeconfig)}
    first = run_tool(
        "--cluster", "dev", "-n", namespace, "--format", "kubeconfig", env=env, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "dev.kubeconfig").read_bytes()
    remember_token(yaml.safe_load(before)["users"][0]["user"]["token"])
    # A file-size limit makes every write past 512 bytes fail like a full disk
    # (Python ignores SIGXFSZ, so write() gets EFBIG).
    process = subprocess.run(
        [
            "prlimit",
            "--fsize=512",
            sys.executable,
            "-m",
            "bootstrap",
            "--cluster",
            "dev",
            "-n",
            namespace,
            "--service-account",
            "other",
            "--format",
            "kubeconfig",
            "--out",
            "dev.kubeconfig",
        ],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 9, process.stderr
    assert "cannot write" in process.stderr and "nothing was changed there" in process.stderr
    assert (tmp_path / "dev.kubeconfig").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.kubeconfig"]


def test_kill_during_write_never_leaves_a_half_written_file(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    env = {**os.environ, "KUBECONFIG": str(dev_cluster.kubeconfig)}
    args = [sys.executable, "-m", "bootstrap", "--cluster", "dev", "-n", namespace, "-q"]
    assert subprocess.run(args, env=env, cwd=tmp_path, timeout=60).returncode == 0
    complete = (tmp_path / "dev.env").read_text()
    read_token(tmp_path / "dev.env")
    for delay in [0.05 * i for i in range(1, 13)]:
        process = subprocess.Popen([*args, "--service-account", "default"], env=env, cwd=tmp_path)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert (tmp_path / "dev.env").read_text() == complete


# --- bad input -------------------------------------------------------------------------


def test_invalid_names_are_refused_before_any_request(
    proxy: FaultProxy, via_proxy: dict[str, str], tmp_path: Path
) -> None:
    for flag, value in (("-n", "Bad_NS"), ("--service-account", "a b"), ("--secret", "x" * 300)):
        result = run_tool("--cluster", "dev", flag, value, env=via_proxy, cwd=tmp_path)
        assert result.returncode == 2
        assert len(result.error_lines) == 1 and "is not a valid" in result.stderr
    assert proxy.count() == 0


def test_secret_whose_token_is_not_base64_is_a_clean_error(
    proxy: FaultProxy, via_proxy: dict[str, str], namespace: str, tmp_path: Path
) -> None:
    def corrupt(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("kind") == "Secret":
            body["data"] = {"token": "%%% not base64 %%%"}
        return body

    proxy.mutate_json(corrupt, method="GET", path=f"/namespaces/{namespace}/secrets/", window=30)
    proxy.mutate_json(corrupt, method="POST", path=f"/namespaces/{namespace}/secrets$", window=30)
    result = run_tool("--cluster", "dev", "-n", namespace, env=via_proxy, cwd=tmp_path)
    assert result.returncode == 4
    assert result.error_lines == [
        f"error: Secret {namespace}/default-token: data.token is not valid base64 text"
    ]


def test_secret_without_ca_uses_the_kubeconfig_ca(
    proxy: FaultProxy,
    via_proxy: dict[str, str],
    dev_cluster: DevCluster,
    namespace: str,
    tmp_path: Path,
) -> None:
    def drop_ca(body: dict[str, Any]) -> dict[str, Any]:
        (body.get("data") or {}).pop("ca.crt", None)
        return body

    proxy.mutate_json(drop_ca, method="GET", path=f"/namespaces/{namespace}/secrets/", window=30)
    result = run_tool("--cluster", "dev", "-n", namespace, env=via_proxy, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dev.ca.crt").read_bytes() == dev_cluster.ca_file.read_bytes()
    read_token(tmp_path / "dev.env")


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"<html>login</html>", "text/html", "not a JSON object"),
        (b"[1, 2, 3]", "application/json", "not a JSON object"),
        (b"x" * (5 * 1024 * 1024), "application/json", "oversized response"),
    ],
    ids=["html", "json-list", "huge"],
)
def test_hostile_responses_are_clean_errors(
    proxy: FaultProxy,
    via_proxy: dict[str, str],
    tmp_path: Path,
    body: bytes,
    content_type: str,
    message: str,
) -> None:
    proxy.respond(200, body, content_type, window=30)
    result = run_tool("--cluster", "dev", env=via_proxy, cwd=tmp_path)
    assert result.returncode == 4
    assert len(result.error_lines) == 1 and message in result.stderr


# --- TLS ---------------------------------------------------------------------------------


def test_wrong_ca_is_refused_unless_insecure_is_asked_for(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(tmp_path / "other-ca.key"),
            "-out",
            str(other_ca),
            "-subj",
            "/CN=other",
        ],
        check=True,
        capture_output=True,
    )
    config = dev_cluster.config
    for cluster in config["clusters"]:
        cluster["cluster"]["certificate-authority-data"] = base64.b64encode(
            other_ca.read_bytes()
        ).decode()
    kubeconfig = tmp_path / "wrong-ca.yaml"
    kubeconfig.write_text(json.dumps(config))
    env = {"KUBECONFIG": str(kubeconfig)}

    started = time.monotonic()
    refused = run_tool("--cluster", "dev", "-n", namespace, env=env, cwd=tmp_path)
    assert refused.returncode == 4
    assert time.monotonic() - started < 5, "a certificate mismatch is not worth retrying"
    assert len(refused.error_lines) == 1 and "TLS verification of" in refused.stderr
    assert "--insecure-skip-tls-verify" in refused.stderr

    allowed = run_tool(
        "--cluster", "dev", "-n", namespace, "--insecure-skip-tls-verify", env=env, cwd=tmp_path
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "warning: TLS verification is off" in allowed.stderr
    read_token(tmp_path / "dev.env")


def test_a_fresh_token_gets_a_short_grace_for_a_spurious_401(
    proxy: FaultProxy, via_proxy: dict[str, str], namespace: str, tmp_path: Path
) -> None:
    """The apiserver checks a legacy token against its cached Secret, which can lag the
    controller by a few ms: one 401 for the new token is asked again (never for the admin)."""
    proxy.fail(401, method="POST", path="selfsubjectreviews", times=1)
    result = run_tool("--cluster", "dev", "-n", namespace, env=via_proxy, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert proxy.count("POST", "selfsubjectreviews") == 2
    read_token(tmp_path / "dev.env")

    proxy.fail(401, method="POST", path="selfsubjectreviews", window=30)
    started = time.monotonic()
    rejected = run_tool(
        "--cluster", "dev", "-n", namespace, "--out", "x.env", env=via_proxy, cwd=tmp_path
    )
    assert rejected.returncode == 8
    assert 1.5 < time.monotonic() - started < 6
    assert len(rejected.error_lines) == 1 and "rejected" in rejected.stderr
    assert not (tmp_path / "x.env").exists()
