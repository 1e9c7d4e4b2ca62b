"""`bootstrap-token list`: the command line of `inventory.py`.

Only click is imported here; the work (and its imports) happens when the command runs.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from bootstrap.commands import flags as shared
from bootstrap.commands.help import Documented

log = logging.getLogger("bootstrap")

_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "terminal_width": 100}
EXAMPLES = """\
# What bootstrap-token manages on cluster prod (fits 100 columns)
bootstrap-token list --cluster prod

# One namespace, every column
bootstrap-token list --cluster prod -n ci -o wide

# Who holds long-lived tokens anywhere, as JSON
bootstrap-token list --all-clusters --unmanaged -o json
"""
FOOTER = [
    "Columns: LAST USED is the date the API server last saw the token (stamped once a day);",
    "'verified at issue' when that was the day it was issued (bootstrap-token's own check).",
    "-o wide adds CLUSTER, MANAGED, INVALID SINCE (set by the legacy token cleaner) and",
    "CLEANER MAY REVOKE (the Secret is listed in the ServiceAccount's secrets); docs/lifecycle.md.",
    "Exit codes: 0 listed, 2 usage, 3 kubeconfig, 4 unreachable, 5 refused, 10 a cluster",
    "of several failed; every code: docs/exit-codes.md",
]


@click.command(
    "list",
    cls=Documented,
    context_settings=_SETTINGS,
    examples=EXAMPLES,
    groups=[
        ("Common flags", ["clusters", "namespace", "all_namespaces", "output", "unmanaged"]),
        (
            "Connection flags",
            ["context", "kubeconfig", "timeout", "insecure_skip_tls_verify", "in_cluster"],
        ),
        ("Run flags", ["all_clusters", "verbose", "quiet", "debug", "help"]),
    ],
    footer=FOOTER,
)
@shared.targets
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
    "-o",
    "--output",
    type=click.Choice(["wide", "json"]),
    metavar="wide|json",
    help="wide: every column; json: {apiVersion: bootstrap-token/v1, kind: TokenList, items}.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    metavar="table|json",
    help="Older spelling: table (as -o wide) or json (as -o json).",
)
@shared.connection
@click.option("-v", "--verbose", is_flag=True, help="Every step on stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and warnings on stderr.")
@click.option("--debug", is_flag=True, help="Log each request; show tracebacks.")
def list_command(**flags: Any) -> None:
    """List the ServiceAccounts, token Secrets and bindings bootstrap-token manages.

    One row per token Secret labelled app.kubernetes.io/managed-by=bootstrap-token (and
    per managed ServiceAccount without one, as request mode leaves them); with
    --unmanaged every other token Secret too. Tokens are never printed.
    """
    from bootstrap.commands.boundary import boundary

    boundary(flags, lambda: run(flags))


def output_of(flags: dict[str, Any]) -> str:
    """table (fits 100 columns), wide or json: -o, else the older --format (whose table
    was every column: as -o wide)."""
    from bootstrap.commands.options import given
    from bootstrap.errors import UsageError

    output = flags.get("output")
    older = flags.get("output_format") if given("output_format") else None
    if output and older and {"json": "json", "table": "wide"}[older] != output:
        raise UsageError(f"-o {output} and --format {older} disagree: use -o alone")
    if output:
        return str(output)
    return {"json": "json", "table": "wide"}[older] if older else "table"


def run(flags: dict[str, Any]) -> int:
    from bootstrap import run as steps
    from bootstrap.commands.options import inventory_clusters
    from bootstrap.errors import FLEET_FAILED, BootstrapError
    from bootstrap.kube.client import Deadline
    from bootstrap.steps import inventory

    output = output_of(flags)  # a usage error before any request
    # In a Pod: its ServiceAccount lists (-n stays as given: all namespaces by default).
    namespace = flags.get("namespace")  # as given, before a Pod's own settings
    names, environ, home = inventory_clusters(flags)
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
    click.echo(inventory.render(rows, output), nl=False)
    return FLEET_FAILED if failed else 0
