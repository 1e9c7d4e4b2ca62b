"""scripts/mutation: mutate the pure modules, run tests/unit against each mutant, report.

    scripts/mutation                          every mutant of the default pure modules
    scripts/mutation bootstrap/kube/target.py      one module
    scripts/mutation --max 60 --seed 1        at most 60 mutants per module (a sample)
    scripts/mutation --list                   the mutants, without running anything
    scripts/mutation --show bootstrap/kube/target.py#12
                                              run one mutant with pytest's output shown
    scripts/mutation --json out.json          also write every result as JSON
    scripts/mutation --survivors-of out.json  rerun only the survivors of that run

Exit status: 0 when every module reaches --fail-under (default 0: report only), 1
otherwise. Survivors listed in scripts/mutation_lib/equivalent.txt are known
equivalent mutants: reported apart and left out of the adjusted score.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import operators, runner

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODULES = [
    "bootstrap/kube/kubeconfig.py",
    "bootstrap/kube/target.py",
    "bootstrap/outputs/emit.py",
    "bootstrap/steps/manifests.py",
    "bootstrap/errors.py",
    # Pure modules other branches add; used when present.
    "bootstrap/outputs/files.py",
    "bootstrap/outputs/paths.py",
    "bootstrap/outputs/lock.py",
    "bootstrap/inputs.py",
    "bootstrap/steps/powers.py",
    "bootstrap/kube/transport.py",
    "bootstrap/kube/http1.py",
    "bootstrap/kube/failures.py",
    "bootstrap/kube/retry.py",
]
EQUIVALENT = Path(__file__).with_name("equivalent.txt")
MAX_JOBS = 2  # the machine has two cores shared by everyone


@dataclass
class Mutant:
    module: str  # bootstrap/kube/target.py
    number: int  # index in the module's list of sites: the id is module#number
    site: operators.Site
    original: str  # the original source line, stripped
    mutated: str
    outcome: str = ""
    tests: int = 0
    seconds: float = 0.0

    @property
    def ident(self) -> str:
        return f"{self.module}#{self.number}"

    @property
    def key(self) -> str:
        """Stable across edits elsewhere in the file: no line number."""
        return f"{self.module}: {self.site.description} @ {self.original}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    began = time.monotonic()
    os.nice(10)
    modules = args.modules or [m for m in DEFAULT_MODULES if (ROOT / m).exists()]
    mutants = [m for module in modules for m in _mutants(module, args)]
    if args.show:
        mutants = [m for m in mutants if m.ident == args.show]
        if not mutants:
            raise SystemExit(f"mutation: no mutant {args.show} (see --list)")
    if args.list:
        for m in mutants:
            print(f"{m.ident}  {m.module}:{m.site.lineno} [{m.site.kind}] {m.site.description}")
        return 0
    to_run = mutants
    if args.survivors_of:
        to_run = _carry_over(mutants, Path(args.survivors_of))
    tests = (ROOT / args.tests).resolve()
    print(f"mutation: {len(to_run)} mutants to run in {len(modules)} modules; tracing {args.tests}")
    sys.stdout.flush()
    runner.warm_up(tests)
    # Every product file is traced, so one cached trace serves any choice of modules.
    files = {str(p.resolve()) for p in (ROOT / "bootstrap").rglob("*.py")}
    trace = runner.trace(tests, files, _trace_cache(tests))
    _run(to_run, trace, args)
    equivalent = _equivalent_keys()
    ok = _report(modules, mutants, equivalent, args.fail_under)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [
                    {
                        "id": m.ident,
                        "line": m.site.lineno,
                        "kind": m.site.kind,
                        "mutation": m.site.description,
                        "mutated": m.mutated,
                        "outcome": m.outcome,
                        "tests": m.tests,
                        "seconds": round(m.seconds, 2),
                        "equivalent": m.key in equivalent,
                    }
                    for m in mutants
                ],
                indent=1,
            )
            + "\n"
        )
    print(f"mutation: total run time {time.monotonic() - began:.0f} s")
    return 0 if ok else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/mutation",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument("modules", nargs="*", help="paths relative to the repo root")
    parser.add_argument("--tests", default="tests/unit", help="test directory (tests/unit)")
    parser.add_argument("--max", type=int, default=0, help="sample at most N mutants per module")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --max sample")
    parser.add_argument("--kinds", default="", help="only these kinds, e.g. compare,regex")
    parser.add_argument("--jobs", type=int, default=MAX_JOBS, help=f"parallel runs (<= {MAX_JOBS})")
    parser.add_argument("--list", action="store_true", help="list mutants, run nothing")
    parser.add_argument("--show", metavar="MODULE#N", help="run one mutant, show pytest output")
    parser.add_argument("--json", metavar="PATH", help="write all results as JSON")
    parser.add_argument(
        "--survivors-of",
        metavar="JSON",
        help="rerun only what survived in an earlier --json report; keep its kills",
    )
    parser.add_argument("--fail-under", type=float, default=0.0, metavar="PERCENT")
    return parser


def _mutants(module: str, args: argparse.Namespace) -> list[Mutant]:
    path = ROOT / module
    if not path.is_file():
        raise SystemExit(f"mutation: no module {module}")
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    kinds = {k for k in args.kinds.split(",") if k}
    found = [
        Mutant(module, i, site, lines[site.lineno - 1].strip(), "")
        for i, site in enumerate(operators.sites(source))
        if not kinds or site.kind in kinds
    ]
    if args.max and len(found) > args.max and not args.show:
        found = sorted(random.Random(args.seed).sample(found, args.max), key=lambda m: m.number)
    for m in found:
        m.mutated = operators.mutated_line(source, m.site)
    return found


def _carry_over(mutants: list[Mutant], previous: Path) -> list[Mutant]:
    """Take the outcome of every mutant a previous --json run killed (tests are only
    ever added, so a killed mutant stays killed) and return the ones left to run."""
    before = {(r["id"], r["mutation"]): r["outcome"] for r in json.loads(previous.read_text())}
    left = []
    for m in mutants:
        outcome = before.get((m.ident, m.site.description))
        if outcome in (runner.KILLED, runner.TIMEOUT):
            m.outcome = outcome
        else:
            left.append(m)
    return left


def _trace_cache(tests: Path) -> Path:
    """Tracing costs about a minute: keep it while neither the code nor the tests change."""
    digest = hashlib.sha256()
    for path in sorted([*(ROOT / "bootstrap").rglob("*.py"), *tests.parent.rglob("*.py")]):
        digest.update(str(path).encode() + b"\0" + path.read_bytes())
    cache = Path(tempfile.gettempdir()) / f"bootstrap-token-mutation-{os.getuid()}"
    cache.mkdir(mode=0o700, exist_ok=True)
    return cache / f"trace-{digest.hexdigest()[:16]}.json"


def _run(mutants: list[Mutant], trace: runner.Trace, args: argparse.Namespace) -> None:
    jobs = max(1, min(args.jobs, MAX_JOBS))
    at_import = {m.module: _tests_of_module(m.module, trace) for m in mutants}
    pending = list(reversed(mutants))
    running: dict[int, tuple[Mutant, runner.Job]] = {}
    done = 0
    while pending or running:
        while pending and len(running) < jobs:
            m = pending.pop()
            path = str((ROOT / m.module).resolve())
            if m.site.module_level:
                order = at_import[m.module]
            else:
                lines = {m.site.stmt_lineno, *range(m.site.lineno, m.site.end_lineno + 1)}
                order = trace.ordered(trace.tests_for(path, lines))
            m.tests = len(order)
            if not order:
                m.outcome = runner.SURVIVED  # no test runs this line
                done += 1
                continue
            source = (ROOT / m.module).read_text(encoding="utf-8")
            try:
                code = compile(operators.apply(source, m.site), path, "exec")
            except (SyntaxError, ValueError, TypeError):
                m.outcome = runner.ERROR
                done += 1
                continue
            name = m.module.removesuffix(".py").replace("/", ".")
            budget = 3 * sum(trace.durations.get(t, 0.0) for t in order) + 15
            original = compile(source, path, "exec")
            in_place = not m.site.module_level
            body = runner.mutant_body(name, path, code, original, ROOT, order, in_place)
            job = runner.start(body, timeout=budget, quiet=not args.show)
            running[job.pid] = (m, job)
        for pid, (m, job) in list(running.items()):
            status = job.poll()
            if status is None:
                continue
            del running[pid]
            m.outcome = runner.outcome(status)
            m.seconds = time.monotonic() - job.started
            done += 1
            if args.show or m.outcome != runner.KILLED:
                print(f"  [{done}/{len(mutants)}] {m.outcome}: {m.ident} {m.site.description}")
                sys.stdout.flush()
        time.sleep(0.01)


def _tests_of_module(module: str, trace: runner.Trace) -> list[str]:
    """For a mutant that runs at import (a constant, a pattern, a class attribute):
    every test that ran any line of the module, and every test in a file that
    imports it (e.g. `EXIT_CODES` is read by cli.py, not by errors.py)."""
    path = str((ROOT / module).resolve())
    tests = trace.tests_for(path, trace.lines.get(path, {}))
    # bootstrap/outputs/renew.py: `bootstrap.outputs.renew`, or `from bootstrap.outputs
    # import ... renew` (a module of a layer's package, since the layers are folders).
    parts = Path(module).with_suffix("").parts[1:]
    name, package = parts[-1], ".".join(("bootstrap", *parts[:-1]))
    dotted = re.escape(".".join(("bootstrap", *parts)))
    imports = re.compile(
        rf"\b{dotted}\b|^from {re.escape(package)} import .*\b{name}\b", re.M
    )
    for test_file in {t.split("::", 1)[0] for t in trace.durations}:
        if imports.search((ROOT / test_file).read_text(encoding="utf-8")):
            tests |= {t for t in trace.durations if t.startswith(test_file + "::")}
    return trace.ordered(tests)


def _equivalent_keys() -> set[str]:
    if not EQUIVALENT.exists():
        return set()
    lines = EQUIVALENT.read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def _report(modules: list[str], mutants: list[Mutant], equivalent: set[str], floor: float) -> bool:
    print()
    print(
        f"{'module':<28} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} "
        f"{'equiv':>5} {'score':>6} {'adjusted':>8}"
    )
    ok = True
    for module in modules:
        mine = [m for m in mutants if m.module == module and m.outcome != runner.ERROR]
        counts = Counter(m.outcome for m in mine)
        eq = sum(1 for m in mine if m.outcome == runner.SURVIVED and m.key in equivalent)
        killed = counts[runner.KILLED] + counts[runner.TIMEOUT]
        score = 100.0 * killed / len(mine) if mine else 100.0
        adjusted = 100.0 * killed / (len(mine) - eq) if len(mine) > eq else 100.0
        ok = ok and adjusted >= floor
        print(
            f"{module:<28} {len(mine):>7} {counts[runner.KILLED]:>6} "
            f"{counts[runner.TIMEOUT]:>7} {counts[runner.SURVIVED]:>8} {eq:>5} "
            f"{score:>5.1f}% {adjusted:>7.1f}%"
        )
    errors = [m for m in mutants if m.outcome == runner.ERROR]
    if errors:
        print(
            f"\n{len(errors)} mutants could not be run (not counted): "
            + ", ".join(m.ident for m in errors)
        )
    for title, wanted in (("Survivors", False), ("Known equivalent survivors", True)):
        listed = [
            m for m in mutants if m.outcome == runner.SURVIVED and (m.key in equivalent) == wanted
        ]
        if not listed:
            continue
        print(f"\n{title} ({len(listed)}):")
        for m in listed:
            uncovered = "  (no test runs this line)" if m.tests == 0 else ""
            print(f"  {m.module}:{m.site.lineno}  [{m.site.kind}] {m.site.description}{uncovered}")
            print(f"      {m.mutated}")
            print(f"      key: {m.key}")
    return ok
