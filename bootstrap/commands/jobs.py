"""From the command line's flags to jobs, and running them: which clusters and
ServiceAccounts (`--cluster`, `--all-clusters`, the current context, in-cluster),
the validated `run.Options` of each, issue/rotate/revoke over all of them (one, or
a fleet with its summary), server-side dry runs with their plans, and the live
progress line. `cli.py` parses flags and is the error boundary; it calls `issue`
and `revoke` here. Heavy modules are imported inside the functions.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click

from bootstrap.console import NOTICE
from bootstrap.errors import UsageError, WaitTimeout
from bootstrap.redact import redact

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


def result_line(issued: Any, destination: str, ca_file: Any = None) -> str:
    """The one line of a successful issue: who, where, until when, and where it went."""
    until = f"valid until {issued.expires_at}" if issued.expires_at else "does not expire"
    if not issued.expires_at and not issued.secret:
        until = "expiry unknown"
    if getattr(issued, "lease", None):  # --ttl
        until += f", leased until {issued.lease} (then sweep deletes it)"
    line = f"{issued.identity} on cluster {issued.cluster}, {until} -> {destination}"
    if ca_file is not None:
        line += f" (CA in {ca_file})"
    return line


def issue(flags: dict[str, Any], rotate: bool) -> int:
    import io
    import json

    from bootstrap import run
    from bootstrap.outputs import write as outputs

    resolve_output(flags)
    check_renewal_window(flags)
    in_cluster(flags)
    environ, home, cwd = run.environment()
    if flags.get("list_clusters"):
        from bootstrap.kube.target import cluster_table, render_table

        rows = cluster_table(run.load_kubeconfig(options_for(flags, "x"), environ, home))
        if not rows:
            raise UsageError("the kubeconfig defines no clusters")
        click.echo(render_table(rows), nl=False)
        return 0
    from bootstrap.steps.powers import refuse_default_binding

    refuse_default_binding(
        flags["namespace"],
        flags["service_accounts"],
        given("service_accounts"),
        flags.get("roles") or (),
        flags.get("cluster_roles") or (),
    )
    jobs = jobs_of(flags)
    if flags.get("dry_run"):
        for cluster, account in jobs:  # a usage error is one, before any request
            options_for(flags, cluster, account)
        return _dry_run(flags, jobs, rotate)
    # Every job's outputs are checked before any request, and against each other.
    outputs.check_outputs([options_for(flags, c, a) for c, a in jobs], cwd, environ)
    # Several tokens as json on stdout: one document, a list in the order of the jobs.
    collect = len(jobs) > 1 and flags.get("out") == "-" and flags.get("output_format") == "json"
    documents: dict[tuple[str, str], Any] = {}
    from bootstrap.outputs.emit import SECRET_FORMATS

    if flags.get("output_format") in SECRET_FORMATS:
        from bootstrap.outputs import deliver

        deliver.check_jobs([options_for(flags, c, a) for c, a in jobs])

    def one(cluster: str, account: str) -> str:
        options = options_for(flags, cluster, account)
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
            from bootstrap.outputs.renew import renew_or_keep

            options, kept = renew_or_keep(options, target, cwd, flags["renew_before"])
            if kept:
                return kept
        # --apply-to is checked (context, namespace, permission) before the target is asked.
        delivery = None
        if options.apply_to is not None:
            from bootstrap.outputs import deliver

            delivery = deliver.prepare(options, environ, home, deadline - time.monotonic())
        progress = Progress(quiet=flags["quiet"] or len(jobs) > 1)
        try:
            issued = run.issue(options, target, timings, progress.update)
        except WaitTimeout as e:
            raise WaitTimeout(f"{e}. {left_behind(options)}") from None
        finally:
            progress.done()
        buffer = io.StringIO() if collect else None
        if delivery is not None:
            out: object = delivery.apply(issued)
        else:
            out = outputs.write_outputs(issued, options, cwd, environ, buffer, deadline=deadline)
        if buffer is not None:
            documents[(cluster, account)] = json.loads(buffer.getvalue())
        timings.mark("emit")
        destination = str(out) if out else "stdout" if options.out == "-" else options.format
        ca_file = None
        if out is None and options.format in ("env", "dotenv") and issued.ca_pem:
            ca_file = outputs.ca_path(options, cwd, environ)  # the CA a printed env names
        line = result_line(issued, destination, ca_file)
        if rotate and options.secret_name:
            # Only now that the new token works and is written does the old one go.
            done = run.revoke_token(options, target, everything=False, keep=issued.secret)
            line += "; rotated: " + (done.details() if done.entries else "no previous token")
        log.debug("timings: %s", timings.summary())
        return line

    code = run_jobs(jobs, one, flags)
    if collect:
        listed = [documents[job] for job in jobs if job in documents]
        click.echo(json.dumps(listed, indent=2))
    return code


def left_behind(options: Any) -> str:
    """What a run that gave up waiting leaves on the cluster, and how to remove it."""
    import shlex

    command = ["bootstrap-token", "revoke", "--cluster", options.cluster]
    for flag, value in (("--context", options.context), ("--kubeconfig", options.kubeconfig)):
        if value:
            command += [flag, value]
    command += ["-n", options.namespace, "--service-account", options.service_account]
    if options.secret:
        command += ["--secret", options.secret]
    return (
        f"Left behind: the token Secret {options.namespace}/{options.secret_name} (and the "
        "ServiceAccount and bindings this run created); to remove them: "
        + " ".join(shlex.quote(word) for word in [*command, "--all"])
    )


def revoke(flags: dict[str, Any]) -> int:
    from bootstrap import run
    from bootstrap.steps.plan import Plan

    in_cluster(flags)
    environ, home, _ = run.environment()
    jobs = jobs_of(flags)
    for cluster, account in jobs:  # a usage error is one, before any request
        options_for(flags, cluster, account)
    plans: dict[tuple[str, str], Plan] = {}

    def one(cluster: str, account: str) -> str:
        options = options_for(flags, cluster, account)
        target = run.load_target(options, environ, home)
        options = run.with_context_namespace(options, target)
        plan = Plan(dry_run=flags["dry_run"])
        run.revoke_token(options, target, everything=flags["everything"], plan=plan)
        plans[cluster, account] = plan  # only complete plans are printed
        if not plan.entries and not plan.dry_run:
            return "nothing deleted (nothing of ours was there)"
        return plan.summary() if plan.dry_run else plan.details()

    try:
        return run_jobs(jobs, one, flags)
    finally:
        if flags["dry_run"]:
            _print_plans(jobs, plans, "revoke")


def run_jobs(
    jobs: list[tuple[str, str]], one: Callable[[str, str], str], flags: dict[str, Any]
) -> int:
    if len(jobs) == 1:
        log.log(NOTICE, "%s", one(*jobs[0]))
        return 0
    from bootstrap.commands.fleet import FLEET_FAILED, render_summary, run_all
    from bootstrap.console import FleetCounter, is_terminal

    several_accounts = len({account for _, account in jobs}) > 1
    labels = {
        (f"{cluster}/{account}" if several_accounts else cluster): (cluster, account)
        for cluster, account in jobs
    }
    # A live count on a terminal; -v, --debug and --quiet print lines of their own.
    live = is_terminal() and not (flags.get("verbose") or flags.get("debug") or flags["quiet"])
    counter = FleetCounter(len(labels), live)
    counter.start()
    try:
        outcomes = run_all(
            list(labels),
            lambda label: one(*labels[label]),
            flags["parallel"],
            on_done=lambda outcome: counter.finished(outcome.ok),
        )
    finally:
        counter.clear()
    ok = all(o.ok for o in outcomes)
    if not (ok and flags["quiet"]):  # --quiet: the table only when something failed
        click.echo(redact(render_summary(outcomes)), err=True, nl=False)
    return 0 if ok else FLEET_FAILED


def _dry_run(flags: dict[str, Any], jobs: list[tuple[str, str]], rotate: bool) -> int:
    """Every GET as in the real run, every create (and rotate's deletes) as a server-side
    dry run: the plan goes to stdout, progress to stderr, nothing is changed."""
    from bootstrap import run
    from bootstrap.kube.client import Deadline
    from bootstrap.steps.apply import apply
    from bootstrap.steps.plan import Plan

    environ, home, _ = run.environment()
    plans: dict[tuple[str, str], Plan] = {}

    def one(cluster: str, account: str) -> str:
        options = options_for(flags, cluster, account)
        target = run.load_target(options, environ, home)
        plan = Plan(dry_run=True)
        admin = run.admin_api(options, target, Deadline(options.timeout))
        lease = None
        if options.ttl is not None:
            from bootstrap.steps.sweep import lease_until

            lease = lease_until(options.ttl)
        body = apply(
            admin,
            options.namespace,
            options.service_account,
            options.secret_name,
            options.roles,
            options.cluster_roles,
            fresh=rotate,
            plan=plan,
            lease=lease,
        )
        if rotate and body is not None:
            keep = body["metadata"]["name"]
            run.revoke_token(options, target, everything=False, keep=keep, plan=plan)
        plans[cluster, account] = plan  # only complete plans are printed
        return plan.summary()

    try:
        return run_jobs(jobs, one, flags)
    finally:
        _print_plans(jobs, plans, "rotate" if rotate else "issue")


def _print_plans(
    jobs: list[tuple[str, str]], plans: dict[tuple[str, str], Any], command_name: str
) -> None:
    """The complete plans of a dry run on stdout, in the order of the jobs (see
    `plan.render`); a job that failed has none (its error is on stderr)."""
    from bootstrap.steps.plan import render

    for cluster, account in jobs:
        if (cluster, account) not in plans:
            continue
        plan = plans[cluster, account]
        title = (
            f"bootstrap-token {command_name} --dry-run: cluster {cluster}, ServiceAccount "
            f"{account}; server-side dry run, nothing was changed"
        )
        click.echo(render(title, plan), nl=False)


class Progress:
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
            log.log(NOTICE, "waiting for the token controller to fill the Secret (%.0f s)", elapsed)
            self.last = now

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
