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
import re
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import click

from bootstrap import __version__
from bootstrap.errors import EXIT_CODES, BootstrapError, UsageError

log = logging.getLogger("bootstrap")
F = TypeVar("F", bound=Callable[..., Any])

_EPILOG = (
    "\b\nOther commands: bootstrap-token revoke --help, bootstrap-token rotate --help\n"
    "\b\nShell completion (bash, zsh, fish):\n"
    '  eval "$(_BOOTSTRAP_TOKEN_COMPLETE=bash_source bootstrap-token)"\n'
    "\b\nExit codes:\n" + "\n".join(f"  {code:>2}  {text}" for code, text in EXIT_CODES.items())
)
_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "terminal_width": 100}


class _Redact(logging.Filter):
    """Defence in depth: nothing is meant to log a token, but if a JWT ever reaches
    a log record it is masked. Also prefixes lines with the cluster in fleet mode."""

    JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

    def filter(self, record: logging.LogRecord) -> bool:
        from bootstrap.fleet import current_cluster

        message = record.getMessage()
        if self.JWT.search(message):
            message = self.JWT.sub("<redacted>", message)
        cluster = current_cluster()
        record.msg, record.args = (f"[{cluster}] {message}" if cluster else message), None
        return True


def _configure_logging(debug: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("bootstrap-token: %(message)s"))
    handler.addFilter(_Redact())
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)


