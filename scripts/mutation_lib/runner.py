"""Run the unit tests against the original code (traced) and against mutants.

Every run happens in a forked child of a parent that has already imported pytest
and the test suite's third-party imports, so a mutant costs a fork plus the
collection of a few test files, not a fresh interpreter. The child forgets the
`bootstrap` and `tests` modules, puts a finder in front of `sys.meta_path` that
serves the mutated module from a code object compiled in memory (the working tree
is never written), and runs pytest with `-x` on the tests whose trace touched
the mutated lines, fastest first.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType, FunctionType, ModuleType
from typing import Any

SURVIVED, KILLED, TIMEOUT, ERROR = "survived", "killed", "timeout", "error"
PURGED = ("bootstrap", "tests")
_CHILD_BUG = 70


@dataclass
class Trace:
    """Which test ran which line of which file, and how long each test took."""

    lines: dict[str, dict[int, set[str]]] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)

    def tests_for(self, path: str, lines: Iterable[int]) -> set[str]:
        by_line = self.lines.get(path, {})
        found: set[str] = set()
        for line in lines:
            found |= by_line.get(line, set())
        return found

    def ordered(self, tests: Iterable[str]) -> list[str]:
        return sorted(tests, key=lambda t: (self.durations.get(t, 0.0), t))


class _MutantLoader(importlib.abc.Loader):
    def __init__(self, code: CodeType) -> None:
        self.code = code

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        exec(self.code, module.__dict__)


class _MutantFinder(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, path: str, code: CodeType) -> None:
        self.name, self.path, self.loader = name, path, _MutantLoader(code)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path, loader=self.loader)


class _Select:
    """Keeps only the chosen tests, in the chosen order (so `-x` stops early)."""

    def __init__(self, order: Sequence[str]) -> None:
        self.rank = {nodeid: i for i, nodeid in enumerate(order)}

    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        kept = [item for item in items if item.nodeid in self.rank]
        kept.sort(key=lambda item: self.rank[item.nodeid])
        items[:] = kept


class _Tracer:
    """A pytest plugin recording the lines of `files` each test runs."""

    def __init__(self, files: set[str]) -> None:
        self.files = files
        self.seen: set[tuple[str, int]] = set()
        self.trace = Trace()
        self._wanted: dict[str, str | None] = {}
        self.cwd = os.getcwd()

    def _global(self, frame: FrameType, event: str, arg: object) -> Any:
        name = frame.f_code.co_filename
        if name not in self._wanted:
            # Bytecode compiled by `compileall bootstrap` names files relative to the
            # repo root, and tests chdir: resolve against where we started.
            path = os.path.realpath(os.path.join(self.cwd, name))
            self._wanted[name] = path if path in self.files else None
        return self._local if self._wanted[name] else None

    def _local(self, frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            self.seen.add((self._wanted[frame.f_code.co_filename] or "", frame.f_lineno))
        return self._local

    def pytest_runtest_protocol(self, item: Any) -> Any:
        # Runs before the default protocol (setup, call, teardown); logfinish stops it.
        self.seen = set()
        sys.settrace(self._global)
        threading.settrace(self._global)
        return None

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        sys.settrace(None)
        threading.settrace(None)
        for path, line in self.seen:
            self.trace.lines.setdefault(path, {}).setdefault(line, set()).add(nodeid)
        self.trace.durations[nodeid] = self.trace.durations.get(nodeid, 0.0) + self._elapsed()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self._start = time.perf_counter()

    def _elapsed(self) -> float:
        return time.perf_counter() - getattr(self, "_start", time.perf_counter())


def warm_up(tests: Path) -> None:
    """Import pytest and everything the tests import, once, in the parent."""
    import pytest

    _hypothesis_profile()  # before the test modules build their settings
    with _quiet():
        pytest.main([str(tests), "--collect-only", "-q", "-p", "no:cacheprovider"])


def trace(tests: Path, files: set[str], out: Path) -> Trace:
    """Run the whole suite once on the original code, recording coverage per test
    into `out` (a cache: reused when it exists)."""
    if out.exists():
        return _load(out)

    def child() -> int:
        import pytest

        _purge()  # re-import under the tracer, so module-level lines are seen too
        tracer = _Tracer(files)
        code = pytest.main([str(tests), "-q", "-p", "no:cacheprovider"], plugins=[tracer])
        data = {
            "lines": {
                p: {str(n): sorted(t) for n, t in by.items()}
                for p, by in tracer.trace.lines.items()
            },
            "durations": tracer.trace.durations,
        }
        if code == 0:
            partial = out.with_name(out.name + ".part")
            partial.write_text(json.dumps(data))
            partial.replace(out)
        return int(code)

    job = start(child, timeout=None, quiet=True)
    status = job.wait()
    if status != 0:
        raise SystemExit(
            f"mutation: the unit tests fail on the original code (exit {status}); fix them first"
        )
    return _load(out)


def _load(path: Path) -> Trace:
    data = json.loads(path.read_text())
    return Trace(
        lines={p: {int(n): set(t) for n, t in by.items()} for p, by in data["lines"].items()},
        durations=data["durations"],
    )


@dataclass
class Job:
    pid: int
    deadline: float | None
    started: float = field(default_factory=time.monotonic)

    def poll(self) -> int | None:
        """The child's status once it has ended: its exit code, or -signal."""
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            if self.deadline is not None and time.monotonic() > self.deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                return -signal.SIGKILL
            return None
        return os.waitstatus_to_exitcode(status)

    def wait(self) -> int:
        while (status := self.poll()) is None:
            time.sleep(0.02)
        return status


