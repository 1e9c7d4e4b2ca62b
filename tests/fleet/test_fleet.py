"""Fleets over three real, independent clusters (tests/fleet/conftest.py): one
merged KUBECONFIG, three CAs, one cluster stopped in the middle of a run."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tests.conftest import run_tool
from tests.faultproxy import FaultProxy, issue_cert
from tests.fleet.conftest import NAMES, Fleet


def read_env(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["sh", "-c", f'. "{path}" && env -0'], capture_output=True, text=True, check=True
    ).stdout
    values = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    return {k: values[k] for k in ("APISERVER", "TOKEN", "CACERT", "NAMESPACE") if k in values}


def curl(url: str, token: str, cacert: str) -> subprocess.CompletedProcess[str]:
    """The user's check: curl with the token (from a file, not argv) and a CA file."""
    return subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
         "--cacert", cacert, "-H", "@-", url + "/api"],
        input=f"Authorization: Bearer {token}\n",
        capture_output=True,
        text=True,
    )  # fmt: skip


def test_fleet_clusters_are_independent(fleet: Fleet) -> None:
    cas = {name: fleet[name].ca_file.read_text() for name in NAMES}
    servers = {name: fleet[name].server for name in NAMES}
    assert len(set(cas.values())) == 3
    assert len(set(servers.values())) == 3
    for name in NAMES:
        config = fleet[name].config
        assert [c["name"] for c in config["clusters"]] == [name]
        assert [u["name"] for u in config["users"]] == [f"{name}-admin"]
        assert config["current-context"] == f"{name}-admin"
        status, _ = fleet[name].admin().request("GET", "/readyz")
        assert status == 200


def test_fleet_all_clusters_each_output_verifies_with_its_own_ca_only(
    fleet: Fleet, fleet_namespace: str, tmp_path: Path
) -> None:
    (tmp_path / "creds").mkdir()
    result = run_tool(
        "--all-clusters", "-n", fleet_namespace, "--out", "creds/{cluster}.env",
        env={"KUBECONFIG": fleet.kubeconfig}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "creds").glob("*.env")) == [
        "east.env",
        "north.env",
        "west.env",
    ]
    for name in NAMES:
        env = read_env(tmp_path / "creds" / f"{name}.env")
        assert env["APISERVER"] == fleet[name].server
        assert Path(env["CACERT"]).read_text() == fleet[name].ca_file.read_text()
        ok = curl(env["APISERVER"], env["TOKEN"], env["CACERT"])
        assert ok.stdout == "200", ok.stderr
        for other in NAMES:
            if other == name:
                continue
            wrong = curl(env["APISERVER"], env["TOKEN"], str(fleet[other].ca_file))
            assert wrong.returncode == 60, (name, other, wrong.stdout, wrong.stderr)
            assert "certificate" in wrong.stderr


def test_fleet_repeated_cluster_in_request_mode(
    fleet: Fleet, fleet_namespace: str, tmp_path: Path
) -> None:
    result = run_tool(
        "--cluster", "east", "--cluster", "north", "-n", fleet_namespace, "--mode", "request",
        "--out", "{cluster}.env", env={"KUBECONFIG": fleet.kubeconfig}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("*.env")) == ["east.env", "north.env"]
    for name in ("east", "north"):
        env = read_env(tmp_path / f"{name}.env")
        assert curl(env["APISERVER"], env["TOKEN"], env["CACERT"]).stdout == "200"


