"""`bootstrap-token check FILE`: the command line of `check.py`.

Only click is imported here; the work (and its imports) happens when the command runs.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from bootstrap.commands import flags as shared
from bootstrap.commands.help import Documented

_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "terminal_width": 100}
EXAMPLES = """\
# Does the token in prod.env still work, as whom, until when?
bootstrap-token check prod.env

# What can it do (in its namespace), and which API groups can it see?
bootstrap-token check prod.env --can

# In cron or CI: renew when less than 2 hours are left
bootstrap-token check ci.kubeconfig --expires-within 2h || bootstrap-token rotate ...

# As JSON, from stdin
bootstrap-token check - -o json < creds.json
"""
FOOTER = [
    "Exit codes: 0 works, 2 unreadable FILE, 4 unreachable or TLS, 11 rejected (revoked), "
    "12 expired,",
    "13 expires within --expires-within; every code: docs/exit-codes.md",
]


@click.command(
    "check",
    cls=Documented,
    context_settings=_SETTINGS,
    examples=EXAMPLES,
    groups=[
        ("Common flags", ["can", "output", "expires_within"]),
        ("File flags", ["context", "env_prefix", "timeout", "output_format"]),
        ("Run flags", ["verbose", "quiet", "debug", "help"]),
    ],
    footer=FOOTER,
)
@click.argument("file", metavar="FILE")
@click.option(
    "--can",
    is_flag=True,
    help="Also show what the token can do in its namespace (like kubectl auth can-i --list) "
    "and the API groups it can discover.",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    metavar="text|json",
    help="json: {apiVersion: bootstrap-token/v1, kind: TokenCheck, ..., can: [rules]}.",
)
@click.option(
    "--expires-within",
    metavar="DURATION",
    help="Exit 13 if the token expires within this long (e.g. 2h, 7d); Secret tokens never do.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    metavar="text|json",
    help="Older spelling of -o.",
)
@click.option("--context", metavar="CTX", help="Kubeconfig FILE: the context to check.")
@click.option(
    "--env-prefix", metavar="PREFIX", help="env/dotenv FILE: the prefix of the variable names."
)
@shared.timeout(30.0, "Give up after this long.")
@click.option("-v", "--verbose", is_flag=True, help="Every step on stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; only the exit code says.")
@click.option("--debug", is_flag=True, help="Log each request; show tracebacks.")
def check_command(**flags: Any) -> None:
    """Check the credentials of an output FILE: do they work, as whom, until when?

    FILE is an output of bootstrap-token (env, dotenv, kubeconfig or json; detected),
    or - for stdin. Only the credentials in FILE are used (its token, APISERVER and
    CA); no admin kubeconfig is read. The token is never printed.
    """
    from bootstrap.commands.boundary import boundary

    boundary(flags, lambda: run(flags))


def run(flags: dict[str, Any]) -> int:
    from bootstrap.commands.options import given
    from bootstrap.errors import UsageError
    from bootstrap.outputs import check, readback
    from bootstrap.steps.tokenrequest import parse_duration

    within = 0
    if flags.get("expires_within"):
        within = parse_duration(flags["expires_within"], "--expires-within", minimum=0)
    name = flags["file"]
    text, base, label = check.read_file(name)
    try:
        creds = readback.parse(
            text, base, context=flags.get("context"), prefix=flags.get("env_prefix")
        )
        creds = check.own_ca(creds, base)
    except UsageError as e:
        raise UsageError(f"{label}: {e}") from None
    output = flags.get("output") or flags["output_format"]
    if flags.get("output") and given("output_format") and flags["output_format"] != output:
        raise UsageError(f"-o {output} and --format {flags['output_format']} disagree: use -o")
    result = check.check(
        creds,
        expires_within=within,
        timeout=flags["timeout"],
        want_can=bool(flags.get("can")) or output == "json",
        want_groups=bool(flags.get("can")),
    )
    if not flags.get("quiet"):
        render = check.render_json if output == "json" else check.render_text
        click.echo(render(result, label), nl=False)
    problem = check.failure(result, label)
    if problem is not None:
        if flags.get("quiet"):
            sys.exit(problem.exit_code)
        raise problem
    return 0
