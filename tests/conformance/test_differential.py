"""kubectl is the oracle: for every kubeconfig variant, where `kubectl auth whoami`
works, bootstrap-token works with the same kubeconfig and environment, and its
outputs work (the env file with the documented curl, the kubeconfig with kubectl),
as the new ServiceAccount; where kubectl refuses, bootstrap-token fails with
exactly one `error:` line and no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conformance import (  # noqa: F401  (each module registers its variants)
    variants_auth,
    variants_exec,
    variants_misc,
    variants_parsing,
    variants_proxy,
    variants_tls,
)
from tests.conformance.cases import VARIANTS, Case, Variant
from tests.conformance.conftest import Lab, repo_pythonpath
from tests.conformance.relay import RelayServer
from tests.conformance.runner import (
    curl_as_env_file,
    environment,
    kubectl,
    read_env_file,
    tool,
    whoami,
)

SA = "conform"


class ProxyWatch:
    """Checks, step by step, that a client went through the variant's proxy (or not)."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.seen = {id(p): len(p.connections) for p in self._proxies()}

    def _proxies(self) -> list[RelayServer]:
        return [p for p in (self.case.via[0] if self.case.via else None, self.case.not_via) if p]

    def check(self, step: str) -> None:
        if self.case.via:
            proxy, target = self.case.via
            new = proxy.connections[self.seen[id(proxy)] :]
            assert target in new, f"{step} did not go through the proxy to {target} (it saw {new})"
        if self.case.not_via:
            new = self.case.not_via.connections[self.seen[id(self.case.not_via)] :]
            assert not new, f"{step} went through the proxy, which it must not: {new}"
        self.seen = {id(p): len(p.connections) for p in self._proxies()}


@pytest.mark.parametrize("v", VARIANTS, ids=[v.id for v in VARIANTS])
def test_kubectl_and_bootstrap_token_agree(
    v: Variant, lab: Lab, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    directory = tmp_path / "kubeconfig"
    directory.mkdir()
    (tmp_path / "home").mkdir()
    case = v.build(lab, directory, namespace)
    env = environment(case.env, tmp_path / "home")
    python = None
    if v.needs_py313:
        python = request.getfixturevalue("python313")
        env["PYTHONPATH"] = repo_pythonpath()
    cwd = case.cwd or directory
    by_flag = ["--kubeconfig", str(case.kubeconfig)] if case.kubeconfig else []
    watch = ProxyWatch(case)

    oracle = kubectl([*by_flag, "auth", "whoami", "-o", "json"], env, cwd)
    verdict = "accepts" if oracle.returncode == 0 else "refuses"
    assert (oracle.returncode == 0) == v.accepts, f"kubectl {verdict} {v.id}: {oracle.stderr}"

    out = tmp_path / "out"
    out.mkdir()
    args = [*by_flag, "--cluster", case.cluster, "--service-account", SA]
    if not case.namespace_from_context:
        args += ["-n", namespace]

    if not v.accepts:
        result = tool([*args, "--timeout", "1.5", "--out", str(out / "c.env")], env, cwd, python)
        assert result.returncode != 0, (
            f"kubectl refuses ({oracle.stderr.strip()}) but bootstrap-token succeeded"
        )
        assert "Traceback" not in result.stderr, result.stderr
        assert len(result.error_lines) == 1, f"want one error: line, got:\n{result.stderr}"
        assert result.returncode == v.exit_code, (
            f"exit {result.returncode}, not {v.exit_code}: {result.stderr}"
        )
        if case.error_has:
            assert case.error_has in result.stderr, result.stderr
        return

    info = whoami(oracle)
    if case.who:
        assert info["username"] == case.who
    for key, value in case.whoami_extra.items():
        assert info.get(key) == value, info
    watch.check("kubectl")

    identity = f"system:serviceaccount:{namespace}:{SA}"
    result = tool([*args, "--timeout", "15", "--out", str(out / "c.env")], env, cwd, python)
    assert result.returncode == 0, result.stderr
    watch.check("bootstrap-token")
    values = read_env_file(out / "c.env")
    assert values["NAMESPACE"] == namespace

    curl_env = env if case.curl_env is None else environment(case.curl_env, tmp_path / "home")
    kind, username = curl_as_env_file(out / "c.env", curl_env, tmp_path)
    assert (kind, username) == ("APIVersions", identity)
    if case.curl_env is None:
        watch.check("curl")
    else:
        watch.seen = {id(p): len(p.connections) for p in watch._proxies()}

    result = tool(
        [*args, "--timeout", "15", "--format", "kubeconfig", "--out", str(out / "c.kubeconfig")],
        env,
        cwd,
        python,
    )
    assert result.returncode == 0, result.stderr
    watch.check("bootstrap-token (kubeconfig)")
    check = kubectl(
        ["--kubeconfig", str(out / "c.kubeconfig"), "auth", "whoami", "-o", "json"], env, tmp_path
    )
    assert check.returncode == 0, check.stderr
    assert whoami(check)["username"] == identity
    watch.check("kubectl with the tool's kubeconfig")

    # docs/compatibility.md, "What ends up in the outputs": the cluster kubectl used,
    # its tls-server-name and proxy-url (verbatim; socks5 as socks5h in the env file),
    # never a proxy that only came from the environment.
    view = kubectl(["config", "view", "--raw", "--minify", "-o", "json", *by_flag], env, cwd)
    used = json.loads(view.stdout)["clusters"][0]["cluster"]
    written = yaml.safe_load((out / "c.kubeconfig").read_text())
    emitted = next(c["cluster"] for c in written["clusters"] if c["name"] == case.cluster)
    server = used["server"].rstrip("/")
    assert emitted["server"].rstrip("/") == values["APISERVER"].rstrip("/") == server
    for field, variable in (("tls-server-name", "TLS_SERVER_NAME"), ("proxy-url", "HTTPS_PROXY")):
        assert emitted.get(field) == used.get(field), field
        expected = used.get(field)
        if expected and field == "proxy-url" and expected.startswith("socks5://"):
            expected = "socks5h://" + expected.removeprefix("socks5://")
        assert values.get(variable) == expected, variable
