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
from typing import Any

from tests.conftest import TRANSCRIPT


def run_on_a_terminal(
    args: list[str], env: dict[str, str], cwd: Path | None = None, quiet_for: float = 60
) -> str:
    """`python -m bootstrap ARGS` with a pty as stdin, stdout and stderr and exactly
    `env`: everything it printed, once it exited (or printed nothing for `quiet_for` s).
    The output joins the session's transcript, which must hold no token at the end."""
    master, slave = os.openpty()
    streams: dict[str, Any] = {"stdin": slave, "stdout": slave, "stderr": slave}
    try:
        # A session of its own: the pty is its terminal, as a shell would make it.
        tool = [sys.executable, "-m", "bootstrap", *args]
        process = subprocess.Popen(tool, env=env, cwd=cwd, start_new_session=True, **streams)
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
    text = output.decode(errors="replace")
    # What a terminal showed is checked for tokens at the end of the session, too.
    TRANSCRIPT.outputs.append((f"terminal of: {' '.join(args)}", text))
    return text
