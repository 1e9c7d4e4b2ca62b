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

from bootstrap import __version__, jobs
from bootstrap.command_group import COMPLETE_VAR, DefaultToIssue
from bootstrap.errors import EXIT_CODES, BootstrapError
from bootstrap.redact import redact

log = logging.getLogger("bootstrap")
F = TypeVar("F", bound=Callable[..., Any])

_EPILOG = (
    "\b\nOther commands: bootstrap-token revoke --help, bootstrap-token rotate --help\n"
    "\b\nShell completion (bash, zsh, fish):\n"
    '  eval "$(_BOOTSTRAP_TOKEN_COMPLETE=bash_source bootstrap-token)"\n'
    "\b\nExit codes:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
)
_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "terminal_width": 100}


class _Redact(logging.Filter):
    """Every log record goes through `redact.redact` (the run's registered secrets and
    anything shaped like a JWT). Also prefixes lines with the cluster in fleet mode."""

    def filter(self, record: logging.LogRecord) -> bool:
        from bootstrap.fleet import current_cluster

        message = redact(record.getMessage())
        cluster = current_cluster()
        record.msg, record.args = (f"[{cluster}] {message}" if cluster else message), None
        return True


class _RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted line again: a traceback (--debug) carries exception
    messages, which the filter does not see."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _configure_logging(debug: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("bootstrap-token: %(message)s"))
    handler.addFilter(_Redact())
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)


def _kubeconfig_names(section: str, ctx: click.Context, incomplete: str) -> list[str]:
    """Shell completion: the names of a kubeconfig section (never an error)."""
    try:
        from bootstrap.kubeconfig import Kubeconfig, default_paths
        from bootstrap.run import environment

        environ, home, _ = environment()
        config = Kubeconfig.from_files(default_paths(ctx.params.get("kubeconfig"), environ, home))
        return [n for n in getattr(config, section) if n.startswith(incomplete)]
    except Exception:
        return []


