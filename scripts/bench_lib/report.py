"""The report: the tables on stdout and results.md."""

from __future__ import annotations

from typing import Any

from bench_lib.common import VARIANTS
from bench_lib.runner import grouped
from bench_lib.tables import table
from bench_lib.targets import render_targets


def render_tables(results: dict[str, Any]) -> str:
    summary, ratios = results["summary"], results["ratios"]
    n = results["config"]["n"]
    main = table(
        ["", "Variant", "min ms", "median ms", "max ms", "peak RSS MiB (median)", "max"],
        [
            [
                key,
                VARIANTS[key],
                f"{s['wall_ms']['min']:.0f}",
                f"{s['wall_ms']['median']:.0f}",
                f"{s['wall_ms']['max']:.0f}",
                f"{s['maxrss_mib']['median']:.1f}",
                f"{s['maxrss_mib']['max']:.1f}",
            ]
            for key, s in summary.items()
        ],
        [False, False, True, True, True, True, True],
    )
    ratio = table(
        ["Ratio (per round)", "min", "median", "max"],
        [
            [name, f"{r['min']:.2f}", f"{r['median']:.2f}", f"{r['max']:.2f}"]
            for name, r in ratios.items()
        ],
        [False, True, True, True],
    )
    startup = table(
        ["bootstrap-token", "min ms", "median ms", "max ms"],
        [
            [flag, f"{s['min']:.0f}", f"{s['median']:.0f}", f"{s['max']:.0f}"]
            for flag, s in results["startup"].items()
        ],
        [False, True, True, True],
    )
    imports = results.get("imports")
    imported = (
        f"\nImports of a plain issue run (-X importtime, beyond the bare interpreter): median "
        f"{imports['ms']['median']:.1f} ms (min {imports['ms']['min']:.1f}, max "
        f"{imports['ms']['max']:.1f}); the floor, `{imports.get('floor', '')}` alone: median "
        f"{imports.get('floor_ms', {}).get('median', float('nan')):.1f} ms; bootstrap modules: "
        f"{', '.join(imports['bootstrap_modules'])}\n"
        if imports
        else ""
    )
    parts = [
        "Targets:\n",
        render_targets(results),
        f"\nWall time to a working token, {n} rounds (fresh ServiceAccount each), and peak RSS "
        "(largest single process of the tree):\n",
        main,
        "\nA ÷ B and A ÷ C, computed per round (below 1: A is faster):\n",
        ratio,
        f"\nStartup, {results['config']['startup_runs']} runs each:\n",
        startup,
        imported,
    ]
    phases = results.get("phases")
    if phases:
        med = phases["median_ms"]
        total = med.get("total") or sum(v for k, v in med.items() if k != "total")
        parts += [
            f"\nWhere A's time goes: the tool's own `timings:` line (`--debug`), median of "
            f"{phases['runs']} runs per phase (medians need not add up to the total; "
            f"the whole process, exit included, took {phases['process_wall_median_ms']:.0f} ms "
            "median):\n",
            table(
                ["Phase", "median ms", "share of total"],
                [
                    [k, f"{v:.0f}", f"{100 * v / total:.0f}%" if k != "total" else "100%"]
                    for k, v in med.items()
                ],
                [False, True, True],
            ),
        ]
    pick = results.get("pickup")
    if pick:
        rows = [
            (
                "pick-up latency: tool's pick-up - watch event"
                if pick["source"] == "tool"
                else "pick-up latency: tool's log line reaching the bench - watch event",
                pick["latency_ms"],
            )
        ]
        if pick["source"] == "tool":
            rows.append(
                ("(cross-check) tool's log line reaching the bench - watch event",
                 pick["stderr_minus_watch_ms"])
            )  # fmt: skip
        if pick.get("watch_fill_ms"):
            rows.append(
                ("controller fill, as the watch saw it (ADDED → token)", pick["watch_fill_ms"])
            )
        rows.append(
            ("tool's own `filled ... after X ms` (from its Secret POST)", pick["tool_fill_ms"])
        )
        parts += [
            f"\nToken pick-up, {pick['n']} fresh ServiceAccounts (ms; see the notes for how it "
            "is measured):\n",
            table(
                ["", "min", "median", "p90", "max"],
                [
                    [
                        name,
                        f"{v['min']:.1f}",
                        f"{v['median']:.1f}",
                        f"{v['p90']:.1f}",
                        f"{v['max']:.1f}",
                    ]
                    for name, v in rows
                ],
                [False, True, True, True, True],
            ),
        ]
    sweep = results.get("sweep")
    if sweep:
        parts += [
            f"\n`--parallel` sweep: one process, K={sweep['k']} ServiceAccounts, "
            f"{sweep['reps']} run(s) each:\n",
            table(
                ["--parallel", "runs s", "median s", "failed tokens", ""],
                [
                    [
                        p,
                        ", ".join(f"{w:.2f}" for w in sweep["walls_s"][p]),
                        f"{sweep['median_s'][p]:.2f}",
                        str(sweep["failed_tokens"][p]),
                        "best" if int(p) == sweep["best"] else "",
                    ]
                    for p in sweep["walls_s"]
                ],
                [True, False, True, True, False],
            ),
        ]
    if results.get("scale"):
        single = summary["A"]["wall_ms"]["median"]
        p = results["config"]["parallel"]
        parts += [
            f"\nScale: K tokens from one process (K x `--service-account`, `--parallel {p}`) vs. "
            f'K one-token processes in sequence; "/ (K x single)" is total / (K x {single:.0f} ms, '
            "the median single-token time of A):\n",
            table(
                [
                    "K",
                    "one process s",
                    "per token ms",
                    "/ (K x single)",
                    "K processes s",
                    "per token ms",
                    "/ (K x single)",
                    "one-process RSS MiB",
                    "failed (one / K proc.)",
                ],
                [
                    [
                        str(r["k"]),
                        f"{r['one_s']:.2f}",
                        f"{1000 * r['one_s'] / r['k']:.0f}",
                        f"{1000 * r['one_s'] / (r['k'] * single):.2f}",
                        f"{r['sequential_s']:.2f}",
                        f"{1000 * r['sequential_s'] / r['k']:.0f}",
                        f"{1000 * r['sequential_s'] / (r['k'] * single):.2f}",
                        f"{r['one_maxrss_mib']:.1f}",
                        f"{len(r['one_failed'])} / {len(r['sequential_failed'])}",
                    ]
                    for r in results["scale"]
                ],
                [True] * 9,
            ),
        ]
    failures = results.get("failures") or []
    if failures:
        parts += [
            "\n**Failures** (tokens the tool reported as failed; timings above include them):\n"
        ]
        for f in failures:
            parts += [f"- {f['what']}: {len(f['failed'])} failed: {grouped(f['failed'])}"]
    return "\n".join(parts) + "\n"


