"""`bootstrap-token sweep`: the command line of `sweep.py`.

Only click is imported here; the work (and its imports) happens when the command runs.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from bootstrap.commands import flags as shared
from bootstrap.commands.help import Documented
from bootstrap.console import NOTICE

log = logging.getLogger("bootstrap")

_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "terminal_width": 100}
EXAMPLES = """\
# A CI job's account and token, leased for 2 hours (issue --ttl)
bootstrap-token --cluster prod -n ci --service-account job-42 --ttl 2h

# What bootstrap-token created in namespace ci whose lease (--ttl) ran out: delete it
bootstrap-token sweep --cluster prod -n ci

# Every namespace of every cluster, first without deleting anything
bootstrap-token sweep --all-clusters -A --dry-run
"""
FOOTER = [
    "Deleted: objects labelled app.kubernetes.io/managed-by=bootstrap-token whose lease",
    "(annotation bootstrap-token/expires-at, set by --ttl) ran out: token Secrets of a live",
    "ServiceAccount (name and UID annotations), bindings whose only subject is that account,",
    "ServiceAccounts without a token that outlives the sweep. Everything else is kept, and",
    "why is said on stderr. One line per deleted object on stdout; docs/lifecycle.md.",
    "Exit codes: 0 swept (even if nothing expired), 2 usage, 3 kubeconfig, 4 unreachable,",
    "5 refused, 10 a cluster of several failed; every code: docs/exit-codes.md",
]


@click.command(
    "sweep",
    cls=Documented,
    context_settings=_SETTINGS,
    examples=EXAMPLES,
    groups=[
        ("Common flags", ["clusters", "namespace", "all_namespaces", "dry_run"]),
        (
            "Connection flags",
            ["context", "kubeconfig", "timeout", "insecure_skip_tls_verify", "in_cluster"],
        ),
        ("Run flags", ["all_clusters", "quiet", "debug", "help"]),
    ],
    footer=FOOTER,
)
@shared.targets
@click.option("-n", "--namespace", metavar="NS", help="Sweep this namespace.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Sweep every namespace.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Delete nothing: each delete is a server-side dry run; the lines say 'would delete'.",
)
@shared.connection
@click.option("-q", "--quiet", is_flag=True, help="Only errors and warnings on stderr.")
@click.option("--debug", is_flag=True, help="Log each request; show tracebacks.")
def sweep_command(**flags: Any) -> None:
    """Delete what bootstrap-token created whose lease (--ttl) has expired.

    Token Secrets first (their tokens stop working at once), then bindings, then
    ServiceAccounts. Objects that were there before a run never have a lease and are
    never deleted; a binding that also binds others, or a Secret of another account,
    is kept.
    """
    from bootstrap.commands.boundary import boundary

    boundary(flags, lambda: run(flags))


def run(flags: dict[str, Any]) -> int:
    from datetime import datetime, timezone

    from bootstrap import run as steps
    from bootstrap.commands.options import inventory_clusters
    from bootstrap.errors import FLEET_FAILED, BootstrapError, ConflictError
    from bootstrap.kube.client import Deadline
    from bootstrap.redact import redact
    from bootstrap.steps import sweep

    namespace = flags.get("namespace")  # as given, before a Pod's own settings
    names, environ, home = inventory_clusters(
        flags, required="sweep needs -n NAMESPACE or --all-namespaces (-A)"
    )
    failed = deleted = kept = 0
    verb = "would delete" if flags["dry_run"] else "deleted"
    for cluster in names:
        options = steps.Options(
            cluster=cluster,
            context=flags.get("context"),
            kubeconfig=flags.get("kubeconfig"),
            timeout=flags["timeout"],
            insecure_skip_tls_verify=flags["insecure_skip_tls_verify"],
            in_cluster=bool(flags.get("in_cluster")),
        )
        prefix = f"[{cluster}] " if len(names) > 1 else ""
        try:
            target = steps.load_target(options, environ, home)
            api = steps.admin_api(options, target, Deadline(options.timeout))
            now = datetime.now(timezone.utc)
            for decision in sweep.look(api, namespace, now):
                if decision.action == "delete":
                    try:
                        sweep.delete(api, decision, flags["dry_run"])
                    except ConflictError:  # its UID precondition failed: replaced meanwhile
                        kept += 1
                        log.warning("%s%s was replaced meanwhile; kept", prefix, decision.what)
                        continue
                    deleted += 1
                    click.echo(
                        redact(f"{prefix}{verb} {decision.what} (lease expired {decision.lease})")
                    )
                else:
                    kept += 1
                    log.warning("%s%s %s; kept", prefix, decision.what, decision.reason)
            api.close()
        except BootstrapError as e:
            if len(names) == 1:
                raise
            failed += 1
            log.error("error: cluster %s: %s", cluster, e)
    log.log(NOTICE, "%d %s, %d kept", deleted, verb, kept)  # the one line by default
    return FLEET_FAILED if failed else 0
