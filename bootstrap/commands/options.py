"""From the command line's flags to the jobs: which clusters and ServiceAccounts
(`--cluster`, `--all-clusters`, the current context, in-cluster), the validated
`run.Options` of each, and the output choices (`-o` against its older spelling
`--format`, `--renew-before` against `--duration`). No request is made here: at most
the kubeconfig (or the Pod's ServiceAccount files) is read. `jobs.py` runs the jobs;
`list.py` and `check.py` share `given` and `jobs_of`. Heavy modules are imported
inside the functions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from bootstrap.errors import UsageError

log = logging.getLogger("bootstrap")


def given(parameter: str) -> bool:
    """Whether the user typed this flag (as opposed to its default)."""
    ctx = click.get_current_context(silent=True)
    source = ctx.get_parameter_source(parameter) if ctx else None
    return source is not None and source is not click.core.ParameterSource.DEFAULT


def options_for(flags: dict[str, Any], cluster: str, service_account: str = "default") -> Any:
    from bootstrap import run
    from bootstrap.steps.tokenrequest import parse_duration

    options = run.Options(
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
        ttl=_ttl(flags.get("ttl")),
    ).validate()
    if options.apply_to is not None or options.delivery_name is not None:
        from bootstrap.outputs import deliver

        deliver.validate(options)  # the delivery flags (imported only when given)
    return options


def _ttl(text: str | None) -> int | None:
    """--ttl DURATION in seconds (None: no lease)."""
    if text is None:
        return None
    from bootstrap.steps.sweep import parse_ttl

    return parse_ttl(text)


def jobs_of(flags: dict[str, Any]) -> list[tuple[str, str]]:
    """(cluster, service account) pairs: --cluster (repeatable) or --all-clusters, times
    --service-account (repeatable), in the order given."""
    from bootstrap import run

    clusters = list(dict.fromkeys(flags["clusters"]))
    accounts = list(dict.fromkeys(flags["service_accounts"])) or ["default"]
    if flags["all_clusters"]:
        if clusters:
            raise UsageError("use either --cluster or --all-clusters, not both")
        environ, home, _ = run.environment()
        config = run.load_kubeconfig(options_for(flags, "x"), environ, home)
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


def in_cluster(flags: dict[str, Any]) -> None:
    """In a Pod without a kubeconfig (or with --in-cluster): the Pod's ServiceAccount
    does the bootstrap, --cluster only names the cluster, -n defaults to the Pod's."""
    from bootstrap import run
    from bootstrap.kube import incluster

    environ, home, _ = run.environment()
    flags.update(incluster.flag_updates(flags, given("namespace"), environ, home))


def _default_cluster(flags: dict[str, Any]) -> str:
    """No --cluster: the cluster of --context, else of the current context (kubectl's habit)."""
    from bootstrap import run
    from bootstrap.kube.target import default_cluster

    environ, home, _ = run.environment()
    config = run.load_kubeconfig(options_for(flags, "x"), environ, home)
    cluster = default_cluster(config, flags.get("context"))
    context = flags.get("context") or config.current_context
    log.info("no --cluster given: using cluster %r of context %r", cluster, context)
    return cluster


def resolve_output(flags: dict[str, Any]) -> None:
    """-o FORMAT chooses the format and, unless --out says otherwise, stdout (kubectl's
    habit); --format, its older spelling, keeps writing ./CLUSTER.EXT by default."""
    output = flags.get("output")
    if not output:
        return
    older = flags.get("output_format")
    if given("output_format") and older != output:
        raise UsageError(
            f"-o {output} and --format {older} disagree: use -o alone "
            "(--format is its older spelling)"
        )
    flags["output_format"] = output
    if flags.get("out") is None and output != "github" and not flags.get("apply_to"):
        flags["out"] = "-"


def check_renewal_window(flags: dict[str, Any]) -> None:
    """--renew-before at least as long as a request-mode --duration reissues the token
    on every run: a warning naming both flags (not an error: a forced renewal is a
    legitimate, if wasteful, way to get a fresh token)."""
    from bootstrap.steps.tokenrequest import parse_duration

    window_text = flags.get("renew_before")
    if window_text is None or flags.get("mode") != "request":
        return
    window = parse_duration(window_text, "--renew-before", minimum=0)
    duration_text = flags.get("duration") or "1h"
    if window >= parse_duration(duration_text):
        log.warning(
            "warning: --renew-before %s is not shorter than --duration %s: every run will "
            "issue a new token; give a --renew-before shorter than --duration (e.g. a third "
            "of it)",
            window_text,
            duration_text,
        )


def inventory_clusters(
    flags: dict[str, Any], required: str | None = None
) -> tuple[list[str], Mapping[str, str], Path]:
    """For `list` and `sweep`: -n against -A checked (and, with `required`, the usage
    error when neither is given), the namespace name checked, then the clusters,
    chosen as `issue` chooses them; in a Pod, its own (-n stays as given). Returns
    them with the environment and home they were chosen in."""
    from bootstrap import run as steps
    from bootstrap.kube import incluster
    from bootstrap.kube.target import validate_name

    namespace = flags.get("namespace")
    if namespace and flags.get("all_namespaces"):
        raise UsageError("use either -n/--namespace or -A/--all-namespaces, not both")
    if required and not namespace and not flags.get("all_namespaces"):
        raise UsageError(required)
    if namespace:
        validate_name(namespace, "--namespace")
    environ, home, _ = steps.environment()
    flags.update(incluster.flag_updates(flags, True, environ, home))
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
    return list(dict.fromkeys(cluster for cluster, _ in jobs_of(shared))), environ, home
