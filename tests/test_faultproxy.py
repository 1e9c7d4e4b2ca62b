"""Self-test of the fault-injection proxy, against a tiny local HTTPS upstream.

No Kubernetes cluster is needed: a throwaway CA made with openssl signs the
upstream's and the proxy's serving certificates and two client certificates.
"""

from __future__ import annotations

import json
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import urllib3

from tests.faultproxy import FaultProxy, issue_cert

SECRET: dict[str, Any] = {
    "kind": "Secret",
    "apiVersion": "v1",
    "metadata": {"name": "tok", "namespace": "ns"},
    "type": "kubernetes.io/service-account-token",
    "data": {"token": "dG9rZW4=", "ca.crt": "Y2E="},
}


@dataclass(frozen=True)
class Pki:
    ca: Path
    upstream: tuple[Path, Path]
    proxy: tuple[Path, Path]
    admin: tuple[Path, Path]  # the proxy's upstream client certificate
    user: tuple[Path, Path]  # what the test client presents to the proxy


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca, ca_key = d / "ca.crt", d / "ca.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-keyout", str(ca_key), "-out", str(ca), "-subj", "/CN=test-ca",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        check=True, capture_output=True,
    )  # fmt: skip
    return Pki(
        ca=ca,
        upstream=issue_cert(ca, ca_key, d, name="upstream"),
        proxy=issue_cert(ca, ca_key, d),
        admin=issue_cert(ca, ca_key, d, name="admin", client=True),
        user=issue_cert(ca, ca_key, d, name="user", client=True),
    )


class _UpstreamHandler(BaseHTTPRequestHandler):
    """Echoes what it received; /secrets/missing is a 404, /secrets/<x> a Secret."""

    protocol_version = "HTTP/1.1"
    server: Upstream

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        assert isinstance(self.connection, ssl.SSLSocket)
        cert = self.connection.getpeercert()
        subject: Any = (cert or {}).get("subject", ())
        names = [name for rdn in subject for name in rdn]
        seen: dict[str, Any] = {
            "method": self.command,
            "path": self.path,
            "authorization": self.headers.get("Authorization"),
            "accept_encoding": self.headers.get("Accept-Encoding"),
            "x_test": self.headers.get("X-Test"),
            "client_cn": next((v for k, v in names if k == "commonName"), None),
            "body": body.decode(),
        }
        self.server.seen.append(seen)
        status, document = 200, seen
        if "/secrets/missing" in self.path:
            status, document = 404, {"kind": "Status", "code": 404, "reason": "NotFound"}
        elif "/secrets/" in self.path:
            document = SECRET
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Audit-Id", "upstream")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_any


class Upstream(socketserver.ThreadingTCPServer):
    """A stand-in apiserver: HTTPS, asks for (but does not need) a client certificate."""

    daemon_threads = True

    def __init__(self, pki: Pki) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*pki.upstream)
        self.context.load_verify_locations(cafile=pki.ca)
        self.context.verify_mode = ssl.CERT_OPTIONAL
        self.seen: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.context.wrap_socket(sock, server_side=True), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="module")
def upstream(pki: Pki) -> Iterator[Upstream]:
    server = Upstream(pki)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _proxy_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("faultproxy")]


@pytest.fixture
def proxy(pki: Pki, upstream: Upstream) -> Iterator[FaultProxy]:
    upstream.seen.clear()
    with FaultProxy(upstream.url, pki.ca, *pki.proxy, upstream_client_cert=pki.admin) as running:
        yield running
    assert _proxy_threads() == []


def _client(pki: Pki, cert: bool = True) -> urllib3.PoolManager:
    context = ssl.create_default_context(cafile=pki.ca)
    if cert:
        context.load_cert_chain(*pki.user)
    return urllib3.PoolManager(ssl_context=context, retries=False, timeout=5.0)


@pytest.fixture
def client(pki: Pki) -> urllib3.PoolManager:
    return _client(pki)


def _json(response: urllib3.BaseHTTPResponse) -> Any:
    return json.loads(response.data)


