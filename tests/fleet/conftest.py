"""Three independent real clusters side by side (`east`, `west`, `north`): each its
own etcd, CA, service-account keys, token controller and ports, started by
scripts/dev-cluster with DEV_CLUSTER_DIR=.dev-fleet/NAME and DEV_CLUSTER_NAME=NAME.

Session scope: brought up once (in parallel), reused when already running, and
stopped at the end unless they were running before or KEEP_DEV_CLUSTER is set,
like the main dev cluster. The Kubernetes version is $K8S_VERSION, else the
default."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DEV_CLUSTER, REPO, Admin, DevCluster

NAMES = ("east", "west", "north")
FLEET_DIR = Path(os.environ.get("DEV_FLEET_DIR") or REPO / ".dev-fleet").resolve()


@dataclass
class FleetCluster(DevCluster):
    name: str = ""

    def env(self) -> dict[str, str]:
        return {**os.environ, "DEV_CLUSTER_DIR": str(self.state), "DEV_CLUSTER_NAME": self.name}

    def dev_cluster(self, *args: str) -> str:
        process = subprocess.run(
            [sys.executable, str(DEV_CLUSTER), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=1800,
        )
        if process.returncode != 0:
            pytest.fail(
                f"dev-cluster {' '.join(args)} ({self.name}) failed:\n{process.stderr[-4000:]}",
                pytrace=False,
            )
        return process.stdout

    def component(self, action: str, name: str) -> None:
        self.dev_cluster(action, name)

    def running(self) -> bool:
        return "running" in self.dev_cluster("status")


@dataclass
class Fleet:
    clusters: dict[str, FleetCluster]

    @property
    def kubeconfig(self) -> str:
        """The three kubeconfigs merged the kubectl way: a KUBECONFIG path list."""
        return os.pathsep.join(str(c.kubeconfig) for c in self.clusters.values())

    def __getitem__(self, name: str) -> FleetCluster:
        return self.clusters[name]


def _up(name: str) -> tuple[FleetCluster, bool]:
    cluster = FleetCluster(FLEET_DIR / name / "kubeconfig", FLEET_DIR / name, name)
    was_running = cluster.running()
    out = cluster.dev_cluster("up")
    match = re.search(r"^export KUBECONFIG=(.+)$", out, re.M)
    assert match, f"dev-cluster up printed no KUBECONFIG line: {out!r}"
    cluster.kubeconfig = Path(match.group(1))
    return cluster, was_running


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    with ThreadPoolExecutor(len(NAMES)) as pool:
        started = list(pool.map(_up, NAMES))
    yield Fleet({c.name: c for c, _ in started})
    if not os.environ.get("KEEP_DEV_CLUSTER"):
        for cluster, was_running in started:
            if not was_running:
                cluster.dev_cluster("down")


@pytest.fixture
def fleet_namespace(fleet: Fleet, request: pytest.FixtureRequest) -> Iterator[str]:
    """The same fresh namespace on every cluster of the fleet."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"f-{base}-{uuid.uuid4().hex[:5]}"
    admins = [c.admin() for c in fleet.clusters.values()]
    for admin in admins:
        status, body = admin.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        assert status == 201, body
    yield name
    for admin in admins:
        with contextlib.suppress(Exception):  # a cluster a test stopped may be restarting
            admin.request("DELETE", f"/api/v1/namespaces/{name}")


__all__ = ["NAMES", "Admin", "Fleet", "FleetCluster"]
