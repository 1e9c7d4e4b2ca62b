"""The command line of scripts/bench."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench_lib.common import REPO


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Benchmark bootstrap-token against the manual kubectl recipes "
        "on the local dev cluster (see the module docstring for what is measured).",
    )
    parser.add_argument(
        "--n", type=int, default=10, metavar="N", help="measured rounds (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        metavar="W",
        help="warm-up rounds, not counted (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench-results",
        metavar="DIR",
        help="output directory (default: bench-results/ at the repo root)",
    )
    parser.add_argument(
        "--startup-runs",
        type=int,
        default=20,
        metavar="R",
        help="runs of --help and of --version (default: %(default)s)",
    )
    parser.add_argument(
        "--import-runs",
        type=int,
        default=10,
        metavar="R",
        help="-X importtime runs of a plain issue (default: %(default)s)",
    )
    parser.add_argument(
        "--phase-runs",
        type=int,
        default=10,
        metavar="R",
        help="--debug runs for the where-the-time-goes table, 0 to skip (default: %(default)s)",
    )
    parser.add_argument(
        "--pickup",
        type=int,
        default=20,
        metavar="N",
        help="token pick-up latency runs (fresh ServiceAccounts), 0 to skip (default: %(default)s)",
    )
    parser.add_argument(
        "--scale",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time K tokens: one process vs. K processes (default: on)",
    )
    parser.add_argument(
        "--scale-k",
        default="1,10,50",
        metavar="K,K,...",
        help="token counts for --scale (default: %(default)s)",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=4,
        metavar="P",
        help="--parallel of the one-process scale runs (default: %(default)s; the best of "
        "4, 8, 16 in a K=50 sweep, where 4 and 8 tied on time and 16 was slower)",
    )
    parser.add_argument(
        "--sweep",
        default="4,8,16",
        metavar="P,P,...",
        help="with --scale, also time one process of --sweep-k tokens at each --parallel P; "
        "empty to skip (default: %(default)s)",
    )
    parser.add_argument(
        "--sweep-k",
        type=int,
        default=50,
        metavar="K",
        help="tokens per --sweep run (default: %(default)s)",
    )
    parser.add_argument(
        "--sweep-reps",
        type=int,
        default=2,
        metavar="R",
        help="runs per --sweep value (default: %(default)s)",
    )
    parser.add_argument(
        "--rss-method",
        choices=["auto", "time", "wait4"],
        default="auto",
        help="peak RSS from /usr/bin/time -f %%M or os.wait4 "
        "(default: auto, /usr/bin/time when installed)",
    )
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="run only the fleet benchmark (bench_lib/fleet.py): N clusters behind delaying "
        "proxies, one process vs. a kubectl loop; writes OUT/fleet.json and OUT/fleet.md",
    )
    parser.add_argument(
        "--fleet-sizes",
        default="1,5,20",
        metavar="N,N,...",
        help="cluster counts for --fleet (default: %(default)s)",
    )
    parser.add_argument(
        "--fleet-delay-ms",
        type=float,
        default=50.0,
        metavar="MS",
        help="delay the proxies add to every request (default: %(default)s)",
    )
    parser.add_argument(
        "--fleet-reps",
        type=int,
        default=3,
        metavar="R",
        help="runs per cell (default: %(default)s)",
    )
    parser.add_argument(
        "--fleet-sweep",
        default="4,8,16,20",
        metavar="P,P,...",
        help="--parallel values tried at the largest fleet size; empty to skip "
        "(default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.startup_runs < 1 or args.parallel < 1 or args.sweep_k < 1:
        parser.error("--n, --startup-runs, --parallel and --sweep-k must be >= 1")
    if min(args.warmup, args.phase_runs, args.pickup) < 0 or args.sweep_reps < 1:
        parser.error("--warmup, --phase-runs and --pickup must be >= 0, --sweep-reps >= 1")
    for name, example in (
        ("scale_k", "1,10,50"),
        ("sweep", "4,8,16"),
        ("fleet_sizes", "1,5,20"),
        ("fleet_sweep", "4,8,16,20"),
    ):
        try:
            values = [int(k) for k in getattr(args, name).split(",") if k.strip()]
        except ValueError:
            parser.error(
                f"--{name.replace('_', '-')} takes comma-separated integers, e.g. {example}"
            )
        if any(k < 1 for k in values):
            parser.error(f"--{name.replace('_', '-')} values must be >= 1")
        setattr(args, name, values)
    if not args.fleet_sizes or args.fleet_reps < 1:
        parser.error("--fleet-sizes needs at least one value and --fleet-reps must be >= 1")
    return args
