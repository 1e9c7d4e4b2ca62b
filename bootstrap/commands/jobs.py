"""Running the jobs: issue, rotate and revoke over every cluster and ServiceAccount
asked for (one, or a fleet with its summary), server-side dry runs with their plans,
the live progress line and the one line of a success. `options.py` turns the flags
into the jobs and their `run.Options`; `cli.py` parses flags and is the error
boundary; it calls `issue` and `revoke` here. Heavy modules are imported inside the
functions.
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

from bootstrap.commands.options import (
    check_renewal_window,
    given,
    in_cluster,
    jobs_of,
    options_for,
    resolve_output,
)
from bootstrap.console import NOTICE
from bootstrap.errors import UsageError, WaitTimeout
from bootstrap.redact import redact

log = logging.getLogger("bootstrap")


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
