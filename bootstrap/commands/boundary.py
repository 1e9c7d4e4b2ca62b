"""The one error boundary of every command (pipx's `main.cli()`): logging set up with
redaction, then the job run; a `BootstrapError` becomes one `error: ...` line on stderr
and its exit code (`bootstrap.errors.EXIT_CODES`), anything else an "internal error"
line, and a traceback only with --debug."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from bootstrap import console
from bootstrap.errors import BootstrapError
from bootstrap.redact import redact
from bootstrap.sanitize import visible

log = logging.getLogger("bootstrap")


class _Redact(logging.Filter):
    """Every log record goes through `redact.redact` (the run's registered secrets and
    anything shaped like a JWT). Also prefixes lines with the cluster in fleet mode."""

    def filter(self, record: logging.LogRecord) -> bool:
        from bootstrap.commands.fleet import current_cluster

        message = visible(redact(record.getMessage()), newlines=True)
        cluster = current_cluster()
        record.msg, record.args = (f"[{cluster}] {message}" if cluster else message), None
        return True


class _RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted line again: a traceback (--debug) carries exception
    messages, which the filter does not see. Warnings and errors in colour on a
    terminal (see console.py); a record with `alarm` (a powerful token) stands out."""

    def __init__(self, fmt: str, colour: bool = False) -> None:
        super().__init__(fmt)
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        text = visible(redact(super().format(record)), newlines=True)
        alarm = bool(getattr(record, "alarm", False))
        return console.paint(text, record.levelno, alarm, self.colour)


def configure_logging(debug: bool, quiet: bool, verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    colour = console.colour_enabled(sys.stderr)
    handler.setFormatter(_RedactingFormatter("bootstrap-token: %(message)s", colour))
    handler.addFilter(_Redact())
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(console.level_for(debug, verbose, quiet))


def boundary(flags: dict[str, Any], job: Callable[[], int]) -> None:
    debug = bool(flags.get("debug"))
    configure_logging(debug, bool(flags.get("quiet")), bool(flags.get("verbose")))
    try:
        code = job()
    except BootstrapError as e:
        if debug:
            log.debug("traceback follows", exc_info=True)
        click.echo(
            console.paint(visible(redact(f"error: {e}"), newlines=True), logging.ERROR), err=True
        )
        sys.exit(e.exit_code)
    except BrokenPipeError:
        raise  # a closed stdout is not an internal error: main() reports it
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as e:
        if debug:
            import traceback

            sys.stderr.write(redact(traceback.format_exc()))
            sys.exit(1)
        click.echo(
            f"error: internal error ({type(e).__name__}); rerun with --debug for details "
            "and please report it",
            err=True,
        )
        sys.exit(1)
    sys.exit(code)
