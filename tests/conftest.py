"""Shared fixtures: the real dev cluster, a namespace per test, and a tool runner
that records everything the tool prints so the session can prove no token leaked."""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
import urllib3

REPO = Path(__file__).resolve().parent.parent
DEV_CLUSTER = REPO / "scripts" / "dev-cluster"


# --- everything the tool printed, for the leak check -------------------------


@dataclass
class Transcript:
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (where, text)
    tokens: set[str] = field(default_factory=set)

    def leaks(self) -> list[str]:
        found = []
        for where, text in self.outputs:
            for token in self.tokens:
                if token and token in text:
                    found.append(where)
        return found


TRANSCRIPT = Transcript()


def remember_token(token: str) -> None:
    TRANSCRIPT.tokens.add(token)


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


def run_tool(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdout_may_hold_token: bool = False,
    timeout: float = 120,
) -> Result:
    """Run bootstrap-token as a whole process, the way users and CI do."""
    full_env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    full_env.update(env or {})
    process = subprocess.run(
        [sys.executable, "-m", "bootstrap", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )
    label = " ".join(args)
    TRANSCRIPT.outputs.append((f"stderr of: {label}", process.stderr))
    if not stdout_may_hold_token:
        TRANSCRIPT.outputs.append((f"stdout of: {label}", process.stdout))
    if "Traceback" in process.stderr and "--debug" not in args:
        raise AssertionError(f"traceback without --debug:\n{process.stderr}")
    return Result(list(args), process.returncode, process.stdout, process.stderr)


@pytest.fixture(scope="session", autouse=True)
def no_token_leaked() -> Iterator[None]:
    yield
    leaks = TRANSCRIPT.leaks()
    assert not leaks, f"an issued token appeared in: {leaks}"


# --- the dev cluster ------------------------------------------------------------


@dataclass
class DevCluster:
    kubeconfig: Path
    state: Path

    @property
    def config(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.kubeconfig.read_text())
        return loaded

    @property
    def server(self) -> str:
        return str(self.config["clusters"][0]["cluster"]["server"])

    @property
    def ca_file(self) -> Path:
        return self.state / "pki" / "ca.crt"

    def component(self, action: str, name: str) -> None:
        run_dev_cluster(action, name)

    def admin(self) -> Admin:
        pki = self.state / "pki"
        return Admin(self.server, pki / "ca.crt", (pki / "admin.crt", pki / "admin.key"))


def run_dev_cluster(*args: str) -> str:
    process = subprocess.run(
        [sys.executable, str(DEV_CLUSTER), *args], capture_output=True, text=True, timeout=1800
    )
    if process.returncode != 0:
        pytest.fail(
            f"scripts/dev-cluster {' '.join(args)} failed:\n{process.stderr[-4000:]}",
            pytrace=False,
        )
    return process.stdout


@pytest.fixture(scope="session")
def dev_cluster() -> Iterator[DevCluster]:
    """Bring the real cluster up, or reuse the running one; fail (never skip) if it cannot start."""
    state = Path(os.environ.get("DEV_CLUSTER_DIR") or REPO / ".dev-cluster").resolve()
    was_running = "running" in (
        subprocess.run(
            [sys.executable, str(DEV_CLUSTER), "status"], capture_output=True, text=True
        ).stdout
    )
    out = run_dev_cluster("up")
    match = re.search(r"^export KUBECONFIG=(.+)$", out, re.M)
    assert match, f"dev-cluster up printed no KUBECONFIG line: {out!r}"
    yield DevCluster(Path(match.group(1)), state)
    if not was_running and not os.environ.get("KEEP_DEV_CLUSTER"):
        run_dev_cluster("down")


class Admin:
    """A small admin client for setting up and checking tests (client cert, real TLS)."""

    def __init__(self, server: str, ca: Path, cert: tuple[Path, Path] | None = None) -> None:
        context = ssl.create_default_context(cafile=str(ca))
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT  # Python 3.13: the dev CA has no keyUsage
        if cert:
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        self.server = server
        self.ca = ca
        self.pool = urllib3.PoolManager(ssl_context=context, retries=False)

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self.pool.request(
            method,
            self.server + path,
            body=json.dumps(body).encode() if body is not None else None,
            headers=headers,
            timeout=10,
        )
        try:
            return response.status, json.loads(response.data)
        except ValueError:
            return response.status, response.data

    def whoami(self, token: str) -> tuple[int, str | None]:
        """SelfSubjectReview with a bearer token and no client certificate."""
        as_token = Admin(self.server, self.ca)
        status, body = as_token.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            token=token,
        )
        if status != 201:
            return status, None
        return status, body["status"]["userInfo"]["username"]

    def secrets_of(self, namespace: str, service_account: str) -> list[dict[str, Any]]:
        status, body = self.request("GET", f"/api/v1/namespaces/{namespace}/secrets")
        assert status == 200, body
        return [
            s
            for s in body["items"]
            if (s["metadata"].get("annotations") or {}).get("kubernetes.io/service-account.name")
            == service_account
        ]

    def secret_token(self, namespace: str, name: str) -> str | None:
        status, body = self.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if status != 200 or "token" not in (body.get("data") or {}):
            return None
        return base64.b64decode(body["data"]["token"]).decode()


@pytest.fixture(scope="session")
def admin(dev_cluster: DevCluster) -> Admin:
    return dev_cluster.admin()


class DevTool(Protocol):
    def __call__(self, *args: str, **kwargs: Any) -> Result: ...


@pytest.fixture
def dev_tool(dev_cluster: DevCluster, namespace: str, tmp_path: Path) -> DevTool:
    """run_tool against cluster `dev` in the test's namespace, from tmp_path:
    dev_tool("--service-account", "x") or dev_tool("revoke", "--all")."""

    def run(*args: str, **kwargs: Any) -> Result:
        kwargs.setdefault("env", {"KUBECONFIG": str(dev_cluster.kubeconfig)})
        kwargs.setdefault("cwd", tmp_path)
        command = (
            [args[0]] if args and args[0] in ("issue", "rotate", "revoke", "list", "sweep") else []
        )
        rest = args[len(command) :]
        return run_tool(*command, "--cluster", "dev", "-n", namespace, *rest, **kwargs)

    return run


@pytest.fixture
def namespace(admin: Admin, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{base}-{uuid.uuid4().hex[:5]}"
    status, body = admin.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert status == 201, body
    yield name
    admin.request("DELETE", f"/api/v1/namespaces/{name}")
