"""`--renew-before` never keeps, nor believes, a file someone else owns or wrote
(issue 17, item 2).

The kubeconfig's server is a small fake on 127.0.0.1 that says who a token is
(SelfSubjectReview) and refuses everything else: enough to show what the tool
decides about an existing output, and where it asks.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from bootstrap.outputs.emit import Issued, render_env
from tests.conftest import run_tool
from tests.unit.outputs.test_readback_rules import OTHER_UID, Listener


def _b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


# A legacy Secret token's shape (not signed: only the fake server reads it).
TOKEN = (
    _b64({"alg": "RS256"})
    + "."
    + _b64(
        {
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": "default",
            "kubernetes.io/serviceaccount/secret.name": "default-token",
        }
    )
    + ".c2lnbmF0dXJl"
)


class _Whoami(BaseHTTPRequestHandler):
    requests: list[str]
    answer: tuple[int, str] = (201, "system:serviceaccount:default:default")

    def do_POST(self) -> None:
        self.requests.append(f"POST {self.path}")
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/apis/authentication.k8s.io/v1/selfsubjectreviews":
            status, username = self.answer
            self._send(status, {"status": {"userInfo": {"username": username}}})
        else:
            self._refuse()

    def do_GET(self) -> None:
        self.requests.append(f"GET {self.path}")
        self._refuse()

    def _refuse(self) -> None:
        self._send(403, {"kind": "Status", "code": 403, "message": "no"})

    def _send(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


_handlers: list[type[_Whoami]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    requests: list[str] = []
    handler = type("Handler", (_Whoami,), {"requests": requests})
    _handlers.append(handler)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


def setup(tmp_path: Path, server: str, proxy_url: str | None = None) -> tuple[Path, Path]:
    config = tmp_path / "config"
    config.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "admin-token-0123456789"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    out = tmp_path / "prod.env"
    issued = Issued(
        cluster="c",
        server=server,
        namespace="default",
        service_account="default",
        secret="default-token",
        token=TOKEN,
        ca_pem=None,
        identity="system:serviceaccount:default:default",
        proxy_url=proxy_url,
    )
    out.write_text(render_env(issued, None))
    out.chmod(0o600)
    return config, out


def renew(config: Path, out: Path) -> Any:
    return run_tool(
        "--kubeconfig", str(config), "--cluster", "c", "--out", str(out),
        "--renew-before", "1h", "--timeout", "5",
        env={"HTTPS_PROXY": "", "HTTP_PROXY": "", "https_proxy": "", "http_proxy": ""},
    )  # fmt: skip


def test_a_file_as_we_write_it_with_a_good_token_is_kept(
    tmp_path: Path, server: tuple[str, list[str]]
) -> None:
    config, out = setup(tmp_path, server[0])
    before = out.read_bytes()
    result = renew(config, out)
    assert result.returncode == 0, result.stderr
    assert f"{out} is still valid" in result.stderr
    assert out.read_bytes() == before
    assert server[1] == ["POST /apis/authentication.k8s.io/v1/selfsubjectreviews"]


def test_an_output_someone_else_owns_is_refused_before_it_is_read(
    tmp_path: Path, server: tuple[str, list[str]]
) -> None:
    config, out = setup(tmp_path, server[0])
    os.chown(out, OTHER_UID, OTHER_UID)
    result = renew(config, out)
    assert result.returncode == 9, result.stderr
    assert result.error_lines == [
        f"error: refusing to use {out}: it is owned by uid {OTHER_UID}, not by you (uid 0); "
        "another user may have planted it to be kept and sourced: remove it or choose "
        "another --out"
    ]
    assert server[1] == []


def test_an_output_root_owns_is_read(tmp_path: Path, server: tuple[str, list[str]]) -> None:
    config, out = setup(tmp_path, server[0])
    os.chown(out, 0, 0)
    assert renew(config, out).returncode == 0


def test_a_file_with_a_line_we_do_not_write_is_renewed_not_kept(
    tmp_path: Path, server: tuple[str, list[str]]
) -> None:
    config, out = setup(tmp_path, server[0])
    with out.open("a") as f:
        f.write("export BASH_ENV='/tmp/planted'\n")
    result = renew(config, out)
    assert "is still valid" not in result.stderr
    assert (
        f"renewing: {out} has an unknown line (env line 7): not as bootstrap-token wrote it"
        in result.stderr
    )
    # The renewal itself then needs the cluster (the fake refuses): not kept means not exit 0.
    assert result.returncode != 0


def test_the_token_is_checked_at_the_kubeconfigs_server_not_through_the_files_proxy(
    tmp_path: Path, server: tuple[str, list[str]]
) -> None:
    proxy = Listener()
    try:
        config, out = setup(tmp_path, server[0], proxy_url=f"http://127.0.0.1:{proxy.port}")
        result = renew(config, out)
    finally:
        proxy.close()
    assert proxy.connections == 0
    assert server[1] == ["POST /apis/authentication.k8s.io/v1/selfsubjectreviews"]
    assert result.returncode == 0, result.stderr


# --- the same rules in-process (so that scripts/mutation sees them) ---------------------------


def _decide(config: Path, out: Path, server: str, **flags: Any) -> Any:
    from bootstrap.kube.kubeconfig import Kubeconfig
    from bootstrap.kube.target import select
    from bootstrap.outputs import renew
    from bootstrap.run import Options

    options = Options(cluster="c", out=str(out), timeout=5, **flags)
    target = select(Kubeconfig.from_files([config]), "c")
    return renew.decide(options, server, out.parent, 3600, target)


def test_decide_in_process(tmp_path: Path, server: tuple[str, list[str]]) -> None:
    from bootstrap.errors import OutputError

    config, out = setup(tmp_path, server[0])
    kept = _decide(config, out, server[0])
    assert kept.keep
    assert kept.message.startswith(f"{out} is still valid: does not expire")
    other = _decide(config, out, "https://elsewhere:6443")
    assert not other.keep
    assert other.message == f"{out} is for {server[0]}, not https://elsewhere:6443"
    with out.open("a") as f:
        f.write("export BASH_ENV='/tmp/planted'\n")
    planted = _decide(config, out, server[0])
    assert (planted.keep, planted.message) == (
        False,
        f"{out} has an unknown line (env line 7): not as bootstrap-token wrote it",
    )
    os.chown(out, OTHER_UID, OTHER_UID)
    with pytest.raises(OutputError, match=f"it is owned by uid {OTHER_UID}"):
        _decide(config, out, server[0])
    # One check: the file for another server is renewed without asking.
    assert server[1] == ["POST /apis/authentication.k8s.io/v1/selfsubjectreviews"]


def test_decide_checks_through_the_kubeconfigs_proxy_and_ca_only(
    tmp_path: Path, server: tuple[str, list[str]]
) -> None:
    from bootstrap.kube.target import Target
    from bootstrap.outputs import renew
    from bootstrap.outputs.readback import FileCredentials
    from bootstrap.run import Options

    creds = FileCredentials(
        format="env",
        server="https://file-server",
        token=TOKEN,
        ca_pem=b"FILE CA",
        ca_file="/file/ca",
        insecure=True,
        tls_server_name="file-name",
        proxy_url="http://file-proxy:1",
    )
    target = Target(
        cluster="c", server="https://kube:6443", context="x", user_name="u", user={},
        ca_data=b"KUBE CA", ca_file=None, insecure=False, tls_server_name="kube-name",
        proxy_url="http://kube-proxy:3128",
    )  # fmt: skip
    options = Options(cluster="c")
    got = renew._kubeconfig_endpoint(creds, options, target)
    assert got == FileCredentials(
        format="env",
        server="https://kube:6443",
        token=TOKEN,
        ca_pem=b"KUBE CA",
        ca_file=None,
        insecure=False,
        tls_server_name="kube-name",
        proxy_url="http://kube-proxy:3128",
    )
    insecure = renew._kubeconfig_endpoint(
        creds, Options(cluster="c", insecure_skip_tls_verify=True, server="https://s:1"), target
    )
    assert (insecure.insecure, insecure.server) == (True, "https://s:1")


def test_decide_renews_for_each_reason(tmp_path: Path, server: tuple[str, list[str]]) -> None:
    config, out = setup(tmp_path, server[0])
    good = out.read_bytes()
    handler = _handlers[-1]
    assert _decide(config, out, server[0] + "/").keep  # a trailing slash is the same server
    request = _decide(config, out, server[0], mode="request")
    assert (request.keep, request.message) == (
        False, f"{out} holds a secret token, not a request one",
    )  # fmt: skip
    handler.answer = (201, "system:serviceaccount:default:other")
    other = _decide(config, out, server[0])
    assert (other.keep, other.message) == (
        False,
        f"{out} authenticates as system:serviceaccount:default:other, not "
        "system:serviceaccount:default:default",
    )
    handler.answer = (401, "")
    revoked = _decide(config, out, server[0])
    assert (revoked.keep, revoked.fresh, revoked.message) == (
        False, True, f"the token in {out} is rejected by the server (revoked)",
    )  # fmt: skip
    handler.answer = (201, "system:serviceaccount:default:default")
    out.write_bytes(b"\xff\xfe" + good)
    assert _decide(config, out, server[0]).message.startswith(f"{out} cannot be read back (")
    out.unlink()
    missing = _decide(config, out, server[0])
    assert (missing.keep, missing.message) == (False, f"{out} does not exist yet")


def test_decide_keeps_prefixed_env_and_kubeconfig_outputs(
    tmp_path: Path, server: tuple[str, list[str]]
) -> None:
    from bootstrap.outputs.emit import render_kubeconfig

    config, out = setup(tmp_path, server[0])
    issued = Issued(
        cluster="c", server=server[0], namespace="default", service_account="default",
        secret="default-token", token=TOKEN, ca_pem=None,
        identity="system:serviceaccount:default:default",
    )  # fmt: skip
    out.write_text(render_env(issued, None, "DEV_"))
    assert _decide(config, out, server[0], env_prefix="DEV_").keep
    assert not _decide(config, out, server[0]).keep
    kube = tmp_path / "prod.kubeconfig"
    kube.write_text(render_kubeconfig(issued))
    assert _decide(config, kube, server[0], format="kubeconfig").keep
    from bootstrap.errors import UsageError

    with pytest.raises(UsageError, match="--renew-before needs an output file"):
        _decide(config, Path("-"), server[0])
