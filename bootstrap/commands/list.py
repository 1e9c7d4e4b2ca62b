"""`bootstrap-token list`: the command line of `inventory.py`.

Only click is imported here; the work (and its imports) happens when the command runs.
"""

from __future__ import annotations

import logging
from typing import Any

import click

log = logging.getLogger("bootstrap")

_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "terminal_width": 100}
_EPILOG = (
    "\b\nColumns: LAST-USED is the label kubernetes.io/legacy-token-last-used the API server\n"
    "stamps on a token Secret when its token is used (a date; once a day); INVALID-SINCE is\n"
    "set by the legacy token cleaner; IN-SA-SECRETS says whether the Secret is listed in\n"
    "the ServiceAccount's secrets (only those are eligible for the cleaner); ROLES are the\n"
    "RoleBindings (Role/X, ClusterRole/X) and ClusterRoleBindings (cluster:ClusterRole/X)\n"
    "naming the ServiceAccount.\n"
    "\b\nExit codes: 0 listed; 2 usage; 3 kubeconfig; 4 unreachable; 5 refused (401/403);\n"
    "10 several clusters and at least one failed (the others are listed)."
)


@click.command("list", context_settings=_SETTINGS, epilog=_EPILOG)
@click.option(
    "--cluster",
    "clusters",
    multiple=True,
    metavar="NAME",
    help="Cluster name from the kubeconfig (clusters[].name); repeat for several.",
)
@click.option("--all-clusters", is_flag=True, help="Every cluster of the kubeconfig.")
@click.option(
    "--in-cluster",
    is_flag=True,
    help="Use the Pod's ServiceAccount (automatic in a Pod without a kubeconfig).",
)
@click.option("--context", metavar="CTX", help="Context supplying the credentials.")
@click.option(
    "--kubeconfig",
    metavar="PATH",
    help="Kubeconfig file (default: $KUBECONFIG, merged; else ~/.kube/config).",
)
@click.option("-n", "--namespace", metavar="NS", help="Only this namespace.")
@click.option(
    "-A", "--all-namespaces", is_flag=True, help="Every namespace (the default without -n)."
)
@click.option(
    "--unmanaged",
    is_flag=True,
    help="Also list token Secrets nobody labelled as bootstrap-token's: who holds long-lived tokens.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table; json: {apiVersion: bootstrap-token/v1, kind: TokenList, items: [...]}.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up after this long (per cluster).",
)
@click.option(
    "--insecure-skip-tls-verify",
    is_flag=True,
    help="Do not verify the API server's certificate (prints a warning).",
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors and warnings on stderr.")
@click.option("--debug", is_flag=True, help="Log each request; show tracebacks.")
def list_command(**flags: Any) -> None:
    """List the ServiceAccounts, token Secrets and bindings bootstrap-token manages.

    One row per token Secret labelled app.kubernetes.io/managed-by=bootstrap-token
    (and per managed ServiceAccount without one, as request mode leaves them):
    namespace, ServiceAccount, Secret, created, last used, invalid since, whether
    the Secret is in the ServiceAccount's secrets, and the roles bound to it.
    With --unmanaged, every other token Secret too. Tokens are never printed.

    \b
    Examples:
      bootstrap-token list --cluster prod
      bootstrap-token list --all-clusters --unmanaged --format json
      bootstrap-token list --cluster prod -n ci
    """
    from bootstrap.commands.boundary import boundary

    boundary(flags, lambda: run(flags))


def clusters(flags: dict[str, Any]) -> list[str]:
    """The clusters to list, chosen as `issue` chooses them (--cluster, --all-clusters)."""
    from bootstrap.commands.jobs import jobs_of

    shared = {
        "clusters": flags["clusters"],
        "all_clusters": flags["all_clusters"],
        "context": flags.get("context"),
        "kubeconfig": flags.get("kubeconfig"),
        "namespace": "default",
        "service_accounts": ["default"],
        "secret": None,
        "out": None,
        "timeout": flags["timeout"],
        "insecure_skip_tls_verify": flags["insecure_skip_tls_verify"],
        "server": None,
    }
    return list(dict.fromkeys(cluster for cluster, _ in jobs_of(shared)))


def run(flags: dict[str, Any]) -> int:
    from bootstrap import run as steps
    from bootstrap.errors import FLEET_FAILED, BootstrapError, UsageError
    from bootstrap.kube.client import Deadline
    from bootstrap.kube.target import validate_name
    from bootstrap.steps import inventory

    namespace = flags.get("namespace")
    if namespace and flags.get("all_namespaces"):
        raise UsageError("use either -n/--namespace or -A/--all-namespaces, not both")
    if namespace:
        validate_name(namespace, "--namespace")
    from bootstrap.kube import incluster

    environ, home, _ = steps.environment()
    # In a Pod: its ServiceAccount lists (-n stays as given: all namespaces by default).
    flags.update(incluster.flag_updates(flags, True, environ, home))
    names = clusters(flags)
    rows: list[inventory.Row] = []
    failed = 0
    for cluster in names:
        options = steps.Options(
            cluster=cluster,
            context=flags.get("context"),
            kubeconfig=flags.get("kubeconfig"),
            timeout=flags["timeout"],
            insecure_skip_tls_verify=flags["insecure_skip_tls_verify"],
            in_cluster=bool(flags.get("in_cluster")),
        )
        try:
            target = steps.load_target(options, environ, home)
            api = steps.admin_api(options, target, Deadline(options.timeout))
            rows += inventory.collect(api, cluster, namespace, flags["unmanaged"])
            api.close()
        except BootstrapError as e:
            if len(names) == 1:
                raise
            failed += 1
            log.error("error: cluster %s: %s", cluster, e)
    render = inventory.render_json if flags["output_format"] == "json" else inventory.render_table
    click.echo(render(rows), nl=False)
    return FLEET_FAILED if failed else 0