def _complete_clusters(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _kubeconfig_names("clusters", ctx, incomplete)


def _complete_contexts(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _kubeconfig_names("contexts", ctx, incomplete)


def _target_options(function: F) -> F:
    """Flags shared by issue, rotate and revoke: which cluster, which account."""
    for decorator in reversed(
        [
            click.option(
                "--cluster",
                "clusters",
                multiple=True,
                metavar="NAME",
                shell_complete=_complete_clusters,
                help="Cluster name from the kubeconfig (clusters[].name); repeat for several.",
            ),
            click.option("--all-clusters", is_flag=True, help="Every cluster of the kubeconfig."),
            click.option(
                "--context",
                metavar="CTX",
                shell_complete=_complete_contexts,
                help="Context supplying the credentials, when several use the cluster.",
            ),
            click.option(
                "--kubeconfig",
                metavar="PATH",
                help="Kubeconfig file (default: $KUBECONFIG, merged; else ~/.kube/config).",
            ),
            click.option(
                "--in-cluster",
                is_flag=True,
                help="Bootstrap with the Pod's own ServiceAccount (its token, CA and API server); automatic in a Pod without a kubeconfig.",
            ),
            click.option(
                "-n",
                "--namespace",
                metavar="NS",
                help="Namespace of the ServiceAccount (must exist)  [default: the context's "
                "namespace, else default; in-cluster: the Pod's]",
            ),
            click.option(
                "--service-account",
                "service_accounts",
                multiple=True,
                default=["default"],
                show_default=True,
                metavar="SA",
                help="ServiceAccount (created if missing); repeat for several.",
            ),
            click.option(
                "--secret", metavar="NAME", help="Name of the token Secret  [default: SA-token]"
            ),
            click.option(
                "--server",
                metavar="URL",
                help="Send the bootstrap requests here instead (e.g. kubectl proxy at http://127.0.0.1:8001); outputs keep the cluster's server unless --emit-server says otherwise.",
            ),
            click.option(
                "--timeout",
                type=click.FloatRange(min=0.1),
                default=60.0,
                show_default=True,
                metavar="SECONDS",
                help="Give up after this long, all steps included.",
            ),
            click.option(
                "--insecure-skip-tls-verify",
                is_flag=True,
                help="Do not verify the API server's certificate (prints a warning).",
            ),
            click.option(
                "--parallel",
                type=click.IntRange(min=1),
                default=16,
                show_default=True,
                help="Tokens issued at once with several clusters or service accounts "
                "(mostly waiting on the network, so more than the CPUs).",
            ),
            click.option("-q", "--quiet", is_flag=True, help="Only errors and warnings on stderr."),
            click.option(
                "--debug", is_flag=True, help="Log each request and step timings; show tracebacks."
            ),
        ]
    ):
        function = decorator(function)
    return function


def _output_options(function: F) -> F:
    """Flags shared by issue and rotate: what kind of token, where it goes."""
    for decorator in reversed(
        [
            click.option(
                "--format",
                "output_format",
                type=click.Choice(
                    ["env", "kubeconfig", "json", "dotenv", "github", "argocd", "kubeconfig-secret"]
                ),
                default="env",
                show_default=True,
                help="env: to source; kubeconfig: standalone or merged; json; dotenv: KEY=value (GitLab, docker --env-file); github: $GITHUB_ENV with the token masked; argocd: Argo CD cluster Secret; kubeconfig-secret: Secret with the kubeconfig under `value` (Flux, Cluster API).",
            ),
            click.option(
                "--apply-to",
                metavar="CONTEXT/NAMESPACE",
                help="argocd, kubeconfig-secret: server-side apply the Secret into NAMESPACE of the cluster of kubeconfig context CONTEXT instead of writing a file.",
            ),
            click.option(
                "--secret-name",
                "delivery_name",
                metavar="NAME",
                help="Name of the argocd / kubeconfig-secret Secret  [default: cluster-CLUSTER / CLUSTER-kubeconfig]",
            ),
            click.option(
                "--out",
                metavar="PATH|-",
                help="Output file ({cluster}, {service_account} are replaced), or - for stdout  [default: ./CLUSTER.EXT; SA@CLUSTER.EXT for a service account other than default]",
            ),
            click.option(
                "--env-prefix",
                default="",
                metavar="PREFIX",
                help="Prefix of env/dotenv/github variable names; {cluster} and {service_account} become e.g. PROD_EU (needed for github with several tokens).",
            ),
            click.option(
                "--mode",
                type=click.Choice(["secret", "request"]),
                default="secret",
                show_default=True,
                help="secret: non-expiring token from a token Secret (the docs' recipe); request: short-lived token from the TokenRequest API.",
            ),
            click.option(
                "--duration",
                default="1h",
                show_default=True,
                metavar="DURATION",
                help="Lifetime asked for in request mode (at least 10m; the server may grant less).",
            ),
            click.option(
                "--audience",
                "audiences",
                multiple=True,
                metavar="AUD",
                help="Audience of a request-mode token (repeatable; default: the API server).",
            ),
            click.option(
                "--emit-server",
                metavar="URL",
                help="APISERVER to write into the outputs  [default: the cluster's server, also with --server]",
            ),
            click.option(
                "--bound-secret",
                metavar="NAME",
                help="Bind a request-mode token to this existing Secret: deleting it revokes the token early.",
            ),
            click.option(
                "--ttl",
                metavar="DURATION",
                help="Lease: everything this run creates expires after DURATION (e.g. 2h, 1d), then `sweep` deletes it; request-mode tokens live at most as long.",
            ),
            click.option(
                "--role",
                "roles",
                multiple=True,
                metavar="ROLE",
                help="Bind this Role in the namespace (RoleBinding); repeatable.",
            ),
            click.option(
                "--clusterrole",
                "cluster_roles",
                multiple=True,
                metavar="ROLE",
                help="Bind this ClusterRole cluster-wide (ClusterRoleBinding); repeatable.",
            ),
        ]
    ):
        function = decorator(function)
    return function


@click.group(
    cls=DefaultToIssue,
    context_settings=_SETTINGS,
    options_metavar="",
    subcommand_metavar="[COMMAND] [FLAGS]...",
)
def command() -> None:
    """Issue, rotate or revoke a verified API token for a cluster of your kubeconfig.

    Without a command, issue runs: `bootstrap-token` alone issues a token for the
    current context's cluster, `bootstrap-token --cluster NAME` for cluster NAME.
    Every flag can also be set as an environment variable: --some-flag as
    BOOTSTRAP_TOKEN_SOME_FLAG.
    """


_DRY_RUN_HELP = (
    "Change nothing: look at what exists, have the API server check each create and "
    "delete (server-side dry run), print the plan on stdout."
)


def _reworded(**helps: str) -> Callable[[F], F]:
    """New help texts for shared flags (by parameter name), for one command."""

    def decorate(function: F) -> F:
        for param in getattr(function, "__click_params__", []):
            if param.name in helps:
                param.help = helps[param.name]
        return function

    return decorate


@command.command("issue", context_settings=_SETTINGS, epilog=_EPILOG)
@_target_options
@_output_options
@click.option("--dry-run", is_flag=True, help=_DRY_RUN_HELP)
@click.option(
    "--list-clusters", is_flag=True, help="List the kubeconfig's clusters and servers, then exit."
)
@click.option(
    "--renew-before",
    metavar="DURATION",
    help="If the output file's token still works and does not expire within DURATION (e.g. 1h, 7d), change nothing; else issue anew (for cron).",
)
@click.version_option(__version__, prog_name="bootstrap-token")
def issue_command(**flags: Any) -> None:
    """Issue a working, verified API token for cluster NAME of your kubeconfig.

    Creates (or reuses) the ServiceAccount and a token Secret, waits for the token
    controller to fill it, verifies the token against the API server, and writes an
    env file to `source` (APISERVER, TOKEN, CACERT, NAMESPACE), a standalone
    kubeconfig, JSON, or CI variables. Without --role/--clusterrole the token can
    only do discovery.

    \b
    Examples:
      bootstrap-token --list-clusters
      bootstrap-token --cluster dev && source dev.env
      curl "$APISERVER/api" -H "Authorization: Bearer $TOKEN" --cacert "$CACERT"
      bootstrap-token --cluster prod -n ci --service-account deployer \\
          --clusterrole view --format kubeconfig --out ci.kubeconfig
      bootstrap-token --cluster prod --mode request --duration 30m --out -
      bootstrap-token --all-clusters --out 'creds/{cluster}.env'
      bootstrap-token --cluster dev --service-account a --service-account b \\
          --out '{service_account}.env'
    """
    _boundary(flags, lambda: jobs.issue(flags, rotate=False))


@command.command("rotate", context_settings=_SETTINGS, epilog=_EPILOG)
@_target_options
@_output_options
@click.option("--dry-run", is_flag=True, help=_DRY_RUN_HELP)
def rotate_command(**flags: Any) -> None:
    """Replace the token and rewrite the outputs; the old token stops working.

    In secret mode a token Secret under a fresh name (SECRET-xxxxxx) is created,
    verified and written out, and only then are the previous Secrets deleted,
    which revokes their tokens. (A legacy token is derived from the Secret's name,
    so re-creating the same name would bring the same token back.) In request mode
    a new short-lived token is issued; the old one lives until it expires.
    """
    _boundary(flags, lambda: jobs.issue(flags, rotate=True))


@command.command("revoke", context_settings=_SETTINGS, epilog=_EPILOG)
@_reworded(
    service_accounts="ServiceAccount whose token to revoke; repeat for several.",
    secret="Token Secret to delete, with its rotated SECRET-xxxxxx successors  [default: SA-token]",
)
@_target_options
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

    Only what bootstrap-token created for this ServiceAccount is deleted: objects
    labelled app.kubernetes.io/managed-by=bootstrap-token, token Secrets annotated
    with this ServiceAccount's name and UID. A --secret that is not ours stops the
    command before anything is deleted (exit 6). With --all, a binding that also
    binds other subjects is kept, and so is a ServiceAccount that existed before
    (such as `default`); each kept object is reported with the reason.
    """
    _boundary(flags, lambda: jobs.revoke(flags))


def _boundary(flags: dict[str, Any], job: Callable[[], int]) -> None:
    debug = bool(flags.get("debug"))
    _configure_logging(debug, bool(flags.get("quiet")))
    try:
        code = job()
    except BootstrapError as e:
        if debug:
            log.debug("traceback follows", exc_info=True)
        click.echo(redact(f"error: {e}"), err=True)
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


def _add_commands() -> None:
    from bootstrap.cmd_check import check_command
    from bootstrap.cmd_list import list_command
    from bootstrap.cmd_sweep import sweep_command

    command.add_command(list_command)
    command.add_command(check_command)
    command.add_command(sweep_command)


_add_commands()


def main() -> None:
    command(prog_name=_prog_name(), complete_var=COMPLETE_VAR)


def _prog_name() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "kubectl bootstrap-token" if name == "kubectl-bootstrap_token" else "bootstrap-token"


if __name__ == "__main__":
    main()
