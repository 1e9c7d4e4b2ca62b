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
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import click

from bootstrap import __version__
from bootstrap.command_group import COMPLETE_VAR, DefaultToIssue
from bootstrap.errors import EXIT_CODES, BootstrapError, UsageError
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


def _complete_clusters(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    try:
        from bootstrap.kubeconfig import Kubeconfig, default_paths
        from bootstrap.run import environment

        environ, home, _ = environment()
        paths = default_paths(ctx.params.get("kubeconfig"), environ, home)
        return [n for n in Kubeconfig.from_files(paths).clusters if n.startswith(incomplete)]
    except Exception:
        return []


def _complete_contexts(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    try:
        from bootstrap.kubeconfig import Kubeconfig, default_paths
        from bootstrap.run import environment

        environ, home, _ = environment()
        paths = default_paths(ctx.params.get("kubeconfig"), environ, home)
        return [n for n in Kubeconfig.from_files(paths).contexts if n.startswith(incomplete)]
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
    _boundary(flags, lambda: _issue(flags, rotate=False))


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
    _boundary(flags, lambda: _issue(flags, rotate=True))


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
    _boundary(flags, lambda: _revoke(flags))


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


def _given(parameter: str) -> bool:
    """Whether the user typed this flag (as opposed to its default)."""
    ctx = click.get_current_context(silent=True)
    source = ctx.get_parameter_source(parameter) if ctx else None
    return source is not None and source is not click.core.ParameterSource.DEFAULT


def _options(flags: dict[str, Any], cluster: str, service_account: str = "default") -> Any:
    from bootstrap import run
    from bootstrap.tokenrequest import parse_duration

    return run.Options(
        cluster=cluster,
        context=flags["context"],
        kubeconfig=flags["kubeconfig"],
        namespace=flags["namespace"] or "default",
        namespace_flag=flags["namespace"] is not None,
        service_account=service_account,
        secret=flags["secret"],
        format=flags.get("output_format", "env"),
        out=flags.get("out"),
        env_prefix=flags.get("env_prefix") or "",
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
        in_cluster=bool(flags.get("in_cluster")),
        apply_to=flags.get("apply_to"),
        delivery_name=flags.get("delivery_name"),
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
        clusters = [_default_cluster(flags)]
    if len(clusters) > 1 and flags.get("context"):
        raise UsageError("--context applies to one cluster; drop it when naming several")
    if len(accounts) > 1 and flags.get("secret"):
        raise UsageError("--secret names one Secret; drop it when naming several --service-account")
    out = flags.get("out")
    for count, placeholder, what in (
        (len(clusters), "{cluster}", "clusters"),
        (len(accounts), "{service_account}", "service accounts"),
    ):
        to_stdout = out == "-" and flags.get("output_format") != "json"  # json: one list
        if count > 1 and out and (to_stdout or (out != "-" and placeholder not in out)):
            raise UsageError(
                f"with several {what} --out needs a {placeholder} placeholder, "
                f"e.g. 'creds/{placeholder}.env'"
            )
    return [(cluster, account) for cluster in clusters for account in accounts]


def _in_cluster(flags: dict[str, Any]) -> None:
    """In a Pod without a kubeconfig (or with --in-cluster): the Pod's ServiceAccount
    does the bootstrap, --cluster only names the cluster, -n defaults to the Pod's."""
    from bootstrap import incluster, run

    environ, home, _ = run.environment()
    flags.update(incluster.flag_updates(flags, _given("namespace"), environ, home))


def _default_cluster(flags: dict[str, Any]) -> str:
    """No --cluster: the cluster of --context, else of the current context (kubectl's habit)."""
    from bootstrap import run
    from bootstrap.target import default_cluster

    environ, home, _ = run.environment()
    config = run.load_kubeconfig(_options(flags, "x"), environ, home)
    cluster = default_cluster(config, flags.get("context"))
    context = flags.get("context") or config.current_context
    log.info("no --cluster given: using cluster %r of context %r", cluster, context)
    return cluster


def _issue(flags: dict[str, Any], rotate: bool) -> int:
    import io
    import json

    from bootstrap import run

    _in_cluster(flags)
    environ, home, cwd = run.environment()
    if flags.get("list_clusters"):
        from bootstrap.target import cluster_table, render_table

        rows = cluster_table(run.load_kubeconfig(_options(flags, "x"), environ, home))
        if not rows:
            raise UsageError("the kubeconfig defines no clusters")
        click.echo(render_table(rows), nl=False)
        return 0
    from bootstrap.powers import refuse_default_binding

    refuse_default_binding(
        flags["namespace"],
        flags["service_accounts"],
        _given("service_accounts"),
        flags.get("roles") or (),
        flags.get("cluster_roles") or (),
    )
    jobs = _jobs(flags)
    if flags.get("dry_run"):
        for cluster, account in jobs:  # a usage error is one, before any request
            _options(flags, cluster, account)
        return _dry_run(flags, jobs, rotate)
    # Every job's outputs are checked before any request, and against each other.
    run.check_outputs([_options(flags, c, a) for c, a in jobs], cwd, environ)
    # Several tokens as json on stdout: one document, a list in the order of the jobs.
    collect = len(jobs) > 1 and flags.get("out") == "-" and flags.get("output_format") == "json"
    documents: dict[tuple[str, str], Any] = {}
    from bootstrap import deliver

    deliver.check_jobs([_options(flags, c, a) for c, a in jobs])

    def one(cluster: str, account: str) -> str:
        options = _options(flags, cluster, account)
        deadline = time.monotonic() + options.timeout
        timings = run.Timings()
        timings.mark("startup")
        target = run.load_target(options, environ, home)
        options = run.with_context_namespace(options, target)
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
        if flags.get("renew_before") is not None:
            from bootstrap.renew import renew_or_keep

            options, kept = renew_or_keep(options, target, cwd, flags["renew_before"])
            if kept:
                return kept
        # --apply-to is checked (context, namespace, permission) before the target is asked.
        delivery = deliver.prepare(options, environ, home, deadline - time.monotonic())
        progress = _Progress(quiet=flags["quiet"] or len(jobs) > 1)
        try:
            issued = run.issue(options, target, timings, progress.update)
        finally:
            progress.done()
        buffer = io.StringIO() if collect else None
        if delivery is not None:
            out: object = delivery.apply(issued)
        else:
            out = run.write_outputs(issued, options, cwd, environ, buffer, deadline=deadline)
        if buffer is not None:
            documents[(cluster, account)] = json.loads(buffer.getvalue())
        timings.mark("emit")
        if rotate and options.secret_name:
            # Only now that the new token works and is written does the old one go.
            done = run.revoke_token(options, target, everything=False, keep=issued.secret)
            log.info("rotated: %s", done.summary() if done.entries else "no previous token")
        log.debug("timings: %s", timings.summary())
        return f"{issued.identity} -> {out or options.format}"

    code = _run_jobs(jobs, one, flags)
    if collect:
        listed = [documents[job] for job in jobs if job in documents]
        click.echo(json.dumps(listed, indent=2))
    return code


def _revoke(flags: dict[str, Any]) -> int:
    from bootstrap import run
    from bootstrap.plan import Plan

    _in_cluster(flags)
    environ, home, _ = run.environment()
    jobs = _jobs(flags)
    for cluster, account in jobs:  # a usage error is one, before any request
        _options(flags, cluster, account)
    plans: dict[tuple[str, str], Plan] = {}

    def one(cluster: str, account: str) -> str:
        options = _options(flags, cluster, account)
        target = run.load_target(options, environ, home)
        options = run.with_context_namespace(options, target)
        plan = Plan(dry_run=flags["dry_run"])
        run.revoke_token(options, target, everything=flags["everything"], plan=plan)
        plans[cluster, account] = plan  # only complete plans are printed
        if not plan.entries and not plan.dry_run:
            return "nothing deleted (nothing of ours was there)"
        return plan.summary()

    try:
        return _run_jobs(jobs, one, flags)
    finally:
        if flags["dry_run"]:
            _print_plans(jobs, plans, "revoke")


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
    ok = all(o.ok for o in outcomes)
    if not (ok and flags["quiet"]):  # --quiet: the table only when something failed
        click.echo(redact(render_summary(outcomes)), err=True, nl=False)
    return 0 if ok else FLEET_FAILED


def _dry_run(flags: dict[str, Any], jobs: list[tuple[str, str]], rotate: bool) -> int:
    """Every GET as in the real run, every create (and rotate's deletes) as a server-side
    dry run: the plan goes to stdout, progress to stderr, nothing is changed."""
    from bootstrap import run
    from bootstrap.apply import apply
    from bootstrap.client import Deadline
    from bootstrap.plan import Plan

    environ, home, _ = run.environment()
    plans: dict[tuple[str, str], Plan] = {}

    def one(cluster: str, account: str) -> str:
        options = _options(flags, cluster, account)
        target = run.load_target(options, environ, home)
        plan = Plan(dry_run=True)
        admin = run.admin_api(options, target, Deadline(options.timeout))
        body = apply(
            admin,
            options.namespace,
            options.service_account,
            options.secret_name,
            options.roles,
            options.cluster_roles,
            fresh=rotate,
            plan=plan,
        )
        if rotate and body is not None:
            keep = body["metadata"]["name"]
            run.revoke_token(options, target, everything=False, keep=keep, plan=plan)
        plans[cluster, account] = plan  # only complete plans are printed
        return plan.summary()

    try:
        return _run_jobs(jobs, one, flags)
    finally:
        _print_plans(jobs, plans, "rotate" if rotate else "issue")


def _print_plans(
    jobs: list[tuple[str, str]], plans: dict[tuple[str, str], Any], command_name: str
) -> None:
    """The complete plans of a dry run on stdout, in the order of the jobs (see
    `plan.render`); a job that failed has none (its error is on stderr)."""
    from bootstrap.plan import render

    for cluster, account in jobs:
        if (cluster, account) not in plans:
            continue
        plan = plans[cluster, account]
        title = (
            f"bootstrap-token {command_name} --dry-run: cluster {cluster}, ServiceAccount "
            f"{account}; server-side dry run, nothing was changed"
        )
        click.echo(render(title, plan), nl=False)


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
                    redact(
                        f"\r\x1b[Kbootstrap-token: waiting for the token controller to fill "
                        f"the Secret... {elapsed:.1f} s"
                    )
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


def _add_commands() -> None:
    from bootstrap.cmd_check import check_command
    from bootstrap.cmd_list import list_command

    command.add_command(list_command)
    command.add_command(check_command)


_add_commands()


def main() -> None:
    command(prog_name=_prog_name(), complete_var=COMPLETE_VAR)


def _prog_name() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "kubectl bootstrap-token" if name == "kubectl-bootstrap_token" else "bootstrap-token"


if __name__ == "__main__":
    main()
