"""Token pick-up latency for scripts/bench: how long after the token controller
writes the token into the Secret does `bootstrap-token` have it?

The write is observed independently of the tool: before each run, a watch on
the Secret (by name) is opened through the API server with the kubeconfig's
admin client certificate (plain http.client + ssl, one thread), and the
arrival time (time.time()) of the first watch event whose Secret carries
`data.token` is recorded. The tool, run with --debug, logs
`token picked up at <unix time> (unix time)` on stderr; both clocks are this
machine's wall clock, so

    latency = tool's pick-up time - watcher's arrival time.

The watcher has its own delay (etcd -> the API server's watch cache -> the HTTP
stream -> this thread), so the true delay after the controller's write is this
latency plus the watcher's delay: the figure is exact only up to that, and can
even be negative when the tool's GET (a quorum read) sees the token before the
watch event arrives.

Should the tool print no `token picked up at` line (an older version), the
arrival time at the bench of its stderr line `token controller filled Secret ...`
stands in for it (a slight overestimate: logging plus the pipe). Both are
recorded for every run.

Used by scripts/bench (`--pickup N`); also runnable alone:
    .venv/bin/python scripts/bench_pickup.py --n 5    (dev cluster must be up)
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PICKED_UP = re.compile(r"token picked up at ([0-9]+(?:\.[0-9]+)?)")
FILLED = re.compile(r"token controller filled Secret (\S+)/(\S+) after ([0-9.]+) ms")


class PickupError(Exception):
    pass


# --- the API server, as the kubeconfig's admin ----------------------------------


@dataclass
class Admin:
    """Where the API server is and how to talk to it as the kubeconfig's user."""

    host: str
    port: int
    context: ssl.SSLContext

    @classmethod
    def from_kubeconfig(
        cls, path: str | Path, keydir: Path, context_name: str | None = None
    ) -> Admin:
        """Client cert and key (inline or files) of the current (or named) context.
        Inline ones are written to `keydir`, which must be private (mode 0700)."""
        text = Path(path).read_text()
        try:
            config = json.loads(text)
        except ValueError:
            import yaml  # the tool's own dependency, so it is in .venv

            config = yaml.safe_load(text)
        name = context_name or config.get("current-context")
        ctx = _named(config, "contexts", name)["context"]
        cluster = _named(config, "clusters", ctx["cluster"])["cluster"]
        user = _named(config, "users", ctx["user"])["user"]
        url = urllib.parse.urlsplit(cluster["server"])
        if url.scheme != "https":
            raise PickupError(f"the watcher expects an https server, got {cluster['server']}")

        def material(key: str, suffix: str) -> str | None:
            if user.get(f"{key}-data") or cluster.get(f"{key}-data"):
                data = base64.b64decode(user.get(f"{key}-data") or cluster[f"{key}-data"])
                file = keydir / f"watch-{suffix}"
                fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                return str(file)
            value = user.get(key) or cluster.get(key)
            return str(value) if value else None

        ca = material("certificate-authority", "ca.crt")
        cert = material("client-certificate", "client.crt")
        key = material("client-key", "client.key")
        if not (cert and key):
            raise PickupError("the watcher needs a client certificate and key in the kubeconfig")
        context = ssl.create_default_context(cafile=ca)
        context.verify_flags &= ~ssl.VERIFY_X509_STRICT  # as the tool does (Python 3.13)
        context.load_cert_chain(cert, key)
        return cls(url.hostname or "127.0.0.1", url.port or 443, context)

    def connect(self, timeout: float = 10.0) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=timeout
        )


def _named(config: dict[str, Any], section: str, name: str | None) -> dict[str, Any]:
    for item in config.get(section) or []:
        if item.get("name") == name:
            return dict(item)
    raise PickupError(f"kubeconfig: no {section[:-1]} named {name!r}")


