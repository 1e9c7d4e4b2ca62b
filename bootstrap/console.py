"""What a person at a terminal sees on stderr: how loud, in which colours, and the
live count of a fleet.

Loudness (the `bootstrap` logger's level):

  default      NOTICE: one line per token (who, where, until when), warnings, errors
  -v           INFO: every step (cluster and user, waits, files written, retries)
  --debug      DEBUG: every request and step timings; tracebacks
  -q           WARNING: warnings and errors only

Colours only when stderr is a terminal, TERM is not `dumb` and NO_COLOR is unset or
empty (no-color.org): errors red, warnings yellow, the warning about a powerful
token (cluster-admin and the like) bold red on a reverse band so that it stands out.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping
from typing import TextIO

NOTICE = 25  # between INFO and WARNING: the result lines shown by default
logging.addLevelName(NOTICE, "NOTICE")

RED, YELLOW, ALARM, RESET = "\x1b[31m", "\x1b[33m", "\x1b[1;31;7m", "\x1b[0m"


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def colour_enabled(stream: TextIO | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Colours on a terminal, never with NO_COLOR set to anything but the empty string."""
    environ = os.environ if environ is None else environ
    return not environ.get("NO_COLOR") and is_terminal(stream)


def paint(text: str, level: int, alarm: bool = False, enabled: bool | None = None) -> str:
    """`text` in the colour of its level (unchanged below WARNING or without colour)."""
    if enabled is None:
        enabled = colour_enabled()
    if not enabled or level < logging.WARNING:
        return text
    colour = ALARM if alarm else RED if level >= logging.ERROR else YELLOW
    return f"{colour}{text}{RESET}"


def level_for(debug: bool, verbose: bool, quiet: bool) -> int:
    if debug:
        return logging.DEBUG
    if quiet:
        return logging.WARNING
    return logging.INFO if verbose else NOTICE


class FleetCounter:
    """`4/7 done, 1 failed` on one live line while a fleet runs, on a terminal only
    (and never with --quiet or -v, whose lines would tear it); cleared at the end,
    before the summary table."""

    def __init__(self, total: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.lock = threading.Lock()

    def line(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.done}/{self.total} done{failed}"

    def start(self) -> None:
        self._show()

    def finished(self, ok: bool) -> None:
        with self.lock:
            self.done += 1
            self.failed += 0 if ok else 1
            self._show()

    def _show(self) -> None:
        if self.enabled:
            self.stream.write(f"\r\x1b[Kbootstrap-token: {self.line()}")
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
