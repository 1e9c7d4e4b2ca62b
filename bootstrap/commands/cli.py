"""The command line: parse flags, run the job, and be the one error boundary.

`bootstrap-token [issue] --cluster NAME ...` issues a token (`issue` is the
default command), `revoke` deletes what was created, `rotate` replaces the token.
Every `BootstrapError` becomes one `error: ...` line on stderr and its exit code
(see `bootstrap.errors.EXIT_CODES`); a traceback appears only with --debug.
Heavy modules are imported inside the commands so `--help` and `--version` stay fast.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from bootstrap import __version__
from bootstrap.commands import flags as shared
from bootstrap.commands import jobs
from bootstrap.commands.boundary import boundary
from bootstrap.commands.group import COMPLETE_VAR, DefaultToIssue
from bootstrap.commands.help import EXIT_CODES_LINE, Documented, completion_command

log = logging.getLogger("bootstrap")
F = TypeVar("F", bound=Callable[..., Any])

FOOTER = [
    "Other commands: rotate, revoke, list, check, sweep, completion (bootstrap-token COMMAND --help)",
    "Every flag can also be set as an environment variable: --some-flag as "
    "BOOTSTRAP_TOKEN_SOME_FLAG.",
    EXIT_CODES_LINE,
]
_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "terminal_width": 100}


@click.group(
    cls=DefaultToIssue,
    context_settings=_SETTINGS,
    options_metavar="",
    subcommand_metavar="[COMMAND] [FLAGS]...",
)
def command() -> None:
    """Issue, rotate or revoke a verified API token for a cluster of your kubeconfig.

    Without a command, issue runs: `bootstrap-token --cluster NAME` issues a token for
    cluster NAME (alone: for the current context's cluster).
    """


_DRY_RUN_HELP = "Change nothing; print the plan, checked by the API server (server-side dry run)."

ISSUE_EXAMPLES = """\
# A token for cluster dev, as ./dev.env (with ./dev.ca.crt beside it); then use it
bootstrap-token --cluster dev && source dev.env
curl "$APISERVER/api" -H "Authorization: Bearer $TOKEN" --cacert "$CACERT"

# A CI deployer with its own ServiceAccount and role, as a kubeconfig file
bootstrap-token --cluster prod -n ci --service-account deployer --clusterrole view \\
    -o kubeconfig --out ci.kubeconfig

# A short-lived token (TokenRequest), printed as JSON
bootstrap-token --cluster prod --mode request --duration 30m -o json

# One env file per cluster of the kubeconfig
bootstrap-token --all-clusters --out 'creds/{cluster}.env'

# Which clusters does the kubeconfig have?
bootstrap-token --list-clusters
"""

ROTATE_EXAMPLES = """\
# A new token for ./prod.env; the old one is revoked once the new one works
bootstrap-token rotate --cluster prod

# Rotate a CI deployer's kubeconfig
bootstrap-token rotate --cluster prod -n ci --service-account deployer \\
    -o kubeconfig --out ci.kubeconfig

# Every cluster, and first what would change
bootstrap-token rotate --all-clusters --out 'creds/{cluster}.env' --dry-run
"""

REVOKE_EXAMPLES = """\
# Delete the token Secret of ServiceAccount default: its token stops working
bootstrap-token revoke --cluster prod

# Also delete the ServiceAccount and bindings bootstrap-token created
bootstrap-token revoke --cluster prod -n ci --service-account deployer --all

# What would be deleted (server-side dry run)
bootstrap-token revoke --cluster prod --all --dry-run
"""

COMMON = "Common flags"
CONNECTION = (
    "Connection flags",
    ["context", "kubeconfig", "server", "timeout", "insecure_skip_tls_verify", "in_cluster"],
)
RUN = ("Run flags", ["all_clusters", "parallel", "verbose", "quiet", "debug", "version", "help"])
ISSUE_GROUPS = [
    (
        COMMON,
        [
            "clusters",
            "namespace",
            "service_accounts",
            "output",
            "out",
            "roles",
            "cluster_roles",
            "mode",
            "duration",
        ],
    ),
    ("Output flags", ["env_prefix", "output_format", "apply_to", "delivery_name", "emit_server"]),
    (
        "Token flags",
        ["secret", "ttl", "audiences", "bound_secret", "renew_before", "dry_run", "list_clusters"],
    ),
    CONNECTION,
    RUN,
]
REVOKE_GROUPS = [
    (COMMON, ["clusters", "namespace", "service_accounts", "secret", "everything", "dry_run"]),
    CONNECTION,
    RUN,
]


def _reworded(**helps: str) -> Callable[[F], F]:
    """New help texts for shared flags (by parameter name), for one command."""

    def decorate(function: F) -> F:
        for param in getattr(function, "__click_params__", []):
            if param.name in helps:
                param.help = helps[param.name]
        return function

    return decorate


@command.command(
    "issue",
    cls=Documented,
    context_settings=_SETTINGS,
    examples=ISSUE_EXAMPLES,
    groups=ISSUE_GROUPS,
    footer=FOOTER,
)
@shared.token_targets
@shared.token_outputs
@click.option("--dry-run", is_flag=True, help=_DRY_RUN_HELP)
@click.option(
    "--list-clusters", is_flag=True, help="List the kubeconfig's clusters and servers, then exit."
)
@click.option(
    "--renew-before",
    metavar="DURATION",
    help="Keep the output file if its token works for DURATION more (e.g. 7d); else issue "
    "anew (for cron).",
)
@click.version_option(__version__, prog_name="bootstrap-token")
def issue_command(**flags: Any) -> None:
    """Issue a working, verified API token for cluster NAME of your kubeconfig.

    Creates (or reuses) the ServiceAccount and a token Secret, waits for the token
    controller to fill it, verifies the token, and writes it out: an env file to
    `source` (APISERVER, TOKEN, CACERT, NAMESPACE) by default, or the format of -o.
    Without --role/--clusterrole the token can only do discovery.
    """
    boundary(flags, lambda: jobs.issue(flags, rotate=False))


@command.command(
    "rotate",
    cls=Documented,
    context_settings=_SETTINGS,
    examples=ROTATE_EXAMPLES,
    groups=ISSUE_GROUPS,
    footer=FOOTER,
)
@shared.token_targets
@shared.token_outputs
@click.option("--dry-run", is_flag=True, help=_DRY_RUN_HELP)
def rotate_command(**flags: Any) -> None:
    """Replace the token and rewrite the outputs; the old token stops working.

    Secret mode: a token Secret under a fresh name (SECRET-xxxxxx) is created, verified
    and written out; only then are the previous Secrets deleted, revoking their
    tokens. Request mode: a new short-lived token; the old one lives until it expires.
    """
    boundary(flags, lambda: jobs.issue(flags, rotate=True))


@command.command(
    "revoke",
    cls=Documented,
    context_settings=_SETTINGS,
    examples=REVOKE_EXAMPLES,
    groups=REVOKE_GROUPS,
    footer=FOOTER,
)
@_reworded(
    service_accounts="ServiceAccount whose token to revoke; repeat for several.",
    secret="Token Secret to delete, with its rotated SECRET-xxxxxx successors  [default: SA-token]",
)
@shared.token_targets
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Also delete the ServiceAccount and bindings bootstrap-token created for it.",
)
@click.option(
    "--dry-run", is_flag=True, help="Say what would be deleted and kept (server-side dry run)."
)
def revoke_command(**flags: Any) -> None:
    """Delete the token Secret, which revokes its token (a later request gets 401).

    Only what bootstrap-token created for this ServiceAccount is deleted (labelled
    app.kubernetes.io/managed-by=bootstrap-token, annotated with its name and UID);
    a --secret that is not ours stops the command first (exit 6). With --all, a
    binding that also binds others, or a ServiceAccount that existed before, is kept
    and reported with the reason.
    """
    boundary(flags, lambda: jobs.revoke(flags))


def _add_commands() -> None:
    from bootstrap.commands.check import check_command
    from bootstrap.commands.list import list_command
    from bootstrap.commands.sweep import sweep_command

    command.add_command(list_command)
    command.add_command(check_command)
    command.add_command(sweep_command)
    command.add_command(completion_command)


_add_commands()


def main() -> None:
    command(prog_name=_prog_name(), complete_var=COMPLETE_VAR)


def _prog_name() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "kubectl bootstrap-token" if name == "kubectl-bootstrap_token" else "bootstrap-token"


if __name__ == "__main__":
    main()
