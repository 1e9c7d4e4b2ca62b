"""The command group of the command line: `issue` is the default command, `--help`
lists the commands, a mistyped command is refused with the closest one, click's usage
errors become one `error:` line (exit 2), Ctrl-C is exit 130, a closed stdout exit 9,
and every flag reads $BOOTSTRAP_TOKEN_<FLAG>. The commands themselves are in `cli`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import click

from bootstrap.commands.help import COMPLETE_VAR
from bootstrap.errors import INTERRUPTED, OUTPUT_FAILED

__all__ = ["COMPLETE_VAR", "ENV_PREFIX", "DefaultToIssue"]

ENV_PREFIX = "BOOTSTRAP_TOKEN_"  # every flag --some-flag also reads $BOOTSTRAP_TOKEN_SOME_FLAG


class _StdoutClosed(Exception):
    """stdout was closed under us (`| head -c0`): reported by main(), not a crash."""


class _UnknownCommand(click.UsageError):
    """A mistyped command; its message is complete as it is."""


class DefaultToIssue(click.Group):
    """`bootstrap-token --cluster X` means `bootstrap-token issue --cluster X`.

    `issue` takes no positional arguments, so a first word that is not a command is a
    mistyped command (`revok`), never an argument of issue: it is refused with the
    closest command. `--help` shows the commands and then the flags of issue. Usage
    errors are one `error:` line (exit 2); Ctrl-C is exit 130; a closed stdout exit 9.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.resilient_parsing and not args:  # completing the first word: the commands
            return super().parse_args(ctx, args)
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            if args and not args[0].startswith("-") and not ctx.resilient_parsing:
                raise _UnknownCommand(_unknown_command(args[0], sorted(self.commands)), ctx)
            args = ["issue", *args]
        rest: list[str] = _pipe_safe(lambda: super(DefaultToIssue, self).parse_args(ctx, args))
        return rest

    def invoke(self, ctx: click.Context) -> Any:
        return _pipe_safe(lambda: super(DefaultToIssue, self).invoke(ctx))

    def list_commands(self, ctx: click.Context) -> list[str]:
        """In the order they were added, which is the order of use (issue first)."""
        return list(self.commands)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The examples of issue (the default command), the commands, one line each,
        then the common flags of issue and where to find the others."""
        from bootstrap.commands.help import Documented, write_examples, write_footer

        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        issue = self.commands["issue"]
        sub = click.Context(issue, info_name="issue", parent=ctx)
        if isinstance(issue, Documented):
            write_examples(formatter, issue.examples)
        self.format_commands(ctx, formatter)
        if isinstance(issue, Documented):
            for title, rows in issue.grouped_rows(sub, only_first=True):
                with formatter.section(f"{title} of issue (the default command)"):
                    formatter.write_dl(rows)
            footer = ["Every flag of issue: bootstrap-token issue --help", *issue.footer]
            write_footer(formatter, footer)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        """The commands, and for `-...` also the flags of issue (the default command)."""
        results = super().shell_complete(ctx, incomplete)
        if incomplete.startswith("-"):
            seen = {item.value for item in results}
            results += [
                item
                for item in self.commands["issue"].shell_complete(ctx, incomplete)
                if item.value not in seen
            ]
        return results

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        _set_envvars(self)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as e:
            _fail(_usage_line(e), 2)
        except click.ClickException as e:
            _fail(_one_line(e.format_message()), e.exit_code)
        except (click.Abort, KeyboardInterrupt, EOFError):
            _fail("interrupted", INTERRUPTED)
        except _StdoutClosed:
            _fail("stdout was closed before all output was written (broken pipe)", OUTPUT_FAILED)
        sys.exit(code if isinstance(code, int) else 0)


def _pipe_safe(step: Callable[[], Any]) -> Any:
    try:
        return step()
    except OSError as e:
        if e.errno != errno.EPIPE:
            raise
        # Nothing more can reach stdout; keep the final flush at exit from failing too.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise _StdoutClosed() from None


def _fail(message: str, code: int) -> NoReturn:
    from bootstrap.console import paint

    with contextlib.suppress(OSError):  # stderr gone too: the exit code still says it
        click.echo(paint(f"error: {message}", 40), err=True)  # 40: logging.ERROR
    sys.exit(code)


def _one_line(message: str) -> str:
    text = " ".join(message.split()).replace(". (", " (").rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _usage_line(e: click.UsageError) -> str:
    """Click's usage errors as one line naming the flag, plus where to read more."""
    if isinstance(e, _UnknownCommand):
        return e.format_message()
    where = "bootstrap-token"
    if e.ctx is not None:
        root = e.ctx.find_root().info_name or where
        name = e.ctx.command.name
        where = root if e.ctx.parent is None or name == "issue" else f"{root} {name}"
    return f"{_one_line(e.format_message())}; see '{where} --help'"


def _unknown_command(word: str, commands: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, commands, n=1, cutoff=0.6)
    if close:
        return f"unknown command {word!r}: did you mean {close[0]}? (see bootstrap-token --help)"
    return (
        f"unknown command {word!r} (commands: {', '.join(commands)}); "
        f"to name a cluster use --cluster {word}"
    )


def _set_envvars(group: click.Group) -> None:
    """Every flag can come from the environment: --some-flag from $BOOTSTRAP_TOKEN_SOME_FLAG,
    the same name for every command (click's auto_envvar_prefix would use the parameter's
    internal name and the command, e.g. BOOTSTRAP_TOKEN_ISSUE_CLUSTERS)."""
    for sub in group.commands.values():
        for param in sub.params:
            if not isinstance(param, click.Option) or param.envvar or not param.expose_value:
                continue
            longs = [o for o in param.opts if o.startswith("--")]
            if longs:
                param.envvar = ENV_PREFIX + longs[0][2:].replace("-", "_").upper()
