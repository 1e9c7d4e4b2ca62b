"""The command line: parse flags, run the job, and be the one error boundary.

Every `BootstrapError` becomes one `error: ...` line on stderr and its exit code
(see `bootstrap.errors.EXIT_CODES`); a traceback appears only with --debug.
Heavy modules are imported inside the command so `--help` and `--version` stay fast.
"""

from __future__ import annotations

import logging
import re
import sys

import click

from bootstrap import __version__
from bootstrap.errors import EXIT_CODES, BootstrapError

log = logging.getLogger("bootstrap")

_EPILOG = "\b\nExit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())


class _Redact(logging.Filter):
    """Defence in depth: nothing is meant to log a token, but if a JWT ever reaches
    a log record it is masked."""

    JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.JWT.search(message):
            record.msg, record.args = self.JWT.sub("<redacted>", message), None
        return True


def _configure_logging(debug: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("bootstrap-token: %(message)s"))
    handler.addFilter(_Redact())
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "terminal_width": 100},
    epilog=_EPILOG,
)
@click.option(
    "--cluster", metavar="NAME", help="Cluster name from the kubeconfig (clusters[].name)."
)
@click.option(
    "--context",
    metavar="CTX",
    help="Context supplying the credentials, when several use the cluster.",
)
@click.option(
    "--kubeconfig",
    metavar="PATH",
    help="Kubeconfig file (default: $KUBECONFIG, merged; else ~/.kube/config).",
)
@click.option(
    "-n",
    "--namespace",
    default="default",
    show_default=True,
    help="Namespace of the ServiceAccount.",
)
@click.option(
    "--service-account",
    default="default",
    show_default=True,
    metavar="SA",
    help="ServiceAccount to issue the token for (created if missing).",
)
@click.option("--secret", metavar="NAME", help="Name of the token Secret  [default: SA-token]")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["env", "kubeconfig", "json"]),
    default="env",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--out", metavar="PATH|-", help="Output file, or - for stdout  [default: ./CLUSTER.FORMAT]"
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up after this long, all steps included.",
)
@click.option(
    "--insecure-skip-tls-verify",
    is_flag=True,
    help="Do not verify the API server's certificate (prints a warning).",
)
@click.option(
    "--list-clusters", is_flag=True, help="List the kubeconfig's clusters and servers, then exit."
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors and warnings on stderr.")
@click.option("--debug", is_flag=True, help="Log each request and step timings; show tracebacks.")
@click.version_option(__version__, prog_name="bootstrap-token")
def command(
    cluster: str | None,
    context: str | None,
    kubeconfig: str | None,
    namespace: str,
    service_account: str,
    secret: str | None,
    output_format: str,
    out: str | None,
    timeout: float,
    insecure_skip_tls_verify: bool,
    list_clusters: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Issue a working, verified API token for cluster NAME of your kubeconfig.

    Creates (or reuses) the ServiceAccount and a token Secret, waits for the token
    controller to fill it, verifies the token against the API server, and writes an
    env file to `source` (APISERVER, TOKEN, CACERT, NAMESPACE), a standalone
    kubeconfig, or JSON.

    \b
    Examples:
      bootstrap-token --list-clusters
      bootstrap-token --cluster dev && source dev.env
      curl "$APISERVER/api" -H "Authorization: Bearer $TOKEN" --cacert "$CACERT"
      bootstrap-token --cluster prod -n ci --service-account deployer \\
          --format kubeconfig --out ci.kubeconfig
    """
    _configure_logging(debug, quiet)
    try:
        _run(
            cluster,
            context,
            kubeconfig,
            namespace,
            service_account,
            secret,
            output_format,
            out,
            timeout,
            insecure_skip_tls_verify,
            list_clusters,
            debug,
        )
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


def _run(
    cluster: str | None,
    context: str | None,
    kubeconfig: str | None,
    namespace: str,
    service_account: str,
    secret: str | None,
    output_format: str,
    out: str | None,
    timeout: float,
    insecure: bool,
    list_clusters: bool,
    debug: bool,
) -> None:
    from bootstrap import run
    from bootstrap.errors import UsageError
    from bootstrap.kubeconfig import Kubeconfig, default_paths
    from bootstrap.target import cluster_table, render_table

    environ, home, cwd = run.environment()
    if list_clusters:
        config = Kubeconfig.from_files(default_paths(kubeconfig, environ, home))
        rows = cluster_table(config)
        if not rows:
            raise UsageError("the kubeconfig defines no clusters")
        click.echo(render_table(rows), nl=False)
        return
    if not cluster:
        raise UsageError(
            "--cluster NAME is required (see the names with: bootstrap-token --list-clusters)"
        )
    options = run.Options(
        cluster=cluster,
        context=context,
        kubeconfig=kubeconfig,
        namespace=namespace,
        service_account=service_account,
        secret=secret,
        format=output_format,
        out=out,
        timeout=timeout,
        insecure_skip_tls_verify=insecure,
    ).validate()
    timings = run.Timings()
    target = run.load_target(options, environ, home)
    timings.mark("kubeconfig")
    log.info(
        "cluster %s at %s, as user %s (context %s)",
        target.cluster,
        target.server,
        target.user_name,
        target.context,
    )
    issued = run.issue(options, target, timings)
    run.write_outputs(issued, options, cwd)
    timings.mark("emit")
    log.debug("timings: %s", timings.summary())


def main() -> None:
    command(prog_name="bootstrap-token")


if __name__ == "__main__":
    main()