def test_pass_through_with_keep_alive(
    proxy: FaultProxy, client: urllib3.PoolManager, upstream: Upstream
) -> None:
    got = client.request("GET", proxy.url + "/echo", headers={"Accept-Encoding": "gzip"})
    assert got.status == 200
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Audit-Id"] == "upstream"
    assert _json(got)["accept_encoding"] == "identity"  # bodies stay plain

    got = client.request(
        "POST", proxy.url + "/echo?x=1", body=b'{"a": 1}', headers={"X-Test": "yes"}
    )
    echoed = _json(got)
    assert (echoed["method"], echoed["path"], echoed["body"]) == ("POST", "/echo?x=1", '{"a": 1}')
    assert echoed["x_test"] == "yes"

    got = client.request("POST", proxy.url + "/echo", body=iter([b"chun", b"ked"]))
    assert _json(got)["body"] == "chunked"

    assert proxy.requests == [
        ("GET", "/echo", 200, None),
        ("POST", "/echo?x=1", 200, None),
        ("POST", "/echo", 200, None),
    ]
    assert proxy.connections == 1  # one downstream connection served all three
    assert len(upstream.seen) == 3


def test_fail_with_retry_after_and_filters(
    proxy: FaultProxy, client: urllib3.PoolManager, upstream: Upstream
) -> None:
    rule = proxy.fail(429, retry_after=2, method="post", path=r"/secrets$")
    secrets = proxy.url + "/api/v1/namespaces/ns/secrets"
    assert client.request("GET", secrets).status == 200  # other method
    assert client.request("POST", secrets + "/x").status == 200  # other path
    assert len(upstream.seen) == 2

    got = client.request("POST", secrets, body=b"{}")
    assert got.status == 429
    assert got.headers["Retry-After"] == "2"
    status = _json(got)
    assert status["kind"] == "Status" and status["apiVersion"] == "v1"
    assert (status["status"], status["reason"], status["code"]) == (
        "Failure",
        "TooManyRequests",
        429,
    )
    assert "injected" in status["message"]
    assert status["details"] == {"retryAfterSeconds": 2}
    assert len(upstream.seen) == 2  # not forwarded

    assert client.request("POST", secrets, body=b"{}").status == 200  # spent after one
    assert rule.hits == 1
    assert proxy.count("POST", r"/secrets$") == 2
    assert proxy.count(fault="fail") == 1
    assert proxy.requests[2] == ("POST", "/api/v1/namespaces/ns/secrets", 429, "fail")


@pytest.mark.parametrize(
    ("status", "reason"),
    [(401, "Unauthorized"), (403, "Forbidden"), (503, "ServiceUnavailable")],
)
def test_fail_statuses(
    proxy: FaultProxy, client: urllib3.PoolManager, status: int, reason: str
) -> None:
    proxy.fail(status)
    got = client.request("GET", proxy.url + "/echo")
    assert got.status == status
    assert "Retry-After" not in got.headers
    assert (_json(got)["reason"], _json(got)["code"]) == (reason, status)


def test_counts_and_windows_expire(proxy: FaultProxy, client: urllib3.PoolManager) -> None:
    url = proxy.url + "/echo"
    rule = proxy.fail(503, times=2)
    assert [client.request("GET", url).status for _ in range(3)] == [503, 503, 200]
    assert (rule.hits, rule.remaining) == (2, 0)

    window = proxy.fail(503, window=0.3)
    started = time.monotonic()
    assert [client.request("GET", url).status for _ in range(3)] == [503, 503, 503]
    time.sleep(max(0.0, started + 0.35 - time.monotonic()))
    assert client.request("GET", url).status == 200
    assert window.hits == 3

    proxy.fail(500, times=1, window=5)  # whichever runs out first
    assert [client.request("GET", url).status for _ in range(2)] == [500, 200]

    proxy.fail(503, window=5)
    proxy.clear()
    assert client.request("GET", url).status == 200


def test_reset_aborts_the_connection(
    proxy: FaultProxy, client: urllib3.PoolManager, upstream: Upstream
) -> None:
    assert client.request("GET", proxy.url + "/echo").status == 200
    proxy.reset(method="DELETE")
    with pytest.raises(urllib3.exceptions.ProtocolError) as raised:
        client.request("DELETE", proxy.url + "/echo")  # on the kept-alive connection
    assert isinstance(raised.value.args[1], ConnectionResetError)
    assert proxy.requests[-1] == ("DELETE", "/echo", None, "reset")
    assert len(upstream.seen) == 1
    assert client.request("DELETE", proxy.url + "/echo").status == 200


def test_delay(proxy: FaultProxy, client: urllib3.PoolManager) -> None:
    proxy.delay(0.3, path="^/slow")
    started = time.monotonic()
    assert client.request("GET", proxy.url + "/slow").status == 200
    assert time.monotonic() - started >= 0.3
    assert proxy.requests == [("GET", "/slow", 200, "delay")]


