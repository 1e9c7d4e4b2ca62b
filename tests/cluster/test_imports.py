"""The bootstrap modules a plain issue run imports (env output, a token-less admin with a
client certificate, no proxy, no exec plugin), pinned as a literal set: a new import on
the path every user takes is seen in review, and the formats, commands and transports it
does not use stay out (docs/architecture.md, "Import where used"). Not a timed test:
scripts/bench measures what the imports cost."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import DevCluster

PLAIN_ISSUE = {
    "bootstrap",
    "bootstrap.commands",
    "bootstrap.commands.boundary",
    "bootstrap.commands.check",
    "bootstrap.commands.cli",
    "bootstrap.commands.flags",
    "bootstrap.commands.group",
    "bootstrap.commands.help",
    "bootstrap.commands.jobs",
    "bootstrap.commands.list",
    "bootstrap.commands.options",
    "bootstrap.commands.sweep",
    "bootstrap.console",
    "bootstrap.errors",
    "bootstrap.inputs",
    "bootstrap.kube",
    "bootstrap.kube.client",
    "bootstrap.kube.credentials",
    "bootstrap.kube.endpoint",
    "bootstrap.kube.failures",
    "bootstrap.kube.http1",
    "bootstrap.kube.incluster",
    "bootstrap.kube.kubeconfig",
    "bootstrap.kube.target",
    "bootstrap.kube.transport",
    "bootstrap.outputs",
    "bootstrap.outputs.emit",
    "bootstrap.outputs.files",
    "bootstrap.outputs.paths",
    "bootstrap.outputs.write",
    "bootstrap.redact",
    "bootstrap.run",
    "bootstrap.sanitize",
    "bootstrap.steps",
    "bootstrap.steps.apply",
    "bootstrap.steps.connect",
    "bootstrap.steps.manifests",
    "bootstrap.steps.options",
    "bootstrap.steps.plan",
    "bootstrap.steps.powers",
    "bootstrap.steps.tokenrequest",
    "bootstrap.steps.verify",
    "bootstrap.steps.wait",
}

NEVER_ON_THE_PLAIN_PATH = {
    "bootstrap.killpoint",
    "bootstrap.steps.sweep",
    "bootstrap.api",
    "bootstrap.commands.fleet",
    "bootstrap.steps.rules",
    "bootstrap.kube.exec_plugin",
    "bootstrap.kube.proxies",
    "bootstrap.kube.retry",
    "bootstrap.outputs.check",
    "bootstrap.outputs.deliver",
    "bootstrap.outputs.lock",
    "bootstrap.outputs.readback",
    "bootstrap.outputs.renew",
    "bootstrap.steps.inventory",
    "bootstrap.steps.revoke",
}


# Libraries a plain run does without: http.client (and the email package it parses
# header fields with) gave way to kube/http1.py; tenacity is imported only to retry
# or to poll when the watch for the token gave nothing.
OTHERS_NEVER_ON_THE_PLAIN_PATH = {"http.client", "email.parser", "email", "tenacity"}


def all_imported(stderr: str) -> set[str]:
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \| *(\S+)$", stderr, re.M))


def imported_modules(stderr: str) -> set[str]:
    return {n for n in all_imported(stderr) if n == "bootstrap" or n.startswith("bootstrap.")}


def test_a_plain_issue_run_imports_exactly_these_modules(
    dev_cluster: DevCluster, namespace: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["KUBECONFIG"] = str(dev_cluster.kubeconfig)
    process = subprocess.run(
        [
            *(sys.executable, "-X", "importtime", "-m", "bootstrap", "--cluster", "dev"),
            *("-n", namespace, "--service-account", "plain", "--quiet"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr[-2000:]
    assert (tmp_path / "plain@dev.env").is_file()
    imported = imported_modules(process.stderr)
    assert imported & NEVER_ON_THE_PLAIN_PATH == set()
    assert imported - {"bootstrap.__main__"} == PLAIN_ISSUE
    assert all_imported(process.stderr) & OTHERS_NEVER_ON_THE_PLAIN_PATH == set()
