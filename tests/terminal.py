"""The tool on a terminal: a pseudo-terminal as its stdin, stdout and stderr.

Started by subprocess (fork and exec in one C call), not pty.fork(): pytest runs threads
(the fault proxy, watchdogs), and forking a threaded Python process to run Python code in
the child may deadlock (Python 3.12+ warns of it: DeprecationWarning from forkpty)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path


def run_on_a_terminal(
    args: list[str], env: dict[str, str], cwd: Path | None = None, quiet_for: float = 60
) -> str:
    """`python -m bootstrap ARGS` with a pty as stdin, stdout and stderr and exactly
    `env`: everything it printed, once it exited (or printed nothing for `quiet_for` s)."""
    master, slave = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "bootstrap", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            start_new_session=True,  # the pty is its terminal, as a shell would make it
        )
    finally:
        os.close(slave)
    output = b""
    try:
        while select.select([master], [], [], quiet_for)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every end of the terminal in the child is closed
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
        process.wait()
    return output.decode(errors="replace")
