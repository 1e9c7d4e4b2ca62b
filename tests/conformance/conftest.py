"""The lab every conformance variant is built from: the dev cluster's admin
kubeconfig taken apart, an admin-capable ServiceAccount token, extra
certificates, and proxies/forwarders running for the whole session."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conformance.pki import Material, Pair, make_material
from tests.conformance.proxies import ConnectProxy, Socks5Proxy
from tests.conformance.relay import Forwarder
from tests.conftest import Admin, DevCluster, remember_token

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# Names the API server's certificate lists but no DNS server knows: a client that
# reaches the API server by one of them has gone through a proxy that maps them.
PROXY_ONLY_NAMES = ("kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "10.0.0.1")
ADMIN_NS = "conformance-system"


@dataclass(frozen=True)
class Lab:
    server: str  # https://127.0.0.1:PORT
    port: int
    ca_pem: bytes
    ca_file: Path
    admin: Pair  # client cert (system:masters) and key, as files
    sa_token: str  # a cluster-admin ServiceAccount's token (for token users and plugins)
    material: Material
    http_proxy: ConnectProxy
    https_proxy: ConnectProxy
    auth_proxy: ConnectProxy  # wants Proxy-Authorization for user "conform", password "p@ss:w"
    socks_proxy: Socks5Proxy
    socks_auth_proxy: Socks5Proxy  # wants user "conform", password "p@ss:w"
    forwarder: Forwarder  # 127.0.0.2:PORT -> the API server; 127.0.0.2 is not in its cert
    dead_port: int  # nothing listens there

    def pem(self, path: Path) -> bytes:
        return path.read_bytes()


def _ensure(admin: Admin, path: str, body: dict[str, object]) -> None:
    status, answer = admin.request("POST", path, body)
    assert status in (201, 409), answer


def _admin_token(admin: Admin) -> str:
    _ensure(admin, "/api/v1/namespaces", {"metadata": {"name": ADMIN_NS}})
    _ensure(
        admin, f"/api/v1/namespaces/{ADMIN_NS}/serviceaccounts", {"metadata": {"name": "admin"}}
    )
    _ensure(
        admin,
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "metadata": {"name": "conformance-admin"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "admin", "namespace": ADMIN_NS}],
        },
    )
    status, body = admin.request(
        "POST",
        f"/api/v1/namespaces/{ADMIN_NS}/serviceaccounts/admin/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 7200},
        },
    )
    assert status == 201, body
    token = str(body["status"]["token"])
    remember_token(token)  # an admin credential must never show up in any output either
    return token


def _dead_port() -> socket.socket:
    """A port held for the whole session but never listened on: connections to it are
    refused, and no other program can start listening there by chance."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


@pytest.fixture(scope="session")
def lab(
    dev_cluster: DevCluster, admin: Admin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    config = dev_cluster.config
    cluster = config["clusters"][0]["cluster"]
    server = str(cluster["server"])
    pki = dev_cluster.state / "pki"
    material = make_material(
        tmp_path_factory.mktemp("pki"), Pair(pki / "ca.crt", pki / "ca.key"), pki / "admin.key"
    )
    proxy_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    proxy_tls.load_cert_chain(str(material.proxy.crt), str(material.proxy.key))
    names = dict.fromkeys(PROXY_ONLY_NAMES, "127.0.0.1")
    port = int(server.rsplit(":", 1)[1])
    with (
        _dead_port() as dead,
        ConnectProxy(names) as http_proxy,
        ConnectProxy(names, tls=proxy_tls) as https_proxy,
        ConnectProxy(names, credentials="conform:p@ss:w") as auth_proxy,
        Socks5Proxy(names) as socks_proxy,
        Socks5Proxy(names, credentials="conform:p@ss:w") as socks_auth_proxy,
        Forwarder(("127.0.0.1", port), host="127.0.0.2") as forwarder,
    ):
        yield Lab(
            server=server,
            port=port,
            ca_pem=base64.b64decode(cluster["certificate-authority-data"]),
            ca_file=pki / "ca.crt",
            admin=Pair(pki / "admin.crt", pki / "admin.key"),
            sa_token=_admin_token(admin),
            material=material,
            http_proxy=http_proxy,
            https_proxy=https_proxy,
            auth_proxy=auth_proxy,
            socks_proxy=socks_proxy,
            socks_auth_proxy=socks_auth_proxy,
            forwarder=forwarder,
            dead_port=int(dead.getsockname()[1]),
        )


# --- Python 3.13 (ssl.create_default_context() sets VERIFY_X509_STRICT there) ------

PY313_VENV = HERE / ".venv"  # gitignored (.venv/ at any depth)
PY313_DEPS = ("kubernetes>=28", "pyyaml>=6", "tenacity>=8.2", "click>=8.1")


def _pyenv_python(version: str) -> Path | None:
    pyenv = shutil.which("pyenv")
    if not pyenv:
        return None
    prefix = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True)
    path = Path(prefix.stdout.strip()) / "bin" / "python3"
    return path if prefix.returncode == 0 and path.exists() else None


@pytest.fixture(scope="session")
def python313() -> str:
    """A Python 3.13 that can `import bootstrap` from this worktree (PYTHONPATH) with
    the dependencies installed in a venv of its own."""
    base = _pyenv_python("3.13.0")
    if base is None:
        pytest.fail("Python 3.13.0 is not installed (pyenv); the TLS-like-Go variants need it")
    stamp = PY313_VENV / ".deps-installed"
    if not stamp.exists():
        subprocess.run([str(base), "-m", "venv", str(PY313_VENV)], check=True, timeout=300)
        subprocess.run(
            [str(PY313_VENV / "bin" / "python"), "-m", "pip", "install", "-q", *PY313_DEPS],
            check=True,
            timeout=600,
        )
        stamp.write_text(json.dumps(PY313_DEPS))
    return str(PY313_VENV / "bin" / "python")


def repo_pythonpath() -> str:
    """Where the tool is imported from: this worktree, or the checkout named by
    $CONFORMANCE_PRODUCT (e.g. an export of another commit, to compare)."""
    product = os.environ.get("CONFORMANCE_PRODUCT") or str(REPO)
    existing = os.environ.get("PYTHONPATH")
    return f"{product}{os.pathsep}{existing}" if existing else product
