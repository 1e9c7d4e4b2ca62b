"""The environment of a run: venvs, the wheel under test, matplotlib, the dev cluster,
the machine description."""

from __future__ import annotations

import datetime
import hashlib
import importlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_lib.common import (
    BENCH_VENV,
    REPO,
    SETUP_DONE_ENV,
    TOOL,
    VENV,
    VENV_PYTHON,
    BenchError,
    say,
)
from bench_lib.runner import simple


def ensure_venv(argv: list[str]) -> None:
    """Install the project (scripts/setup) and re-run this script with .venv/bin/python."""
    if os.environ.get(SETUP_DONE_ENV) != "1":
        say("scripts/setup")
        if subprocess.run([str(REPO / "scripts" / "setup")]).returncode != 0:
            raise BenchError("scripts/setup failed")
    if Path(sys.prefix).resolve() != VENV.resolve():
        env = dict(os.environ, **{SETUP_DONE_ENV: "1"})
        os.execve(VENV_PYTHON, [str(VENV_PYTHON), str(REPO / "scripts" / "bench"), *argv], env)


def install_tool_as_a_wheel() -> None:
    """(Re)install the project non-editable into .venv-bench when its sources changed."""
    sources = [REPO / "pyproject.toml", *sorted((REPO / "bootstrap").rglob("*.py"))]
    sources += sorted((REPO / "manifests").glob("*.yaml"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    stamp = BENCH_VENV / f".installed-{digest}"
    if stamp.exists():
        return
    say("installing bootstrap-token from a wheel into .venv-bench (as users get it)")
    args = ["--no-deps", "--force-reinstall", str(REPO)]
    if not (BENCH_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        args = [str(REPO)]  # the first time, with the dependencies
    pip = [str(BENCH_VENV / "bin" / "python"), "-m", "pip", "install", "-q", *args]
    if subprocess.run(pip, capture_output=True).returncode != 0:
        raise BenchError("installing the wheel into .venv-bench failed")
    for old_stamp in BENCH_VENV.glob(".installed-*"):
        old_stamp.unlink()
    stamp.touch()


def ensure_matplotlib() -> bool:
    """Whether matplotlib is importable, installing it into .venv if it is not."""
    if importlib.util.find_spec("matplotlib") is not None:
        return True
    say("installing matplotlib into .venv (the optional 'bench' dependency)")
    pip = [str(VENV_PYTHON), "-m", "pip", "install", "-q", "matplotlib>=3.8"]
    if subprocess.run(pip).returncode != 0:
        say("could not install matplotlib: results are written, but no bench.png")
        return False
    importlib.invalidate_caches()
    if importlib.util.find_spec("matplotlib") is None:
        say("matplotlib was installed but is not importable: no bench.png")
        return False
    return True


def dev_cluster_kubeconfig() -> str:
    result = subprocess.run(
        [str(REPO / "scripts" / "dev-cluster"), "up"], stdout=subprocess.PIPE, text=True
    )
    if result.returncode != 0:
        raise BenchError("scripts/dev-cluster up failed (see above)")
    for line in result.stdout.splitlines():
        if line.startswith("export KUBECONFIG="):
            return line.split("=", 1)[1].strip().strip("'\"")
    raise BenchError(f"no `export KUBECONFIG=` line from scripts/dev-cluster up: {result.stdout!r}")


def cluster_pids() -> dict[str, str]:
    """The dev cluster's component pids (`scripts/dev-cluster status`): a change
    means someone restarted a component during the run."""
    result = subprocess.run(
        [str(REPO / "scripts" / "dev-cluster"), "status"], capture_output=True, text=True
    )
    pids = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "pid":
            pids[fields[0]] = fields[3]
    return pids


def code_fingerprint() -> str:
    """A hash of bootstrap/'s sources, to notice the tool changing during a run."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "bootstrap").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def delete_namespace(namespace: str, env: dict[str, str], attempts: int = 15) -> None:
    """Delete the run's namespace without waiting for it to go; retry for a while,
    since on the shared dev cluster the apiserver may be restarting."""
    for attempt in range(attempts):
        result = subprocess.run(
            ["kubectl", "delete", "namespace", namespace, "--wait=false", "--ignore-not-found"],
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode == 0:
            return
        if attempt < attempts - 1:
            time.sleep(2)
    say(
        f"warning: could not delete namespace {namespace} "
        f"({(result.stderr.strip().splitlines() or ['no output'])[-1]}); "
        f"delete it with: kubectl delete namespace {namespace}"
    )


def machine(env: dict[str, str]) -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions = json.loads(
        subprocess.run(
            ["kubectl", "version", "-o", "json"], capture_output=True, text=True, env=env
        ).stdout
        or "{}"
    )
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "bootstrap"], capture_output=True, text=True
    )
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "kubectl_client": versions.get("clientVersion", {}).get("gitVersion", "unknown"),
        "kubernetes_server": versions.get("serverVersion", {}).get("gitVersion", "unknown"),
        "bootstrap_token": simple([TOOL, "--version"]).strip(),
        "git_head": head.stdout.strip() or "unknown",
        "bootstrap_dirty": bool(dirty.stdout.strip()),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        "bootstrap_fingerprint": code_fingerprint(),
        "cluster_pids": cluster_pids(),
    }
