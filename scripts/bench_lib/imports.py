"""What a plain issue run spends on imports: `python -X importtime` of the installed
tool (env output, a token user, no proxy), minus what the bare interpreter imports
anyway (`-c pass`: site, encodings...). Reported as the median of R runs, with the
list of bootstrap modules the run imported (pinned by tests/cluster/test_imports.py),
and next to it the floor: the same measure of importing only what no run can do
without (click, PyYAML, ssl, socket, json, base64), the part no change of ours cuts."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from bench_lib.common import BENCH_VENV, Arg, say
from bench_lib.runner import Runner, check
from bench_lib.stats import Summary

PYTHON = BENCH_VENV / "bin" / "python"
LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def parse(stderr: str) -> list[tuple[int, int, str]]:
    """(cumulative us, depth, module) of every importtime line."""
    rows = []
    for line in stderr.splitlines():
        found = LINE.match(line)
        if found:
            rows.append((int(found[2]), len(found[3]), found[4]))
    return rows


FLOOR = "import click, yaml, ssl, socket, json, base64"


def measure(runner: Runner, tool_argv: Callable[[str], Sequence[Arg]], runs: int) -> dict[str, Any]:
    baseline = {
        m
        for _, _, m in parse(
            check(runner.run([PYTHON, "-X", "importtime", "-c", "pass"]), "python -c pass").stderr
        )
    }

    def top_ms(rows: list[tuple[int, int, str]]) -> float:
        return sum(us for us, depth, module in rows if depth == 1 and module not in baseline) / 1000

    totals: list[float] = []
    floors: list[float] = []
    ours: set[str] = set()
    for i in range(1, runs + 1):
        argv = [PYTHON, "-X", "importtime", *tool_argv(f"imp-{i}")]
        rows = parse(check(runner.run(argv), f"imports (imp-{i})").stderr)
        totals.append(top_ms(rows))
        ours |= {m for _, _, m in rows if m == "bootstrap" or m.startswith("bootstrap.")}
        floor = check(runner.run([PYTHON, "-X", "importtime", "-c", FLOOR]), "imports (floor)")
        floors.append(top_ms(parse(floor.stderr)))
    say(
        f"imports of a plain issue run: median {statistics.median(totals):.1f} ms of {runs}; "
        f"the floor ({FLOOR.removeprefix('import ')}) {statistics.median(floors):.1f} ms"
    )
    return {
        "ms": asdict(Summary.of(totals)),
        "floor_ms": asdict(Summary.of(floors)),
        "floor": FLOOR,
        "bootstrap_modules": sorted(ours),
    }