def test_fleet_cluster_stopped_mid_run_fails_alone(
    fleet: Fleet, fleet_namespace: str, tmp_path: Path
) -> None:
    """north's controller is stopped first, so north's run waits for its token;
    once its Secret exists (the run is under way) north's apiserver is stopped.
    east and west succeed; north fails; exit 10 and the summary says so."""
    north = fleet["north"]
    admin = north.admin()
    north.component("stop", "kube-controller-manager")
    stopper_done = threading.Event()
    stopped: list[float] = []

    def stop_north_apiserver_once_its_secret_exists() -> None:
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                try:
                    status, _ = admin.request(
                        "GET", f"/api/v1/namespaces/{fleet_namespace}/secrets/default-token"
                    )
                except Exception:
                    status = 0
                if status == 200:
                    north.component("stop", "kube-apiserver")
                    stopped.append(time.monotonic())
                    return
                time.sleep(0.05)
        finally:
            stopper_done.set()

    stopper = threading.Thread(target=stop_north_apiserver_once_its_secret_exists)
    (tmp_path / "creds").mkdir()
    try:
        stopper.start()
        began = time.monotonic()
        result = run_tool(
            "--all-clusters", "-n", fleet_namespace, "--out", "creds/{cluster}.env",
            "--timeout", "8", env={"KUBECONFIG": fleet.kubeconfig}, cwd=tmp_path,
        )  # fmt: skip
        ended = time.monotonic()
        stopper.join()
    finally:
        stopper_done.wait(35)
        north.component("start", "kube-apiserver")
        north.component("start", "kube-controller-manager")
    assert stopped, "north's token Secret never appeared"
    assert began < stopped[0] < ended  # really mid-run
    assert result.returncode == 10, result.stderr
    assert sorted(p.name for p in (tmp_path / "creds").glob("*.env")) == [
        "east.env",
        "west.env",
    ]
    summary = result.stderr[result.stderr.index("TARGET") :]
    assert re.search(r"^east\s+ok\s", summary, re.M), summary
    assert re.search(r"^west\s+ok\s", summary, re.M), summary
    assert re.search(r"^north\s+FAILED\s", summary, re.M), summary
    assert "2 of 3 ok" in summary
    for name in ("east", "west"):
        env = read_env(tmp_path / "creds" / f"{name}.env")
        assert curl(env["APISERVER"], env["TOKEN"], env["CACERT"]).stdout == "200"


def test_default_parallel_runs_a_remote_fleet_of_eight_at_once(
    fleet: Fleet, fleet_namespace: str, tmp_path: Path
) -> None:
    """Eight kubeconfig entries, each through a proxy that delays every request by
    250 ms (a far region), onto the three clusters. Waiting on the network costs no
    CPU, so the default --parallel (16) runs all eight at once: one process takes
    about as long as for one cluster, where --parallel 4 would take two rounds."""
    entries = []
    with ExitStack() as stack:
        for i in range(8):
            cluster = fleet[NAMES[i % 3]]
            pki = cluster.state / "pki"
            cert = issue_cert(pki / "ca.crt", pki / "ca.key", tmp_path / "certs" / cluster.name)
            proxy = stack.enter_context(
                FaultProxy(cluster.server, pki / "ca.crt", *cert,
                           upstream_client_cert=(pki / "admin.crt", pki / "admin.key"))
            )  # fmt: skip
            proxy.delay(0.25, window=600)
            entries.append((f"far{i + 1}", proxy.url, cluster))
        config: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [],
                                  "users": [], "contexts": []}  # fmt: skip
        for name, url, cluster in entries:
            real = cluster.config
            ca = real["clusters"][0]["cluster"]["certificate-authority-data"]
            config["clusters"].append(
                {"name": name, "cluster": {"server": url, "certificate-authority-data": ca}}
            )
            config["users"].append({"name": name, "user": real["users"][0]["user"]})
            config["contexts"].append({"name": name, "context": {"cluster": name, "user": name}})
        kubeconfig = tmp_path / "far.kubeconfig"
        kubeconfig.write_text(json.dumps(config))

        def timed(*names: str) -> float:
            clusters = [arg for name in names for arg in ("--cluster", name)]
            began = time.monotonic()
            result = run_tool(
                *clusters, "-n", fleet_namespace, "--mode", "request", "--out", "{cluster}.env",
                "--kubeconfig", str(kubeconfig), cwd=tmp_path,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            return time.monotonic() - began

        one = timed("far1")
        eight = timed(*(name for name, _, _ in entries))
    assert len(list(tmp_path.glob("far*.env"))) == 8
    assert eight < 1.5 * one, f"8 clusters took {eight:.1f} s, one took {one:.1f} s"
