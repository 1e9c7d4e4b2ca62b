"""A test hook: SIGKILL this very process at a chosen point, as a cancelled CI job would.

`_BOOTSTRAP_TOKEN_KILL_AT=request:3` kills the process right after the answer to its
third API request, `write:1` halfway through writing its first output file (see
`files.write_atomic`). Unset (always, outside tests), `reached` only compares a
counter. The kill tests in tests/cluster/test_lease.py walk every point of a run.
"""

from __future__ import annotations

import os
import signal
import threading

VARIABLE = "_BOOTSTRAP_TOKEN_KILL_AT"
_counts: dict[str, int] = {}
_lock = threading.Lock()


def reached(point: str) -> None:
    """Count one `point` ("request" or "write"); die here if it is the chosen one."""
    spec = os.environ.get(VARIABLE)
    if not spec:
        return
    kind, _, number = spec.partition(":")
    if kind != point:
        return
    with _lock:
        _counts[point] = _counts.get(point, 0) + 1
        if str(_counts[point]) == number.strip():
            os.kill(os.getpid(), signal.SIGKILL)
