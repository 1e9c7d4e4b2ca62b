"""Fleets at a distance (`scripts/bench --fleet`): one bootstrap-token process for
N clusters, each reached through a fault proxy (tests/faultproxy.py) that delays
every request (50 ms by default, like a remote region), against the sequential
shell loop a user would write (scripts/bench_fleet_loop.sh: `kubectl create
serviceaccount` + `kubectl create token` per cluster).

The clusters are three real, independent dev clusters (`east`, `west`, `north`
in .dev-fleet/, as tests/fleet uses them; reused if running, left running). N
kubeconfig entries `r01`..`rNN` each go through a proxy of their own to cluster
i mod 3, with that cluster's CA and admin certificate. Each run gets a fresh
namespace on the three clusters (not timed), so nothing is reused from an
earlier run. Entries that share a real cluster share the namespace and the
ServiceAccount name: they run the same requests concurrently, and one of them
creates what the others then find.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench_lib.common import REPO, TOOL, BenchError, say
from bench_lib.runner import Run, Runner, check, simple
from bench_lib.tables import table

REAL = ("east", "west", "north")
FLEET_DIR = REPO / ".dev-fleet"
LOOP = REPO / "scripts" / "bench_fleet_loop.sh"
SA = "fleet"


def fleet_up() -> dict[str, Path]:
    """Start (or reuse) the three real clusters; their state directories."""
    states = {}
    for name in REAL:
        env = dict(os.environ, DEV_CLUSTER_DIR=str(FLEET_DIR / name), DEV_CLUSTER_NAME=name)
        result = subprocess.run(
            [str(REPO / "scripts" / "dev-cluster"), "up"], env=env, stdout=subprocess.PIPE
        )
        if result.returncode != 0:
            raise BenchError(f"scripts/dev-cluster up ({name}) failed (see above)")
        states[name] = FLEET_DIR / name
    return states


def start_proxies(
    stack: ExitStack, states: dict[str, Path], n: int, delay_s: float, tmp: Path
) -> list[tuple[str, str, str]]:
    """n delaying proxies; (entry name, proxy URL, real cluster) for each."""
    sys.path.insert(0, str(REPO))
    from tests.faultproxy import FaultProxy, issue_cert

    certs = {
        name: issue_cert(state / "pki" / "ca.crt", state / "pki" / "ca.key", tmp / "certs" / name)
        for name, state in states.items()
    }
    entries = []
    for i in range(n):
        real = REAL[i % len(REAL)]
        pki = states[real] / "pki"
        upstream = json.loads((states[real] / "kubeconfig").read_text())["clusters"][0]
        proxy = FaultProxy(
            upstream["cluster"]["server"],
            pki / "ca.crt",
            *certs[real],
            upstream_client_cert=(pki / "admin.crt", pki / "admin.key"),
        )
        stack.enter_context(proxy)
        proxy.delay(delay_s, window=10**7)  # every request, for the whole run
        entries.append((f"r{i + 1:02d}", proxy.url, real))
    return entries


def write_kubeconfig(
    path: Path, entries: list[tuple[str, str, str]], states: dict[str, Path]
) -> None:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": e, "cluster": {"server": url, "certificate-authority-data": b64(states[r] / "pki" / "ca.crt")}}
            for e, url, r in entries
        ],
        "users": [
            {"name": f"{r}-admin", "user": {
                "client-certificate-data": b64(states[r] / "pki" / "admin.crt"),
                "client-key-data": b64(states[r] / "pki" / "admin.key")}}
            for r in REAL
        ],
        "contexts": [{"name": e, "context": {"cluster": e, "user": f"{r}-admin"}} for e, _, r in entries],
        "current-context": entries[0][0],
    }  # fmt: skip
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)


class FleetBench:
    def __init__(
        self, runner: Runner, states: dict[str, Path], tmp: Path, names: list[str]
    ) -> None:
        self.runner = runner
        self.states = states
        self.tmp = tmp
        self.names = names  # every kubeconfig entry, r01..rNN
        self.namespaces: list[str] = []
        self.prefix = f"bench-fleet-{secrets.token_hex(3)}"

    def admin_env(self, real: str) -> dict[str, str]:
        return dict(os.environ, KUBECONFIG=str(self.states[real] / "kubeconfig"))

    def fresh_namespace(self) -> str:
        name = f"{self.prefix}-{len(self.namespaces) + 1}"
        for real in REAL:
            simple(["kubectl", "create", "namespace", name], self.admin_env(real))
        self.namespaces.append(name)
        return name

    def cleanup(self) -> None:
        for real in REAL:
            for name in self.namespaces:
                subprocess.run(
                    ["kubectl", "delete", "namespace", name, "--wait=false", "--ignore-not-found"],
                    env=self.admin_env(real),
                    capture_output=True,
                )

    def tool(self, n: int, mode: str, parallel: int | None) -> Run:
        ns = self.fresh_namespace()
        out = self.tmp / ns
        out.mkdir()
        argv: list[str | Path] = [TOOL]
        for name in self.names[:n]:
            argv += ["--cluster", name]
        argv += [
            "-n",
            ns,
            "--service-account",
            SA,
            "--mode",
            mode,
            "--out",
            out / "{cluster}.env",
            "--quiet",
        ]
        if parallel is not None:
            argv += ["--parallel", str(parallel)]
        run = check(self.runner.run(argv, timeout=300), f"bootstrap-token, {n} clusters, {mode}")
        written = sorted(p.name for p in out.glob("*.env"))
        if written != [f"{name}.env" for name in self.names[:n]]:
            raise BenchError(f"bootstrap-token, {n} clusters: wrote {written}")
        self.verify(out / f"{self.names[n - 1]}.env")
        return run

    def verify(self, env_file: Path) -> None:
        script = 'source "$1" && curl -sS "$APISERVER/api" -H "Authorization: Bearer $TOKEN" --cacert "$CACERT"'
        run = self.runner.run(["bash", "-c", script, "verify", env_file])
        check(run, f"verifying {env_file.name}", "APIVersions" in run.stdout)

    def loop(self, n: int) -> Run:
        ns = self.fresh_namespace()
        out = self.tmp / ns
        out.mkdir()
        run = check(
            self.runner.run(["bash", LOOP, ns, SA, out, *self.names[:n]], timeout=600),
            f"kubectl loop, {n} clusters",
        )
        tokens = [p for p in out.glob("*.token") if p.read_text().strip()]
        if len(tokens) != n:
            raise BenchError(f"kubectl loop, {n} clusters: {len(tokens)} tokens")
        return run

    def measure(self, sizes: list[int], reps: int, sweep: list[int]) -> dict[str, Any]:
        say(f"fleet: warm-up (kubectl discovery caches, {len(self.names)} clusters; not counted)")
        self.loop(len(self.names))
        self.tool(len(self.names), "secret", None)
        rows = []
        for mode in ("secret", "request"):
            for n in sizes:
                tool_s, loop_s = [], []
                for rep in range(reps):
                    order = ("tool", "loop") if rep % 2 == 0 else ("loop", "tool")
                    for what in order:
                        if what == "tool":
                            tool_s.append(self.tool(n, mode, None).wall_s)
                        else:
                            loop_s.append(self.loop(n).wall_s)
                row = {"clusters": n, "mode": mode, "tool_s": tool_s, "loop_s": loop_s,
                       "tool_median_s": statistics.median(tool_s), "loop_median_s": statistics.median(loop_s)}  # fmt: skip
                rows.append(row)
                say(
                    f"fleet {mode}, {n} clusters: bootstrap-token {row['tool_median_s']:.2f} s, kubectl loop {row['loop_median_s']:.2f} s (median of {reps})"
                )
        swept: dict[str, dict[str, float]] = {}
        for mode in ("secret", "request"):
            for p in sweep:
                walls = [self.tool(max(sizes), mode, p).wall_s for _ in range(reps)]
                swept.setdefault(str(p), {})[mode] = statistics.median(walls)
                say(
                    f"fleet sweep, {max(sizes)} clusters, {mode}, --parallel {p}: {swept[str(p)][mode]:.2f} s"
                )
        return {"rows": rows, "sweep": swept}


def default_parallel() -> str:
    """The --parallel default of the installed tool, from its --help."""
    help_text = subprocess.run([str(TOOL), "--help"], capture_output=True, text=True).stdout
    flat = " ".join(help_text.split())
    marker = "--parallel INTEGER RANGE"
    tail = flat[flat.find(marker) :] if marker in flat else ""
    start = tail.find("[default: ")
    return tail[start + 10 : tail.find(";", start)].strip().rstrip("]") if start >= 0 else "?"


def render(results: dict[str, Any]) -> str:
    c = results["config"]
    rows = []
    for r in results["rows"]:
        one = next(
            x
            for x in results["rows"]
            if x["mode"] == r["mode"] and x["clusters"] == min(c["sizes"])
        )
        rows.append([str(r["clusters"]), r["mode"], f"{r['tool_median_s']:.2f}", f"{r['loop_median_s']:.2f}",
                     f"{r['loop_median_s'] / r['tool_median_s']:.1f}x", f"{r['tool_median_s'] / one['tool_median_s']:.2f}"])  # fmt: skip
    main = table(
        [
            "clusters",
            "mode",
            "bootstrap-token s",
            "kubectl loop s",
            "loop / tool",
            f"tool N / tool {min(c['sizes'])}",
        ],
        rows,
        [True, False, True, True, True, True],
    )
    sweep = table(
        ["--parallel", f"{max(c['sizes'])} clusters, secret mode, s", "request mode, s"],
        [[p, f"{s['secret']:.2f}", f"{s['request']:.2f}"] for p, s in results["sweep"].items()],
        [True, True, True],
    )
    return (
        f"### Fleet at {c['delay_ms']:.0f} ms per request\n\n`{c['command']}` on {c['date']} "
        f"(bootstrap-token's default --parallel {c['default_parallel']}; median of {c['reps']} "
        f"runs each, tool and loop interleaved; the whole run took {results['elapsed_s']:.0f} s)\n\n"
        f"{main}\n" + (f"\n{sweep}\n" if results["sweep"] else "")
    )


def run_fleet_bench(args: Any, command: str, rss_method: str) -> dict[str, Any]:
    import datetime
    import time

    began = time.perf_counter()
    states = fleet_up()
    tmp = Path(tempfile.mkdtemp(prefix="bootstrap-fleet-"))  # holds tokens: mode 0700
    n = max(args.fleet_sizes)
    with ExitStack() as stack:
        entries = start_proxies(stack, states, n, args.fleet_delay_ms / 1000, tmp)
        kubeconfig = tmp / "fleet.kubeconfig"
        write_kubeconfig(kubeconfig, entries, states)
        env = dict(os.environ, KUBECONFIG=str(kubeconfig))
        runner = Runner(tmp, env, rss_method)
        bench = FleetBench(runner, states, tmp, [e for e, _, _ in entries])
        try:
            measured = bench.measure(args.fleet_sizes, args.fleet_reps, args.fleet_sweep)
        finally:
            runner.kill_all()
            bench.cleanup()
    subprocess.run(["rm", "-rf", str(tmp)])
    return {
        "config": {
            "command": command,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "sizes": args.fleet_sizes,
            "delay_ms": args.fleet_delay_ms,
            "reps": args.fleet_reps,
            "default_parallel": default_parallel(),
            "loadavg_end": Path("/proc/loadavg").read_text().split()[:3],
        },
        **measured,
        "elapsed_s": round(time.perf_counter() - began, 1),
    }