def start(body: Callable[[], int], timeout: float | None, quiet: bool) -> Job:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = _CHILD_BUG
        try:
            if quiet:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
            if timeout is not None:
                signal.alarm(max(1, int(timeout)))
            _hypothesis_profile()
            code = body()
        except BaseException:  # a forked child must never return into the parent's loop
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return Job(pid, None if timeout is None else time.monotonic() + timeout + 10)


def mutant_body(
    module: str,
    path: str,
    code: CodeType,
    original: CodeType,
    root: Path,
    order: Sequence[str],
    in_place: bool,
) -> Callable[[], int]:
    """In place: swap the `__code__` of the changed functions (the tests already hold
    them, so nothing is re-imported). Otherwise (a mutant that runs at import: a
    constant, a regex, a class body), or when a swap is impossible (the mutant changed
    the function's closure cells), the module is served fresh by a finder."""

    def body() -> int:
        import pytest

        patched = in_place and module in sys.modules
        if not (patched and _patch_functions(sys.modules[module], code, original)):
            _fresh_import(module, path, code)
        files = sorted({str(root / n.split("::", 1)[0]) for n in order})
        args = [*files, "-x", "-q", "-p", "no:cacheprovider", "--rootdir", str(root)]
        return int(pytest.main(args, plugins=[_Select(order)]))

    return body


def _fresh_import(module: str, path: str, code: CodeType) -> None:
    _purge()
    sys.meta_path.insert(0, _MutantFinder(module, path, code))


def _patch_functions(module: ModuleType, code: CodeType, original: CodeType) -> bool:
    """Give each changed function its mutated code; False if one cannot take it."""
    functions = {f.__code__.co_qualname: f for f in _functions(module)}
    old, new = _codes(original), _codes(code)
    changed = sorted((q for q, c in new.items() if old.get(q) != c), key=len)
    patched: list[str] = []
    for qualname in changed:
        if any(qualname.startswith(p + ".") for p in patched):
            continue  # a nested function: it came with its enclosing one
        target = functions.get(qualname)
        if target is None or len(target.__code__.co_freevars) != len(new[qualname].co_freevars):
            return False
        patched.append(qualname)
    for qualname in patched:
        functions[qualname].__code__ = new[qualname]
    return bool(patched)


def _codes(code: CodeType) -> dict[str, CodeType]:
    found = {}
    stack = [code]
    while stack:
        current = stack.pop()
        found[current.co_qualname] = current
        stack.extend(c for c in current.co_consts if isinstance(c, CodeType))
    return found


def _functions(module: ModuleType) -> list[FunctionType]:
    found: list[FunctionType] = []
    pending: list[object] = list(vars(module).values())
    seen: set[int] = set()
    while pending:
        obj = pending.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, staticmethod | classmethod):
            pending.append(obj.__func__)
        elif isinstance(obj, property):
            pending.extend([obj.fget, obj.fset, obj.fdel])
        elif isinstance(obj, FunctionType) and obj.__module__ == module.__name__:
            found.append(obj)
        elif isinstance(obj, type) and obj.__module__ == module.__name__:
            pending.extend(vars(obj).values())
        elif callable(obj) and hasattr(obj, "__wrapped__"):  # functools.cache and friends
            pending.append(obj.__wrapped__)
    return found


def outcome(status: int) -> str:
    if status == 0:
        return SURVIVED
    if status in (1, 2, 3):  # failed, interrupted (the mutant broke an import), internal
        return KILLED
    if status in (-signal.SIGALRM, -signal.SIGKILL):
        return TIMEOUT
    return ERROR


def _purge() -> None:
    for name in list(sys.modules):
        if name.split(".", 1)[0] in PURGED:
            del sys.modules[name]


def _hypothesis_profile() -> None:
    """No example database in the worktree, and the same examples every run."""
    try:
        from hypothesis import settings
    except ImportError:
        return
    settings.register_profile("mutation", database=None, derandomize=True)
    settings.load_profile("mutation")


class _quiet:
    def __enter__(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = os.dup(1), os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        os.close(self.saved[0])
        os.close(self.saved[1])
