"""What is measured: the variants A, B, C and the phases (rounds, start-up, where the
time goes, pick-up latency, scale and the --parallel sweep)."""

from __future__ import annotations

import http.client
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import bench_pickup  # scripts/bench_pickup.py

from bench_lib.common import (
    CLUSTER,
    FLEET_FAILED,
    RECIPE_B,
    RECIPE_C,
    REPO,
    TOOL,
    VARIANTS,
    Arg,
    BenchError,
    say,
)
from bench_lib.runner import Run, Runner, check, grouped, simple
from bench_lib.stats import Summary, VariantResult


class Bench:
    def __init__(self, runner: Runner, namespace: str, tmp: Path, env: dict[str, str]) -> None:
        self.runner = runner
        self.ns = namespace
        self.tmp = tmp
        self.env = env
        self.failures: list[dict[str, Any]] = []  # partial failures of one-process runs
        self.extra_namespaces: list[str] = []  # the scale runs' own, deleted at the end

    def fresh_namespace(self, tag: str) -> str:
        """A new empty namespace for one scale run (not timed). The tool LISTs the
        namespace's bootstrap-token Secrets on every run, so a namespace already
        holding hundreds of tokens from earlier phases would slow each run down."""
        name = f"{self.ns}-{tag}"
        simple(["kubectl", "create", "namespace", name], self.env)
        self.extra_namespaces.append(name)
        return name

    # Variants. Each returns the measured Run; any check of the result is done
    # here too, after the timed region.

    def variant_a(self, sa: str) -> Run:
        run = check(self.runner.run(self.tool_argv(sa)), f"A ({sa})")
        self.verify_env_file(self.tmp / f"{sa}.env", f"A ({sa})")
        return run

    def variant_b(self, sa: str) -> Run:
        run = self.runner.run(["bash", RECIPE_B, self.ns, sa])
        return check(run, f"B ({sa})", "APIVersions" in run.stdout)

    def variant_c(self, sa: str) -> Run:
        run = self.runner.run(["bash", RECIPE_C, self.ns, sa])
        return check(run, f"C ({sa})", "APIVersions" in run.stdout)

    def verify_env_file(self, env_file: Path, what: str) -> None:
        """Source the env file and call /api with the token, TLS verified."""
        script = (
            'source "$1" && curl -sS "$APISERVER/api" '
            '-H "Authorization: Bearer $TOKEN" --cacert "$CACERT"'
        )
        if not env_file.is_file():
            raise BenchError(f"{what}: no env file {env_file}")
        run = self.runner.run(["bash", "-c", script, "verify", env_file])
        check(run, f"{what}: verifying {env_file.name}", "APIVersions" in run.stdout)

    def control(self) -> None:
        """Show that the check discriminates: a bogus token must not reach /api."""
        server = simple(
            [
                "kubectl",
                "config",
                "view",
                "--minify",
                "-o",
                "jsonpath={.clusters[0].cluster.server}",
            ],
            self.env,
        ).strip()
        run = self.runner.run(
            ["curl", "-s", f"{server}/api", "-H", "Authorization: Bearer not-a-token", "--insecure"]
        )
        if "APIVersions" in run.stdout:
            raise BenchError("a bogus token got /api: the 'APIVersions' check proves nothing")

    # Phases.

    def rounds(self, n: int, warmup: int) -> tuple[dict[str, VariantResult], list[dict[str, Any]]]:
        results = {key: VariantResult(label) for key, label in VARIANTS.items()}
        per_round: list[dict[str, Any]] = []
        do: dict[str, Callable[[str], Run]] = {
            "A": self.variant_a,
            "B": self.variant_b,
            "C": self.variant_c,
        }
        keys = list(VARIANTS)
        tags = [f"w{i}" for i in range(1, warmup + 1)] + [str(i) for i in range(1, n + 1)]
        for index, tag in enumerate(tags):
            shift = index % len(keys)
            order = keys[shift:] + keys[:shift]
            runs = {key: do[key](f"{key.lower()}-{tag}") for key in order}
            line = ", ".join(f"{k} {1000 * runs[k].wall_s:.0f} ms" for k in keys)
            if tag.startswith("w"):
                say(f"warm-up {tag[1:]}/{warmup} ({''.join(order)}): {line} (not counted)")
                continue
            for key in keys:
                results[key].add(runs[key])
            sleeps = runs["B"].stderr.count("waiting for token")
            per_round.append(
                {
                    "round": int(tag),
                    "order": "".join(order),
                    "wall_ms": {k: round(1000 * runs[k].wall_s, 1) for k in keys},
                    "maxrss_mib": {k: round(runs[k].maxrss_kib / 1024, 1) for k in keys},
                    "b_sleeps": sleeps,
                }
            )
            say(
                f"round {tag}/{n} ({''.join(order)}): {line}"
                + (f" (B slept {sleeps} s)" if sleeps else "")
            )
        return results, per_round

    def startup(self, runs: int) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for flag in ("--help", "--version"):
            walls = [
                1000 * check(self.runner.run([TOOL, flag]), f"bootstrap-token {flag}").wall_s
                for _ in range(runs)
            ]
            out[flag] = asdict(Summary.of(walls))
            say(f"bootstrap-token {flag}: median {statistics.median(walls):.0f} ms of {runs}")
        # The one-file build (scripts/package), as CI jobs run it: the base interpreter
        # in isolated mode, nothing installed (a venv's python would see .venv's packages).
        pyz = self.tmp / "bootstrap-token.pyz"
        simple([REPO / "scripts" / "package", pyz], self.env)
        python = Path(sys.base_prefix) / "bin" / "python3"
        for flag in ("--help", "--version"):
            walls = [
                1000 * check(self.runner.run([python, "-I", pyz, flag]), f"pyz {flag}").wall_s
                for _ in range(runs)
            ]
            out[f"pyz {flag}"] = asdict(Summary.of(walls))
            say(f"python3 -I bootstrap-token.pyz {flag}: median {statistics.median(walls):.0f} ms")
        return out

    def phases(self, runs: int) -> dict[str, Any]:
        """Where A's time goes: `--debug` runs, parsing the tool's `timings:` line
        (`startup X ms, kubeconfig X ms, ...; total X ms`)."""
        per_run: list[dict[str, float]] = []
        walls: list[float] = []
        for i in range(1, runs + 1):
            sa = f"d-{i}"
            argv = [*self.tool_argv(sa), "--debug"]
            run = check(self.runner.run(argv), f"phases ({sa})")
            line = next((x for x in run.stderr.splitlines() if "timings:" in x), None)
            if line is None:
                raise BenchError(f"phases ({sa}): no 'timings:' line in the --debug output")
            steps, _, total = line.split("timings:", 1)[1].partition(";")
            parsed = {m[1]: float(m[2]) for m in re.finditer(r"(\w+) ([0-9.]+) ms", steps)}
            found = re.search(r"total ([0-9.]+) ms", total)
            if not parsed or found is None:
                raise BenchError(f"phases ({sa}): cannot parse {line!r}")
            parsed["total"] = float(found[1])
            per_run.append(parsed)
            walls.append(1000 * run.wall_s)
        names = list(dict.fromkeys(k for r in per_run for k in r))
        medians = {k: statistics.median(r.get(k, 0.0) for r in per_run) for k in names}
        say(
            f"phases (median of {runs} --debug runs): "
            + ", ".join(f"{k} {v:.0f} ms" for k, v in medians.items())
        )
        return {
            "runs": runs,
            "median_ms": medians,
            "process_wall_median_ms": round(statistics.median(walls), 1),
            "per_run": per_run,
        }

    def pickup(self, n: int) -> dict[str, Any]:
        """Token pick-up latency over n fresh ServiceAccounts (scripts/bench_pickup.py)."""
        try:
            admin = bench_pickup.Admin.from_kubeconfig(self.env["KUBECONFIG"], self.tmp)
        except (bench_pickup.PickupError, OSError, KeyError, ValueError) as e:
            raise BenchError(f"pick-up: cannot set up the watcher from the kubeconfig: {e}") from e
        runs = []
        for i in range(1, n + 1):
            sa = f"u-{i}"
            try:
                run = bench_pickup.measure(
                    [str(TOOL), "--cluster", CLUSTER],
                    admin,
                    self.ns,
                    sa,
                    self.tmp / f"{sa}.env",
                    self.env,
                    self.tmp,
                )
            except (bench_pickup.PickupError, OSError, http.client.HTTPException) as e:
                raise BenchError(f"pick-up ({sa}): {e}") from e
            self.verify_env_file(self.tmp / f"{sa}.env", f"pick-up ({sa})")
            runs.append(run)
        result = bench_pickup.summary(runs)
        lat = result["latency_ms"]
        say(
            f"pick-up latency over {n} runs (source: {result['source']}): "
            f"min {lat['min']:.1f}, median {lat['median']:.1f}, p90 {lat['p90']:.1f}, "
            f"max {lat['max']:.1f} ms"
        )
        return result

    def scale(self, ks: Sequence[int], parallel: int) -> list[dict[str, Any]]:
        """K tokens: one process with K --service-account (parallel P) vs. K
        sequential one-token processes."""
        rows: list[dict[str, Any]] = []
        for index, k in enumerate(ks):
            modes = ["one", "sequential"]
            if index % 2:
                modes.reverse()
            row: dict[str, Any] = {"k": k, "parallel": parallel}
            for mode in modes:
                names = [f"k{k}{mode[0]}-{j}" for j in range(1, k + 1)]
                ns = self.fresh_namespace(f"k{k}{mode[0]}")
                if mode == "one":
                    run, failed = self.one_process(names, parallel, f"scale K={k} one process", ns)
                    row["one_s"] = round(run.wall_s, 3)
                    row["one_maxrss_mib"] = round(run.maxrss_kib / 1024, 1)
                    row["one_failed"] = failed
                else:
                    began = time.perf_counter()
                    runs = [self.runner.run(self.tool_argv(name, ns)) for name in names]
                    row["sequential_s"] = round(time.perf_counter() - began, 3)
                    failed = {
                        name: f"exit {r.returncode}: "
                        + ((r.stderr.strip().splitlines() or ["no output"])[-1])
                        for name, r in zip(names, runs, strict=True)
                        if r.returncode != 0
                    }
                    row["sequential_failed"] = failed
                    if failed:
                        say(
                            f"warning: scale K={k} sequential: {len(failed)} of {k} tokens FAILED: "
                            + grouped(failed)
                        )
                        self.failures.append({"what": f"scale K={k} sequential", "failed": failed})
                    row["sequential_process_median_ms"] = round(
                        statistics.median(1000 * r.wall_s for r in runs), 1
                    )
                    row["sequential_maxrss_mib"] = round(max(r.maxrss_kib for r in runs) / 1024, 1)
                self.check_env_files(names, f"scale K={k} {mode}", ns, failed=list(failed))
            rows.append(row)
            say(
                f"scale K={k}: one process (parallel {parallel}) {row['one_s']:.2f} s, "
                f"{k} sequential processes {row['sequential_s']:.2f} s"
            )
        return rows

    def sweep(self, k: int, parallels: Sequence[int], reps: int) -> dict[str, Any]:
        """One process with k ServiceAccounts at each --parallel P, interleaved."""
        walls: dict[int, list[float]] = {p: [] for p in parallels}
        failures: dict[int, int] = {p: 0 for p in parallels}
        for rep in range(1, reps + 1):
            order = list(parallels) if rep % 2 else list(reversed(parallels))
            for p in order:
                names = [f"w{p}r{rep}-{j}" for j in range(1, k + 1)]
                ns = self.fresh_namespace(f"w{p}r{rep}")
                what = f"sweep K={k} parallel {p} (run {rep})"
                run, failed = self.one_process(names, p, what, ns)
                failures[p] += len(failed)
                self.check_env_files(names, what, ns, sample=1, failed=list(failed))
                walls[p].append(round(run.wall_s, 3))
        medians = {p: statistics.median(w) for p, w in walls.items()}
        best = min(medians, key=lambda p: medians[p])
        say(
            f"parallel sweep, K={k}, {reps} run(s) each: "
            + ", ".join(f"P={p} {medians[p]:.2f} s" for p in parallels)
            + f" -> best P={best}"
        )
        return {
            "k": k,
            "reps": reps,
            "walls_s": {str(p): w for p, w in walls.items()},
            "median_s": {str(p): m for p, m in medians.items()},
            "failed_tokens": {str(p): f for p, f in failures.items()},
            "best": best,
        }

    def tool_argv(self, sa: str, ns: str | None = None) -> list[Arg]:
        return [
            TOOL,
            "--cluster",
            CLUSTER,
            "-n",
            ns or self.ns,
            "--service-account",
            sa,
            "--out",
            self.tmp / f"{sa}.env",
            "--quiet",
        ]

    def one_process(
        self, names: Sequence[str], parallel: int, what: str, ns: str
    ) -> tuple[Run, dict[str, str]]:
        """One `bootstrap-token` process issuing a token for each of `names`; the
        run and the tokens that failed ({name: the tool's detail}). A partial
        failure (exit 10, the summary table says which) is recorded, not fatal."""
        argv: list[Arg] = [TOOL, "--cluster", CLUSTER, "-n", ns]
        for name in names:
            argv += ["--service-account", name]
        argv += ["--out", self.tmp / "{service_account}.env", "--quiet"]
        argv += ["--parallel", str(parallel)]
        run = self.runner.run(argv, timeout=300)
        failed: dict[str, str] = {}
        if run.returncode == FLEET_FAILED:
            for line in run.stderr.splitlines():
                m = re.match(r"\S+/(\S+)\s+FAILED\s+(.*)", line)
                if m and m[1] in names:
                    failed[m[1]] = m[2].strip()
            if not failed:
                check(run, what)  # exit 10 but no FAILED row: report it as it is
            say(f"warning: {what}: {len(failed)} of {len(names)} tokens FAILED: {grouped(failed)}")
            self.failures.append({"what": what, "failed": failed})
        else:
            check(run, what)
        return run, failed

    def check_env_files(
        self,
        names: Sequence[str],
        what: str,
        ns: str,
        sample: int = 3,
        failed: Sequence[str] = (),
    ) -> None:
        """Every env file exists and names its ServiceAccount; a sample (first,
        middle, last) really works against /api. Not timed. Tokens the tool
        reported as failed are skipped (they are counted elsewhere)."""
        names = [n for n in names if n not in failed]
        if not names:
            return
        for name in names:
            env_file = self.tmp / f"{name}.env"
            if not env_file.is_file():
                raise BenchError(f"{what}: no env file {env_file.name}")
            if f"system:serviceaccount:{ns}:{name} " not in env_file.read_text():
                raise BenchError(f"{what}: {env_file.name} is not for ServiceAccount {name}")
        picks = sorted({0, len(names) // 2, len(names) - 1})[:sample]
        for i in picks:
            self.verify_env_file(self.tmp / f"{names[i]}.env", what)
