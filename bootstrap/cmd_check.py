"""`bootstrap-token check FILE`: the command line of `check.py`.

Only click is imported here; the work (and its imports) happens when the command runs.
"""

from __future__ import annotations

import sys
from typing import Any

import click

_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "terminal_width": 100}
_EPILOG = (
    "\b\nExit codes:\n"
    "   0  the token works (and does not expire within --expires-within)\n"
    "   2  FILE cannot be read or holds no credentials\n"
    "   4  the API server cannot be reached, or TLS failed\n"
    "  11  the token is rejected (401): revoked, or not a token of this cluster\n"
    "  12  the token has expired (401, and its exp is past)\n"
    "  13  the token works but expires within --expires-within"
)


@click.command("check", context_settings=_SETTINGS, epilog=_EPILOG)
@click.argument("file", metavar="FILE")
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
    show_default=True,
    help="text: for people; json: {apiVersion: bootstrap-token/v1, kind: TokenCheck, ...}.",
)
@click.option("--context", metavar="CTX", help="Kubeconfig FILE: the context to check.")
@click.option(
    "--env-prefix", metavar="PREFIX", help="env/dotenv FILE: the prefix of the variable names."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up after this long.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; only the exit code says.")
@click.option("--debug", is_flag=True, help="Log each request; show tracebacks.")
def check_command(**flags: Any) -> None:
    """Check the credentials of an output FILE: do they work, as whom, until when?

    FILE is an output of bootstrap-token (env, dotenv, kubeconfig or json; the
    format is detected), or - for stdin. Only the credentials in FILE are used
    (a SelfSubjectReview with its token against its APISERVER, with its CA); no
    admin kubeconfig is read. The token is never printed.

    \b
    Examples:
      bootstrap-token check prod.env
      bootstrap-token check ci.kubeconfig --expires-within 2h || bootstrap-token ...
      bootstrap-token check - --format json < creds.json
    """
    from bootstrap.cli import _boundary

    _boundary(flags, lambda: run(flags))


def run(flags: dict[str, Any]) -> int:
    from bootstrap import check, readback
    from bootstrap.errors import UsageError
    from bootstrap.tokenrequest import parse_duration

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
    result = check.check(creds, expires_within=within, timeout=flags["timeout"])
    if not flags.get("quiet"):
        render = check.render_json if flags["output_format"] == "json" else check.render_text
        click.echo(render(result, label), nl=False)
    problem = check.failure(result, label)
    if problem is not None:
        if flags.get("quiet"):
            sys.exit(problem.exit_code)
        raise problem
    return 0