def test_silent_until_cleared(proxy: FaultProxy, client: urllib3.PoolManager) -> None:
    proxy.silent(path="/echo")
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        client.request("GET", proxy.url + "/echo", timeout=urllib3.Timeout(read=0.3))
    assert proxy.requests == [("GET", "/echo", None, "silent")]
    assert client.request("GET", proxy.url + "/echo").status == 200  # spent; new connection
    assert len([t for t in _proxy_threads() if t.name.startswith("faultproxy-conn")]) == 2

    proxy.clear()  # lets go of the held request
    deadline = time.monotonic() + 2
    while len(_proxy_threads()) > 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(_proxy_threads()) == 2  # the accept loop and the kept-alive connection


def test_silent_window_then_closes(proxy: FaultProxy, client: urllib3.PoolManager) -> None:
    proxy.silent(window=0.4)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ProtocolError):  # closed, no response
        client.request("GET", proxy.url + "/echo", timeout=urllib3.Timeout(read=3))
    assert 0.3 <= time.monotonic() - started < 2.5
    assert client.request("GET", proxy.url + "/echo").status == 200


def test_silent_released_by_stop(pki: Pki, upstream: Upstream) -> None:
    proxy = FaultProxy(upstream.url, pki.ca, *pki.proxy).start()
    proxy.silent(hold=30)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            _client(pki).request("GET", proxy.url + "/echo")
        except urllib3.exceptions.HTTPError as e:
            errors.append(e)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 2
    while not proxy.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 1
    caller.join(2)
    assert not caller.is_alive() and len(errors) == 1
    assert _proxy_threads() == []
    with pytest.raises(RuntimeError):
        _ = proxy.url
    proxy.stop()  # idempotent


def test_respond_hostile(proxy: FaultProxy, client: urllib3.PoolManager) -> None:
    proxy.respond(200, b"<html>not an apiserver</html>", "text/html", headers={"X-A": "b"})
    got = client.request("GET", proxy.url + "/api")
    assert (got.status, got.headers["Content-Type"], got.headers["X-A"]) == (200, "text/html", "b")
    assert got.data == b"<html>not an apiserver</html>"

    huge = b"x" * (5 * 1024 * 1024)
    proxy.respond(200, huge)
    got = client.request("GET", proxy.url + "/api")
    assert got.data == huge and got.headers["Content-Length"] == str(len(huge))
    assert proxy.count(fault="respond") == 2


def test_mutate_json(proxy: FaultProxy, client: urllib3.PoolManager, upstream: Upstream) -> None:
    def corrupt(secret: dict[str, Any]) -> dict[str, Any]:
        secret["data"]["token"] = "not base64!"
        del secret["data"]["ca.crt"]
        return secret

    rule = proxy.mutate_json(corrupt, method="GET", path="/secrets/")
    base = proxy.url + "/api/v1/namespaces/ns/secrets/"
    got = client.request("GET", base + "missing")
    assert got.status == 404 and rule.hits == 0  # not a 2xx: relayed, rule not spent
    assert client.request("POST", base + "tok", body=b"{}").json() == SECRET  # method filter

    got = client.request("GET", base + "tok")
    assert got.json()["data"] == {"token": "not base64!"}
    assert got.headers["Content-Length"] == str(len(got.data))
    assert client.request("GET", base + "tok").json() == SECRET  # spent
    assert [r.fault for r in proxy.requests] == [None, None, "mutate_json", None]
    assert len(upstream.seen) == 4


def test_credentials_upstream(
    pki: Pki, proxy: FaultProxy, client: urllib3.PoolManager, upstream: Upstream
) -> None:
    # Authenticated by a client certificate: the proxy uses its own (the admin's).
    assert _json(client.request("GET", proxy.url + "/echo"))["client_cn"] == "admin"

    # A bearer token is forwarded, with no client certificate.
    got = _json(client.request("GET", proxy.url + "/echo", headers={"Authorization": "Bearer t"}))
    assert (got["authorization"], got["client_cn"]) == ("Bearer t", None)

    # Neither: anonymous upstream too.
    got = _json(_client(pki, cert=False).request("GET", proxy.url + "/echo"))
    assert (got["authorization"], got["client_cn"]) == (None, None)


def test_upstream_unreachable_is_502(pki: Pki) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{probe.getsockname()[1]}"
    with FaultProxy(dead, pki.ca, *pki.proxy) as proxy:
        got = _client(pki).request("GET", proxy.url + "/version")
        assert got.status == 502
        assert _json(got)["kind"] == "Status"
        assert proxy.requests == [("GET", "/version", 502, None)]
        port = proxy.port
    assert _proxy_threads() == []
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