def _complete_clusters(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    try:
        from bootstrap.kubeconfig import Kubeconfig, default_paths
        from bootstrap.run import environment

        environ, home, _ = environment()
        paths = default_paths(ctx.params.get("kubeconfig"), environ, home)
        return [n for n in Kubeconfig.from_files(paths).clusters if n.startswith(incomplete)]
    except Exception:
        return []


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
                help="Context supplying the credentials, when several use the cluster.",
            ),
            click.option(
                "--kubeconfig",
                metavar="PATH",
                help="Kubeconfig file (default: $KUBECONFIG, merged; else ~/.kube/config).",
            ),
            click.option(
                "-n",
                "--namespace",
                default="default",
                show_default=True,
                metavar="NS",
                help="Namespace of the ServiceAccount (must exist).",
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
                type=click.Choice(["env", "kubeconfig", "json", "dotenv", "github"]),
                default="env",
                show_default=True,
                help="env: to source; kubeconfig: standalone or merged; json; dotenv: KEY=value (GitLab, docker --env-file); github: $GITHUB_ENV with the token masked.",
            ),
            click.option(
                "--out",
                metavar="PATH|-",
                help="Output file ({cluster} is replaced), or - for stdout  [default: ./CLUSTER.EXT]",
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


class _DefaultToIssue(click.Group):
    """`bootstrap-token --cluster X` means `bootstrap-token issue --cluster X`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = ["issue", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToIssue, context_settings=_SETTINGS)
def command() -> None:
    """Issue, rotate or revoke a verified API token for a cluster of your kubeconfig."""


@command.command("issue", context_settings=_SETTINGS, epilog=_EPILOG)
@_target_options
@_output_options
@click.option(
    "--dry-run", is_flag=True, help="Print the manifests that would be applied, then exit."
)
@click.option(
    "--list-clusters", is_flag=True, help="List the kubeconfig's clusters and servers, then exit."
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
    _boundary(flags, lambda: _issue(flags, rotate=False))


@command.command("rotate", context_settings=_SETTINGS, epilog=_EPILOG)
@_target_options
@_output_options
def rotate_command(**flags: Any) -> None:
    """Replace the token and rewrite the outputs; the old token stops working.

    In secret mode a token Secret under a fresh name (SECRET-xxxxxx) is created,
    verified and written out, and only then are the previous Secrets deleted,
    which revokes their tokens. (A legacy token is derived from the Secret's name,
    so re-creating the same name would bring the same token back.) In request mode
    a new short-lived token is issued; the old one lives until it expires.
    """
    _boundary(flags, lambda: _issue(flags, rotate=True))


@command.command("revoke", context_settings=_SETTINGS, epilog=_EPILOG)
@_target_options
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Also delete the ServiceAccount and bindings bootstrap-token created.",
)
def revoke_command(**flags: Any) -> None:
    """Delete the token Secret, which revokes its token (a later request gets 401).

    Only objects labelled app.kubernetes.io/managed-by=bootstrap-token are
    deleted: a ServiceAccount that existed before (such as `default`) is kept.
    """
    _boundary(flags, lambda: _revoke(flags))


def _boundary(flags: dict[str, Any], job: Callable[[], int]) -> None:
    debug = bool(flags.get("debug"))
    _configure_logging(debug, bool(flags.get("quiet")))
    try:
        code = job()
    except BootstrapError as e:
        if debug:
            log.debug("traceback follows", exc_info=True)
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as e:
        if debug:
            raise
        click.echo(
            f"error: internal error ({type(e).__name__}); rerun with --debug for details "
            "and please report it",
            err=True,
        )
        sys.exit(1)
    sys.exit(code)


def _options(flags: dict[str, Any], cluster: str, service_account: str = "default") -> Any:
    from bootstrap import run
    from bootstrap.tokenrequest import parse_duration

    return run.Options(
        cluster=cluster,
        context=flags["context"],
        kubeconfig=flags["kubeconfig"],
        namespace=flags["namespace"],
        service_account=service_account,
        secret=flags["secret"],
        format=flags.get("output_format", "env"),
        out=flags.get("out"),
        timeout=flags["timeout"],
        insecure_skip_tls_verify=flags["insecure_skip_tls_verify"],
        mode=flags.get("mode", "secret"),
        duration=parse_duration(flags.get("duration") or "1h"),
        audiences=tuple(flags.get("audiences") or ()),
        roles=tuple(flags.get("roles") or ()),
        cluster_roles=tuple(flags.get("cluster_roles") or ()),
        server=flags["server"],
        bound_secret=flags.get("bound_secret"),
        emit_server=flags.get("emit_server"),
    ).validate()


def _jobs(flags: dict[str, Any]) -> list[tuple[str, str]]:
    """(cluster, service account) pairs: --cluster (repeatable) or --all-clusters, times
    --service-account (repeatable), in the order given."""
    from bootstrap import run

    clusters = list(dict.fromkeys(flags["clusters"]))
    accounts = list(dict.fromkeys(flags["service_accounts"])) or ["default"]
    if flags["all_clusters"]:
        if clusters:
            raise UsageError("use either --cluster or --all-clusters, not both")
        environ, home, _ = run.environment()
        config = run.load_kubeconfig(_options(flags, "x"), environ, home)
        clusters = sorted(config.clusters)
        if not clusters:
            raise UsageError("--all-clusters: the kubeconfig defines no clusters")
    if not clusters:
        raise UsageError(
            "--cluster NAME is required (see the names with: bootstrap-token --list-clusters)"
        )
    if len(clusters) > 1 and flags.get("context"):
        raise UsageError("--context applies to one cluster; drop it when naming several")
    if len(accounts) > 1 and flags.get("secret"):
        raise UsageError("--secret names one Secret; drop it when naming several --service-account")
    out = flags.get("out")
    for count, placeholder, what in (
        (len(clusters), "{cluster}", "clusters"),
        (len(accounts), "{service_account}", "service accounts"),
    ):
        if count > 1 and out and (out == "-" or placeholder not in out):
            raise UsageError(
                f"with several {what} --out needs a {placeholder} placeholder, "
                f"e.g. 'creds/{placeholder}.env'"
            )
    return [(cluster, account) for cluster in clusters for account in accounts]


def _issue(flags: dict[str, Any], rotate: bool) -> int:
    from bootstrap import run

    environ, home, cwd = run.environment()
    if flags.get("list_clusters"):
        from bootstrap.target import cluster_table, render_table

        rows = cluster_table(run.load_kubeconfig(_options(flags, "x"), environ, home))
        if not rows:
            raise UsageError("the kubeconfig defines no clusters")
        click.echo(render_table(rows), nl=False)
        return 0
    jobs = _jobs(flags)
    if flags.get("dry_run"):
        return _dry_run(flags, jobs)
    for cluster, account in jobs:  # validate every job's options before any request
        run.check_output_location(_options(flags, cluster, account), cwd, environ)

    def one(cluster: str, account: str) -> str:
        options = _options(flags, cluster, account)
        timings = run.Timings()
        timings.mark("startup")
        target = run.load_target(options, environ, home)
        timings.mark("kubeconfig")
        log.info(
            "cluster %s at %s, as user %s (context %s)",
            target.cluster,
            target.server,
            target.user_name,
            target.context,
        )
        if rotate:
            options = replace(options, rotate=True)
        progress = _Progress(quiet=flags["quiet"] or len(jobs) > 1)
        try:
            issued = run.issue(options, target, timings, progress.update)
        finally:
            progress.done()
        out = run.write_outputs(issued, options, cwd, environ)
        timings.mark("emit")
        if rotate and options.secret_name:
            # Only now that the new token works and is written does the old one go.
            gone = run.revoke_token(options, target, everything=False, keep=issued.secret)
            log.info("rotated: revoked %s", ", ".join(gone) or "nothing (no previous token)")
        log.debug("timings: %s", timings.summary())
        return f"{issued.identity} -> {out or options.format}"

    return _run_jobs(jobs, one, flags)


def _revoke(flags: dict[str, Any]) -> int:
    from bootstrap import run

    environ, home, _ = run.environment()
    jobs = _jobs(flags)

    def one(cluster: str, account: str) -> str:
        options = _options(flags, cluster, account)
        target = run.load_target(options, environ, home)
        gone = run.revoke_token(options, target, everything=flags["everything"])
        return "deleted " + (", ".join(gone) if gone else "nothing (nothing of ours was there)")

    return _run_jobs(jobs, one, flags)


def _run_jobs(
    jobs: list[tuple[str, str]], one: Callable[[str, str], str], flags: dict[str, Any]
) -> int:
    if len(jobs) == 1:
        log.info("%s", one(*jobs[0]))
        return 0
    from bootstrap.fleet import FLEET_FAILED, render_summary, run_all

    several_accounts = len({account for _, account in jobs}) > 1
    labels = {
        (f"{cluster}/{account}" if several_accounts else cluster): (cluster, account)
        for cluster, account in jobs
    }
    outcomes = run_all(list(labels), lambda label: one(*labels[label]), flags["parallel"])
    click.echo(render_summary(outcomes), err=True, nl=False)
    return 0 if all(o.ok for o in outcomes) else FLEET_FAILED


def _dry_run(flags: dict[str, Any], jobs: list[tuple[str, str]]) -> int:
    import yaml

    from bootstrap.apply import planned_objects

    objects = []
    for account in dict.fromkeys(account for _, account in jobs):
        options = _options(flags, jobs[0][0], account)
        objects += planned_objects(
            options.namespace,
            options.service_account,
            options.secret_name,
            options.roles,
            options.cluster_roles,
        )
    click.echo(yaml.safe_dump_all(objects, sort_keys=False), nl=False)
    log.info("dry run: nothing was applied (%d objects would be)", len(objects))
    return 0


class _Progress:
    """While waiting for the token controller: a live status line on a TTY, plain
    log lines every few seconds otherwise, nothing with --quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        self.shown = False
        self.last = -10.0

    def update(self, elapsed: float) -> None:
        if self.quiet or elapsed < 0.2:  # the usual wait is a few ms: show nothing then
            return
        now = time.monotonic()
        if self.tty:
            if now - self.last >= 0.1:
                sys.stderr.write(
                    f"\r\x1b[Kbootstrap-token: waiting for the token controller to fill the "
                    f"Secret... {elapsed:.1f} s"
                )
                sys.stderr.flush()
                self.shown, self.last = True, now
        elif now - self.last >= 5.0:
            log.info("waiting for the token controller to fill the Secret (%.0f s)", elapsed)
            self.last = now

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def main() -> None:
    command(prog_name=_prog_name())


def _prog_name() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "kubectl bootstrap-token" if name == "kubectl-bootstrap_token" else "bootstrap-token"


if __name__ == "__main__":
    main()
