"""How `--help` reads, and the `completion` command.

`--help` follows `kubectl create token --help`: a short description, then the
Examples (the most common invocations first), then the flags in groups, common
ones first. A flag no group names lands in "Other flags", so a new flag is never
hidden. The exit codes are in docs/exit-codes.md; help has one line pointing there.

`completion bash|zsh|fish` prints click's completion script for the shell; the zsh
one loads compinit first when the shell has not (else: `command not found: compdef`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import click

EXIT_CODES_LINE = (
    "Exit codes: 0 success, 2 usage error, 10 a job of several failed; "
    "every code: docs/exit-codes.md"
)


class Documented(click.Command):
    """A command whose help is: description, Examples, grouped flags, footer.

    `examples`: the Examples block as written (indented lines, `#` comments);
    `groups`: (title, parameter names) in the order shown."""

    def __init__(
        self,
        *args: Any,
        examples: str = "",
        groups: Sequence[tuple[str, Sequence[str]]] = (),
        footer: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("options_metavar", "[FLAGS]")
        super().__init__(*args, **kwargs)
        self.examples = examples
        self.groups = list(groups)
        self.footer = list(footer)

    def grouped_rows(
        self, ctx: click.Context, only_first: bool = False
    ) -> list[tuple[str, list[tuple[str, str]]]]:
        records: dict[str, tuple[str, str]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and param.name:
                # click names its own --help option differently across versions
                help_option = isinstance(param, click.Option) and "--help" in param.opts
                records["help" if help_option else param.name] = record
        sections: list[tuple[str, list[tuple[str, str]]]] = []
        placed: set[str] = set()
        for title, names in self.groups[:1] if only_first else self.groups:
            rows = [records[n] for n in names if n in records]
            placed.update(names)
            if rows:
                sections.append((title, rows))
        if not only_first:
            rest = [record for name, record in records.items() if name not in placed]
            if rest:
                sections.append(("Other flags", rest))
        return sections

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        write_examples(formatter, self.examples)
        for title, rows in self.grouped_rows(ctx):
            with formatter.section(title):
                formatter.write_dl(rows)
        write_footer(formatter, self.footer)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """A stray word (`issue prod`) is most likely a cluster name: say how to give one."""
        try:
            return super().parse_args(ctx, long_forms(self, args))
        except click.UsageError as e:
            extra = re.match(r"Got unexpected extra arguments? \((\S+)", e.message)
            if extra is None:
                raise
            word = extra.group(1).rstrip(")")
            raise click.UsageError(
                f"{self.name} takes no arguments (got {word!r}): to name a cluster use "
                f"--cluster {word}",
                ctx,
            ) from None


def long_forms(command: click.Command, args: list[str]) -> list[str]:
    """`-n NS` as `--namespace NS`, before click sees it: click tries every `-x` as a long
    option first, and the NoSuchOption it raises (and catches) imports difflib for its
    suggestions, a few ms of every run that uses -n, -o, -q or -v. Values are left alone
    (the word after an option that takes one), and so is everything after `--`."""
    short: dict[str, str] = {}
    takes_value: set[str] = set()
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        names = [*param.opts, *param.secondary_opts]
        long = next((n for n in param.opts if n.startswith("--")), None)
        for name in param.opts:
            if long and len(name) == 2 and name[0] == "-" and name[1] != "-":
                short[name] = long
        if not param.is_flag and not param.count:
            takes_value.update(names)
    out: list[str] = []
    value_next = False
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        if value_next:
            out.append(arg)
            value_next = False
            continue
        arg = short.get(arg, arg)
        value_next = arg in takes_value
        out.append(arg)
    return out


def write_examples(formatter: click.HelpFormatter, examples: str) -> None:
    if not examples:
        return
    formatter.write_paragraph()
    formatter.write_text("Examples:")
    for line in examples.strip("\n").splitlines():
        formatter.write(f"  {line.rstrip()}\n" if line.strip() else "\n")


def write_footer(formatter: click.HelpFormatter, lines: Sequence[str]) -> None:
    if lines:
        formatter.write_paragraph()
        for line in lines:
            formatter.write(f"{line}\n")


# --- completion -------------------------------------------------------------------------

COMPLETE_VAR = "_BOOTSTRAP_TOKEN_COMPLETE"  # click's variable for the completion protocol

# zsh: compdef exists only once compinit has run (most ~/.zshrc do it; a bare zsh does not).
ZSH_GUARD = (
    "# compdef comes with compinit: load it when this shell has not\n"
    "if ! (( $+functions[compdef] )); then\n"
    "  autoload -Uz compinit && compinit -i\n"
    "fi\n"
)

COMPLETION_EXAMPLES = """\
# bash, this shell; then for every new shell:
source <(bootstrap-token completion bash)
bootstrap-token completion bash > ~/.local/share/bash-completion/completions/bootstrap-token
# zsh (works before or without compinit):
echo 'source <(bootstrap-token completion zsh)' >> ~/.zshrc
# fish:
bootstrap-token completion fish > ~/.config/fish/completions/bootstrap-token.fish
"""


def completion_script(
    shell: str, command: click.Command, prog_name: str = "bootstrap-token"
) -> str:
    """The completion script of `shell` for the command line `command` (the root group,
    passed in: cli imports this module) run as `prog_name`."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # click.Choice has refused it already
        raise click.UsageError(f"unsupported shell {shell!r}")
    script = cls(command, {}, prog_name, COMPLETE_VAR).source()
    if shell == "zsh":
        # click's zsh script starts with `#compdef NAME`: keep that first for fpath use.
        first, _, rest = script.partition("\n")
        if first.startswith("#compdef"):
            return f"{first}\n\n{ZSH_GUARD}{rest}"
        return ZSH_GUARD + script
    return script


@click.command(
    "completion",
    cls=Documented,
    context_settings={"help_option_names": ["-h", "--help"], "terminal_width": 100},
    examples=COMPLETION_EXAMPLES,
    groups=[("Flags", ["help"])],
    footer=[EXIT_CODES_LINE],
)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]), metavar="bash|zsh|fish")
def completion_command(shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish (commands, flags, and the
    cluster and context names of your kubeconfig)."""
    root = click.get_current_context().find_root().command
    click.echo(completion_script(shell, root), nl=False)
