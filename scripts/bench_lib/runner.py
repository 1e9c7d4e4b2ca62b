"""Running and measuring process trees: wall time, peak RSS, timeouts that kill the tree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench_lib.common import GNU_TIME, Arg, BenchError


@dataclass
class Run:
    """One finished process tree."""

    wall_s: float
    maxrss_kib: int
    returncode: int
    stdout: str
    stderr: str


class Runner:
    """Starts process trees, times them and reads their peak RSS.

    Each child gets its own session, so a timeout (or the bench's own exit) can
    kill the whole tree. RSS comes from GNU time's %M when `rss_method` is
    "time", else from os.wait4 on the child; both are the ru_maxrss that Linux
    reports for a reaped child: the largest single process of its tree.
    """

    def __init__(self, workdir: Path, env: dict[str, str], rss_method: str) -> None:
        self.workdir = workdir
        self.env = env
        self.rss_method = rss_method
        self._lock = threading.Lock()
        self._live: set[int] = set()

    def run(self, argv: Sequence[Arg], *, cwd: Path | None = None, timeout: float = 120.0) -> Run:
        rss_file: Path | None = None
        command = [str(a) for a in argv]
        if self.rss_method == "time":
            fd, name = tempfile.mkstemp(prefix="rss-", dir=self.workdir)
            os.close(fd)
            rss_file = Path(name)
            command = [str(GNU_TIME), "-f", "%M", "-o", name, *command]
        with (
            tempfile.TemporaryFile(dir=self.workdir) as out,
            tempfile.TemporaryFile(dir=self.workdir) as err,
        ):
            began = time.perf_counter()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=cwd or self.workdir,
                env=self.env,
                start_new_session=True,
            )
            with self._lock:
                self._live.add(process.pid)
            timed_out = threading.Event()
            killer = threading.Timer(timeout, self._expire, (process.pid, timed_out))
            killer.start()
            try:
                _, status, usage = os.wait4(process.pid, 0)
            finally:
                killer.cancel()
                with self._lock:
                    self._live.discard(process.pid)
            wall = time.perf_counter() - began
            process.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode(errors="replace")
            stderr = err.read().decode(errors="replace")
        maxrss = usage.ru_maxrss
        if rss_file is not None:
            text = rss_file.read_text().strip().splitlines()
            rss_file.unlink()
            # The last line is %M; any earlier ones are GNU time's own notes.
            if text and text[-1].isdigit():
                maxrss = int(text[-1])
        if timed_out.is_set():
            stderr += f"\n(killed after the {timeout:.0f} s timeout)"
        return Run(wall, maxrss, process.returncode, stdout, stderr)

    def _expire(self, pid: int, timed_out: threading.Event) -> None:
        timed_out.set()
        self._kill(pid)

    def _kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    def kill_all(self) -> None:
        with self._lock:
            live = list(self._live)
        for pid in live:
            self._kill(pid)


def grouped(failed: dict[str, str]) -> str:
    """{name: detail} as `detail (names)`, one group per distinct detail."""
    by: dict[str, list[str]] = {}
    for name, detail in failed.items():
        by.setdefault(detail, []).append(name)
    return "; ".join(f"{d} ({', '.join(names)})" for d, names in by.items())


def check(run: Run, what: str, ok: bool = True) -> Run:
    if run.returncode != 0 or not ok:
        tail = "\n".join((run.stderr or run.stdout).strip().splitlines()[-8:])
        raise BenchError(f"{what} failed (exit {run.returncode}):\n{tail}")
    return run


def simple(argv: Sequence[Arg], env: dict[str, str] | None = None) -> str:
    """Run a quick helper command (not measured); its stdout, or BenchError."""
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, env=env, timeout=120
    )
    if result.returncode != 0:
        raise BenchError(f"{' '.join(map(str, argv))} failed: {result.stderr.strip()}")
    return result.stdout
