"""Area 9, plain http://: the API server has no insecure port, so `kubectl proxy`
(the docs' way to reach the API over http) is the real http server. kubectl works
through it without a word; bootstrap-token works through it too (`--server`) and
warns, with the literal text of docs/compatibility.md, also with --quiet.

A kubeconfig whose cluster server is the kubectl proxy is not a variant: the proxy
forwards the new token's requests with its own admin certificate, so no client
can verify a ServiceAccount token through it."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.runner import curl_as_env_file, environment, kubectl, read_env_file, tool
from tests.conftest import DevCluster

BOOTSTRAP_WARNING = (
    "bootstrap-token: warning: {url} is plain http: the bootstrap credentials travel "
    "unencrypted; anyone on the network path can read them"
)
TOKEN_WARNING = "is plain http: the new token travels unencrypted"


@pytest.fixture
def kubectl_proxy(dev_cluster: DevCluster) -> Iterator[str]:
    process = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(dev_cluster.kubeconfig), "proxy", "--port=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        match = re.search(r"127\.0\.0\.1:(\d+)", process.stdout.readline())
        assert match, "kubectl proxy printed no address"
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("quiet", [False, True], ids=["plain", "quiet"])
def test_server_over_plain_http_works_and_warns(
    quiet: bool, kubectl_proxy: str, dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    env = environment({}, tmp_path)
    by_flag = ["--kubeconfig", str(dev_cluster.kubeconfig)]
    oracle = kubectl(
        [*by_flag, "--server", kubectl_proxy, "auth", "whoami", "-o", "json"], env, tmp_path
    )
    assert oracle.returncode == 0, oracle.stderr

    args = [*by_flag, "--cluster", "dev", "-n", namespace, "--service-account", "conform"]
    args += ["--server", kubectl_proxy, "--timeout", "15", "--out", str(tmp_path / "c.env")]
    result = tool([*args, *(["--quiet"] if quiet else [])], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert BOOTSTRAP_WARNING.format(url=kubectl_proxy) in result.stderr.splitlines()
    # The new token is verified at the cluster's own https server: no second warning.
    assert TOKEN_WARNING not in result.stderr
    values = read_env_file(tmp_path / "c.env")
    assert values["APISERVER"] == dev_cluster.server
    kind, username = curl_as_env_file(tmp_path / "c.env", env, tmp_path)
    assert (kind, username) == ("APIVersions", f"system:serviceaccount:{namespace}:conform")