class SecretWatch:
    """A watch on one Secret by name; records when events arrive."""

    def __init__(self, admin: Admin, namespace: str, name: str) -> None:
        self.admin = admin
        self.namespace = namespace
        self.name = name
        self.events: list[tuple[float, str, bool]] = []  # (arrival, type, has token)
        self.token_at: float | None = None
        self.token_seen = threading.Event()
        self.error: str | None = None
        self._conn: http.client.HTTPSConnection | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Returns once the API server has answered the watch (its headers are in),
        i.e. once the watch is registered: events from then on are delivered."""
        base = f"/api/v1/namespaces/{self.namespace}/secrets"
        selector = urllib.parse.quote(f"metadata.name={self.name}", safe="")
        conn = self.admin.connect()
        self._conn = conn
        # The list's resourceVersion makes the watch start exactly there, so no
        # event can fall between the two requests.
        conn.request("GET", f"{base}?fieldSelector={selector}&limit=1")
        listing = conn.getresponse()
        body = listing.read()
        if listing.status != 200:
            raise PickupError(f"list secrets: HTTP {listing.status}: {body[:200]!r}")
        rv = json.loads(body)["metadata"]["resourceVersion"]
        conn.request("GET", f"{base}?watch=1&fieldSelector={selector}&resourceVersion={rv}")
        response = conn.getresponse()
        if response.status != 200:
            raise PickupError(f"watch secrets: HTTP {response.status}: {response.read(200)!r}")
        conn.sock.settimeout(None)  # a watch may be quiet for a while
        self._thread = threading.Thread(target=self._read, args=(response,), daemon=True)
        self._thread.start()

    def _read(self, response: http.client.HTTPResponse) -> None:
        try:
            while True:
                line = response.readline()
                arrived = time.time()
                if not line:
                    return
                event = json.loads(line)
                data = (event.get("object") or {}).get("data") or {}
                has_token = bool(data.get("token"))
                self.events.append((arrived, event.get("type", "?"), has_token))
                if has_token and event.get("type") == "MODIFIED" and self.token_at is None:
                    self.token_at = arrived
                    self.token_seen.set()
        except Exception as e:  # the socket closed under us (stop()), or garbage
            if self._conn is not None:
                self.error = f"{type(e).__name__}: {e}"
        finally:
            self.token_seen.set()

    def added_at(self) -> float | None:
        return next((t for t, kind, _ in self.events if kind == "ADDED"), None)

    def stop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                if conn.sock is not None:
                    conn.sock.shutdown(2)
            conn.close()
        if self._thread is not None:
            self._thread.join(timeout=2)


# --- one run of the tool, its stderr lines timestamped --------------------------------


def run_timestamped(
    argv: Sequence[str], env: dict[str, str], cwd: Path, timeout: float = 60.0
) -> tuple[int, list[tuple[float, str]], float]:
    """Run argv with stderr piped; each stderr line with its arrival time.time().
    Returns (exit code, lines, wall seconds)."""
    lines: list[tuple[float, str]] = []
    began = time.perf_counter()
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    assert process.stderr is not None
    for raw in iter(process.stderr.readline, b""):
        lines.append((time.time(), raw.decode(errors="replace").rstrip("\n")))
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        code = process.wait()
    return code, lines, time.perf_counter() - began


@dataclass
class Pickup:
    service_account: str
    latency_ms: float  # pick-up minus the watch event's arrival
    source: str  # "tool" (its `token picked up at` line) or "stderr" (arrival of its log line)
    tool_minus_watch_ms: float | None  # from the tool's own line, when printed
    stderr_minus_watch_ms: float  # from the arrival of "token controller filled ..."
    watch_fill_ms: float | None  # ADDED -> MODIFIED with token, as the watcher saw it
    tool_fill_ms: float  # the tool's "filled ... after X ms"
    wall_ms: float


def measure(
    tool: Sequence[str],
    admin: Admin,
    namespace: str,
    service_account: str,
    out: Path,
    env: dict[str, str],
    cwd: Path,
) -> Pickup:
    """Issue one token with --debug while watching its Secret; see the module doc."""
    secret = f"{service_account}-token"  # the tool's default --secret
    watch = SecretWatch(admin, namespace, secret)
    watch.start()
    try:
        argv = [
            *tool, "-n", namespace, "--service-account", service_account,
            "--out", str(out), "--debug",
        ]  # fmt: skip
        code, lines, wall = run_timestamped(argv, env, cwd)
        if code != 0:
            tail = "\n".join(text for _, text in lines[-8:])
            raise PickupError(f"pick-up run {service_account} failed (exit {code}):\n{tail}")
        if not watch.token_seen.wait(timeout=10) or watch.token_at is None:
            raise PickupError(
                f"pick-up run {service_account}: the watch saw no token "
                f"(events {[(k, t) for _, k, t in watch.events]}, error {watch.error})"
            )
    finally:
        watch.stop()
    tool_at = filled_at = None
    tool_fill = None
    for arrived, text in lines:
        if tool_at is None and (m := PICKED_UP.search(text)):
            tool_at = float(m.group(1))
        if filled_at is None and (m := FILLED.search(text)):
            if (m.group(1), m.group(2)) != (namespace, secret):
                raise PickupError(f"the tool filled {m.group(1)}/{m.group(2)}, not {secret}")
            filled_at, tool_fill = arrived, float(m.group(3))
    if filled_at is None or tool_fill is None:
        raise PickupError(f"pick-up run {service_account}: no 'token controller filled' line")
    added = watch.added_at()
    from_tool = None if tool_at is None else 1000 * (tool_at - watch.token_at)
    from_stderr = 1000 * (filled_at - watch.token_at)
    return Pickup(
        service_account=service_account,
        latency_ms=round(from_tool if from_tool is not None else from_stderr, 2),
        source="tool" if from_tool is not None else "stderr",
        tool_minus_watch_ms=None if from_tool is None else round(from_tool, 2),
        stderr_minus_watch_ms=round(from_stderr, 2),
        watch_fill_ms=None if added is None else round(1000 * (watch.token_at - added), 2),
        tool_fill_ms=tool_fill,
        wall_ms=round(1000 * wall, 1),
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(values: Sequence[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 2),
        "median": round(statistics.median(values), 2),
        "p90": round(percentile(values, 0.9), 2),
        "max": round(max(values), 2),
    }


def summary(runs: Sequence[Pickup]) -> dict[str, Any]:
    def of(attr: str) -> dict[str, float] | None:
        values = [getattr(r, attr) for r in runs if getattr(r, attr) is not None]
        return summarize(values) if values else None

    sources = sorted({r.source for r in runs})
    return {
        "n": len(runs),
        "source": "+".join(sources),
        "latency_ms": of("latency_ms"),
        "tool_minus_watch_ms": of("tool_minus_watch_ms"),
        "stderr_minus_watch_ms": of("stderr_minus_watch_ms"),
        "watch_fill_ms": of("watch_fill_ms"),
        "tool_fill_ms": of("tool_fill_ms"),
        "runs": [asdict(r) for r in runs],
    }


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5)
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parent.parent
    kubeconfig = repo / ".dev-cluster" / "kubeconfig"
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    namespace = f"pickup-{os.urandom(3).hex()}"
    subprocess.run(
        ["kubectl", "create", "namespace", namespace], env=env, check=True, capture_output=True
    )
    tmp = Path(tempfile.mkdtemp(prefix="bootstrap-pickup-"))
    try:
        admin = Admin.from_kubeconfig(kubeconfig, tmp)
        venv = repo / ".venv-bench" if (repo / ".venv-bench").exists() else repo / ".venv"
        tool = [str(venv / "bin" / "bootstrap-token"), "--cluster", "dev"]
        runs = []
        for i in range(1, args.n + 1):
            run = measure(tool, admin, namespace, f"p-{i}", tmp / f"p-{i}.env", env, tmp)
            print(json.dumps(asdict(run)), flush=True)
            runs.append(run)
        result = summary(runs)
        result.pop("runs")
        print(json.dumps(result, indent=2))
    finally:
        subprocess.run(
            ["kubectl", "delete", "namespace", namespace, "--wait=false"],
            env=env,
            capture_output=True,
        )
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