def render_machine(m: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"- Date: {m['date']}",
            f"- Machine: {m['nproc']} CPUs, {m['cpu']}; {m['platform']}",
            f"- Python {m['python']}; kubectl {m['kubectl_client']}; "
            f"Kubernetes server {m['kubernetes_server']} (local dev cluster, loopback)",
            f"- {m['bootstrap_token']} at commit {m['git_head']}"
            + (" with uncommitted changes in bootstrap/" if m["bootstrap_dirty"] else "")
            + f" (sources {m['bootstrap_fingerprint']})"
            + (
                "; **warning: bootstrap/ changed during the run**"
                if m.get("bootstrap_changed_during_run")
                else ""
            ),
            *(
                ["- **Warning: a dev-cluster component was restarted during the run**"]
                if m.get("cluster_restarted_during_run")
                else []
            ),
            f"- Load average at start / end: {' '.join(m['loadavg_start'])} / "
            f"{' '.join(m.get('loadavg_end', []))}",
        ]
    )


NOTES = """\
Notes:

- A does more than B and C: it verifies TLS against the cluster's CA (B and C use
  `curl --insecure`, as the docs do), checks the token's identity with a
  SelfSubjectReview, and writes an env file and a CA file. Its time is the whole
  process, Python start-up included. The check that A's env file works (source it,
  curl `/api` with `--cacert`) runs outside the timed region. A is the tool as users
  install it: from a wheel, in its own venv (.venv-bench), not the editable
  development install, whose import hook adds ~20 ms to every start.
- A and B yield a long-lived Secret-based token; C yields a bound token that expires
  (1 h by default), so C is not the same product, only the quickest kubectl path.
- B polls with `sleep 1`: whenever the token controller has not filled the Secret by
  the first `kubectl describe`, B pays a whole second (see `b_sleeps` in results.json).
- Peak RSS is ru_maxrss of the reaped process tree: the largest single process
  (for B and C usually kubectl), not the sum over the tree. The RSS target is read
  as 100 MB = 10^6 bytes x 100 (95.4 MiB).
- Pick-up latency (scripts/bench_pickup.py): before each run the bench opens a watch
  on that one Secret (`GET .../secrets?watch=1&fieldSelector=metadata.name=NAME`,
  from the resourceVersion of a list just before, with the kubeconfig's admin client
  certificate, http.client + ssl in a thread) and waits for the API server's answer,
  so the watch is registered before the tool starts. It records time.time() when the
  first MODIFIED event carrying `data.token` arrives. The tool (`--debug`) logs
  `token picked up at <unix time>`; latency = that - the watch's arrival time, both
  on this machine's clock. The watch event itself arrives after the controller's
  write (etcd -> API server watch cache -> HTTP stream -> the thread), so the
  latency is measured from a moment slightly after the true write: the true
  delay is the figure plus the watcher's own delay (not measured; on loopback
  typically a millisecond or two). A negative value means the tool's GET read the
  token before the watch event reached the bench. When the tool prints no
  `token picked up at` line, the arrival at the bench of its
  `token controller filled Secret ...` log line (read from a pipe, timestamped on
  arrival) stands in; that is slightly later than the real pick-up. The pick-up
  runs are separate from the A/B/C rounds (`--debug`, one fresh ServiceAccount each).
- The tool's wait polls the Secret (immediately, then 5, 10, 20, 25 ms...); it does
  not watch, so its pick-up delay is bounded by the poll interval plus one round trip.
- Scale: "one process" is one `bootstrap-token` with K repeated `--service-account`,
  issuing them concurrently (`--parallel`): one Python start-up and kubeconfig load
  for all K. "K processes" are K one-token runs in sequence. Every env file is
  checked to exist and name its ServiceAccount, and the first, middle and last are
  used against `/api` (outside the timing). Each scale and sweep run gets its own
  new namespace: the tool LISTs the namespace's bootstrap-token Secrets on every
  run, and with ~300 tokens already there that LIST took ~22 ms instead of ~3 ms
  and the apply phase ~60 ms instead of ~30 ms (measured by hand), which would
  charge earlier phases' tokens to the scale numbers. The single-token time in the
  ratios is A's median over the rounds; each scale cell is a single run, so the
  K=1 row is one sample (a first run in a brand-new namespace) and noisier. On
  this 2-CPU machine the tool, the API server, etcd and the controller share the
  CPUs, so one process's throughput is CPU-bound: `--parallel` 4, 8 and 16 finish
  K=50 in about the same time (see the sweep).
- A token the tool reports as failed in a one-process or sequential scale run is
  recorded (Failures, and `failures` in results.json), not hidden, and its time
  stays in the totals; the target "every issued token works" then fails. Seen in
  earlier runs (1-3 of 50 tokens, mostly at `--parallel 16`, not in every run):
  `401 Unauthorized` from the tool's own verification under concurrency,
  which fits the API server's cached copy of the Secret lagging behind the token
  controller's write (the tool reads the token with a quorum GET, but legacy
  tokens are checked against the cache).
- The cluster is local (loopback), so every API round trip costs well under a
  millisecond; against a remote cluster each of the several kubectl processes in B
  and C pays its own connection set-up and round trips. The cluster is shared, and
  other work on the machine adds noise (see the load averages).
- `--mode request` (TokenRequest, like C) was not measured; A uses the default
  `--mode secret`, the same kind of token as B.
"""


def render_markdown(results: dict[str, Any], png: bool) -> str:
    m = results["machine"]
    head = (
        "## Benchmark: time to a working token\n\n"
        f"`{results['config']['command']}` on {m['date']}: each round issues one "
        "token three ways, each for a fresh ServiceAccount, in an order rotated every "
        f"round, after {results['config']['warmup']} warm-up round(s) not counted; "
        f"the whole run took {results['elapsed_s']:.0f} s.\n\n"
    )
    image = "![Median wall time to a working token, and K tokens](bench.png)\n\n" if png else ""
    return head + image + render_tables(results) + "\n" + render_machine(m) + "\n\n" + NOTES
