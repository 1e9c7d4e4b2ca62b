"""The whole job, wiring the steps together:
kubeconfig -> target -> apply -> wait (or token request) -> verify -> emit.

`Options` is the validated command line; `issue` returns a verified token,
`outputs.write_outputs` puts it where the user asked, `revoke_token` undoes it. All take
their environment (variables, home and working directory, streams) as parameters.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap import redact
from bootstrap.errors import ApiError
from bootstrap.kube.client import Api, Credentials, Deadline
from bootstrap.kube.target import Target
from bootstrap.outputs import emit
from bootstrap.steps.connect import (
    PLAIN_HTTP_WARNING,
    admin_api,
    kubeconfig_ca,
    load_kubeconfig,
    load_target,
    skips_tls_verification,
    with_context_namespace,
)
from bootstrap.steps.options import Options

if TYPE_CHECKING:
    from bootstrap.steps.plan import Plan
    from bootstrap.steps.rules import Rules

log = logging.getLogger("bootstrap")

# The steps' names, for the callers that reach them through the job (jobs, api, tests).
__all__ = [
    "PLAIN_HTTP_WARNING",
    "Options",
    "Timings",
    "admin_api",
    "environment",
    "issue",
    "kubeconfig_ca",
    "load_kubeconfig",
    "load_target",
    "revoke_token",
    "skips_tls_verification",
    "with_context_namespace",
]


def _process_start() -> float:
    """When this process started, on the perf_counter clock (Linux; else: now)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
        return time.perf_counter() - max(0.0, age)
    except (OSError, ValueError, IndexError):
        return time.perf_counter()


@dataclass
class Timings:
    """Where the time of a run goes (shown with --debug). The first step,
    "startup", is interpreter start and imports (10 ms resolution)."""

    marks: list[tuple[str, float]] = field(default_factory=list)
    start: float = field(default_factory=_process_start)

    def mark(self, step: str) -> None:
        self.marks.append((step, time.perf_counter()))

    def summary(self) -> str:
        parts, previous = [], self.start
        for step, at in self.marks:
            parts.append(f"{step} {1000 * (at - previous):.0f} ms")
            previous = at
        return ", ".join(parts) + f"; total {1000 * (previous - self.start):.0f} ms"


def issue(
    options: Options,
    target: Target,
    timings: Timings,
    on_wait: Callable[[float], None] | None = None,
) -> emit.Issued:
    """Apply, then wait (or request), then verify: a token that is known to work."""
    from bootstrap.steps.apply import apply
    from bootstrap.steps.tokenrequest import request_token
    from bootstrap.steps.verify import expected_identity
    from bootstrap.steps.wait import wait_for_token

    deadline = Deadline(options.timeout)
    admin = admin_api(options, target, deadline)
    timings.mark("connect")
    ns, sa, secret = options.namespace, options.service_account, options.secret_name
    lease = None
    if options.ttl is not None:
        from bootstrap.steps.sweep import lease_until

        lease = lease_until(options.ttl)
        log.info("--ttl: what this run creates expires at %s (then sweep deletes it)", lease)
    secret_body = apply(
        admin,
        ns,
        sa,
        secret,
        options.roles,
        options.cluster_roles,
        fresh=options.rotate,
        lease=lease,
    )
    timings.mark("apply")
    expires_at = None
    ca_of_kubeconfig = kubeconfig_ca(target)
    if secret is None:
        token, expiry = request_token(
            admin,
            ns,
            sa,
            options.duration if options.ttl is None else min(options.duration, options.ttl),
            options.audiences,
            ca_of_kubeconfig,
            options.bound_secret,
        )
        expires_at = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        timings.mark("token request")
    else:
        secret = (secret_body or {}).get("metadata", {}).get("name", secret)
        token = wait_for_token(admin, ns, secret, deadline, secret_body, on_wait)
        timings.mark("wait")

    insecure = skips_tls_verification(options, target)
    ca_pem = ca_of_kubeconfig or token.ca_pem
    identity, powers, can = _verify(options, target, token.token, ca_pem, insecure, deadline)
    timings.mark("verify")
    return emit.Issued(
        cluster=target.cluster,
        server=(options.emit_server or target.server).rstrip("/"),
        namespace=ns,
        service_account=sa,
        secret=secret or "",
        token=token.token,
        ca_pem=ca_pem,
        identity=identity or expected_identity(ns, sa),
        insecure=insecure,
        expires_at=expires_at,
        identity_checked=identity is not None,
        powers=powers,
        can=can,
        tls_server_name=target.tls_server_name,
        proxy_url=target.proxy_url,
        lease=lease,
    )


def _verify(
    options: Options,
    target: Target,
    token: str,
    ca_pem: bytes | None,
    insecure: bool,
    deadline: Deadline,
) -> tuple[str | None, tuple[str, ...] | None, Rules | None]:
    """(identity, powers, can) of the new token: who the API server says it is (None: it
    would not say), its dangerous powers and, for json output, its rules (rules.py;
    None: not known). Refuses a token that is not a plain bearer token before it is
    sent, printed or written."""
    from bootstrap.steps import powers as power_checks
    from bootstrap.steps.verify import expected_identity, verify

    redact.register(token)
    redact.check_plain_token(token, "the new token")
    ns, sa = options.namespace, options.service_account
    if options.audiences:
        # A token for other audiences is, by design, refused by the API server.
        log.info(
            "token is for audiences %s: not verifiable against the API server, so neither "
            "its identity nor what it can do was checked",
            ", ".join(options.audiences),
        )
        return None, None, None
    if target.server.startswith("http://"):
        log.warning(PLAIN_HTTP_WARNING, target.server, "new token", "s", "it")
    as_sa = Api(
        target.server,
        Credentials(token=token),
        deadline,
        ca_data=ca_pem,
        insecure=insecure,
        tls_server_name=target.tls_server_name,
        proxy_url=target.proxy_url,
        who="the new token",
    )
    identity = verify(as_sa, ns, sa)
    powers = power_checks.assess(as_sa, ns, bool(options.roles or options.cluster_roles))
    warning = power_checks.warning(identity or expected_identity(ns, sa), ns, powers)
    if warning:
        log.warning("%s", warning, extra={"alarm": True})
    can = None
    if options.format == "json":  # the `can` key; other formats have no place for it
        from bootstrap.steps import rules

        try:
            can = rules.review(as_sa, ns)
        except ApiError as e:
            log.warning("warning: could not find out what the new token can do: %s", e)
    return identity, powers, can


def revoke_token(
    options: Options,
    target: Target,
    everything: bool,
    keep: str | None = None,
    plan: Plan | None = None,
) -> Plan:
    """Delete the token Secret(s) of the ServiceAccount, except `keep` (rotate's new one);
    what went and what was kept (and why) is in the returned plan, and logged once."""
    from bootstrap.steps.revoke import revoke

    admin = admin_api(options, target, Deadline(options.timeout))
    secret = options.secret or f"{options.service_account}-token"
    return revoke(admin, options.namespace, options.service_account, secret, everything, keep, plan)


def environment() -> tuple[Mapping[str, str], Path, Path]:
    return os.environ, Path.home(), Path.cwd()
