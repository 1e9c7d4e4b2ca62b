"""The whole job, wiring the steps together:
kubeconfig -> target -> apply -> wait (or token request) -> verify -> emit.

`Options` is the validated command line; `issue` returns a verified token,
`outputs.write_outputs` puts it where the user asked, `revoke_token` undoes it. All take
their environment (variables, home and working directory, streams) as parameters.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap import deliver, emit, redact
from bootstrap.client import Api, Credentials, Deadline
from bootstrap.errors import ConfigError, UsageError
from bootstrap.kubeconfig import Kubeconfig, default_paths
from bootstrap.manifests import role_name_problem
from bootstrap.target import Target, select, validate_name

if TYPE_CHECKING:
    from bootstrap.plan import Plan

log = logging.getLogger("bootstrap")


@dataclass(frozen=True)
class Options:
    cluster: str
    context: str | None = None
    kubeconfig: str | None = None
    namespace: str = "default"
    namespace_flag: bool = True  # False: -n not given, the context's namespace applies
    service_account: str = "default"
    secret: str | None = None  # default: <service-account>-token
    format: str = "env"
    out: str | None = (
        None  # None: ./<cluster>.<ext>; "-": stdout; may hold {cluster}, {service_account}
    )
    env_prefix: str = ""  # prefix of env/dotenv/github variable names; may hold placeholders
    timeout: float = 60.0
    insecure_skip_tls_verify: bool = False
    mode: str = "secret"  # or "request" (TokenRequest, short-lived)
    duration: int = 3600
    audiences: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    cluster_roles: tuple[str, ...] = ()
    server: str | None = None  # where to send the bootstrap requests (e.g. kubectl proxy)
    rotate: bool = False  # make a token Secret under a fresh name (see apply.py)
    bound_secret: str | None = None  # request mode: the token dies with this Secret
    emit_server: str | None = None  # APISERVER written to the outputs (default: the cluster's)
    in_cluster: bool = False  # the Pod's ServiceAccount, not a kubeconfig (see incluster.py)
    apply_to: str | None = None  # CONTEXT/NAMESPACE: apply the Secret formats there (deliver.py)
    delivery_name: str | None = None  # --secret-name: name of the delivered Secret
    ttl: int | None = None  # --ttl seconds: a lease on every object the run creates (sweep.py)

    @property
    def secret_name(self) -> str | None:
        """The token Secret; None in request mode, which needs no Secret."""
        if self.mode == "request":
            return None
        return self.secret or f"{self.service_account}-token"

    def validate(self) -> Options:
        validate_name(self.namespace, "--namespace")
        validate_name(self.service_account, "--service-account", subdomain=True)
        validate_name(self.secret or f"{self.service_account}-token", "--secret", subdomain=True)
        for flag, names in (("--role", self.roles), ("--clusterrole", self.cluster_roles)):
            for name in names:
                problem = role_name_problem(name)
                if problem:
                    raise UsageError(
                        f"{flag} {name!r} is not a valid role name: {problem} "
                        "(see kubectl get roles,clusterroles -A)"
                    )
        for flag, url in (("--server", self.server), ("--emit-server", self.emit_server)):
            if url and not url.startswith(("https://", "http://")):
                raise UsageError(f"{flag} {url!r} must be an http:// or https:// URL")
        if self.audiences and self.mode != "request":
            raise UsageError("--audience needs --mode request")
        if self.bound_secret is not None:
            if self.mode != "request":
                raise UsageError("--bound-secret needs --mode request")
            validate_name(self.bound_secret, "--bound-secret", subdomain=True)
        if self.ttl is not None and self.mode == "request" and self.ttl < 600:
            raise UsageError(
                f"--ttl {self.ttl}s is shorter than the shortest request-mode token (10m): "
                "use --ttl 10m or more with --mode request"
            )
        _ = self.variable_prefix  # validates --env-prefix
        deliver.validate(self)
        return self

    @property
    def variable_prefix(self) -> str:
        """--env-prefix with {cluster} and {service_account} filled in, upper-cased and
        with anything but A-Z, 0-9 and _ made `_`: `{cluster}_` for `prod-eu` is `PROD_EU_`."""
        template = self.env_prefix
        literal = template.replace("{cluster}", "").replace("{service_account}", "")
        if not re.fullmatch(r"[A-Za-z0-9_]*", literal):
            raise UsageError(
                f"--env-prefix {template!r} may only hold letters, digits, _ and the "
                "placeholders {cluster} and {service_account}"
            )
        prefix = template
        for placeholder, value in (
            ("{cluster}", self.cluster),
            ("{service_account}", self.service_account),
        ):
            prefix = prefix.replace(placeholder, re.sub(r"[^A-Z0-9_]", "_", value.upper()))
        if prefix[:1].isdigit():
            raise UsageError(
                f"--env-prefix {template!r} gives {prefix!r} for cluster {self.cluster!r}: "
                "a variable name cannot start with a digit; put a letter first"
            )
        return prefix


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


_LOADED: dict[tuple[tuple[object, ...], ...], Kubeconfig] = {}
_LOADING = threading.Lock()


def load_kubeconfig(options: Options, environ: Mapping[str, str], home: Path) -> Kubeconfig:
    """The merged kubeconfig, read once per process while its files are unchanged: every
    job of a fleet asks for it, and parsing a big kubeconfig 20 times costs seconds."""
    paths = default_paths(options.kubeconfig, environ, home)
    if options.in_cluster:  # the Pod's context `in-cluster` joins (e.g. for --apply-to)
        from bootstrap import incluster

        return incluster.kubeconfig_with_pod(paths, incluster.service_account_dir(environ), environ)
    key = tuple(_file_stamp(path) for path in paths)
    with _LOADING:  # one parse, not one per waiting thread
        if key not in _LOADED:
            _LOADED[key] = Kubeconfig.from_files(paths)
        return _LOADED[key]


def _file_stamp(path: Path) -> tuple[object, ...]:
    """Identifies a file's current content well enough to reuse its parse (a merge into
    the same kubeconfig by an earlier job changes it)."""
    try:
        st = path.stat()
    except OSError:
        return (str(path),)
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns)


def load_target(options: Options, environ: Mapping[str, str], home: Path) -> Target:
    if options.in_cluster:
        from bootstrap import incluster

        directory = incluster.service_account_dir(environ)
        target = incluster.target_from_service_account(directory, environ, options.cluster)
        if not options.emit_server:
            log.info(
                "in-cluster: the outputs name %s, the API server's address inside the "
                "cluster; pass --emit-server URL for clients outside it",
                target.server,
            )
        return target
    return select(load_kubeconfig(options, environ, home), options.cluster, options.context)


def with_context_namespace(options: Options, target: Target) -> Options:
    """Without -n, the context's namespace (as kubectl), else `default`."""
    if options.namespace_flag or not target.namespace:
        return options
    try:
        validate_name(target.namespace, "namespace")
    except UsageError as e:
        raise ConfigError(f"context {target.context!r}: {e}") from None
    return replace(options, namespace=target.namespace)


def skips_tls_verification(options: Options, target: Target) -> bool:
    """--insecure-skip-tls-verify, or the kubeconfig's own insecure-skip-tls-verify."""
    return options.insecure_skip_tls_verify or target.insecure


PLAIN_HTTP_WARNING = (
    "warning: %s is plain http: the %s travel%s unencrypted; anyone on the network path can read %s"
)


def admin_api(options: Options, target: Target, deadline: Deadline) -> Api:
    """The bootstrap credentials, talking to the cluster (or to --server)."""
    from bootstrap.credentials import credentials_for
    from bootstrap.exec_plugin import cluster_info
    from bootstrap.transport import parse_server

    server = options.server or target.server
    if options.server:
        try:
            parse_server(options.server.rstrip("/"))
        except ValueError as e:
            raise UsageError(f"--server {options.server!r} is not a valid URL: {e}") from None
    insecure = skips_tls_verification(options, target)
    if insecure:
        log.warning(
            "warning: TLS verification is off for %s; anyone on the network path can "
            "read the token",
            target.server,
        )
    if server.startswith("http://"):
        log.warning(PLAIN_HTTP_WARNING, server.rstrip("/"), "bootstrap credentials", "", "them")
    info = None
    if target.user.get("exec"):
        info = cluster_info(target.cluster_entry, server, _kubeconfig_ca(target))
    return Api(
        server,
        credentials_for(target.user, target.user_name, deadline, info),
        deadline,
        ca_data=target.ca_data,
        ca_file=target.ca_file,
        insecure=insecure,
        tls_server_name=target.tls_server_name,
        # The cluster's proxy-url is for the cluster's server, not for --server.
        proxy_url=None if options.server else target.proxy_url,
        who=f"user {target.user_name!r} (context {target.context!r})",
    )


def issue(
    options: Options,
    target: Target,
    timings: Timings,
    on_wait: Callable[[float], None] | None = None,
) -> emit.Issued:
    """Apply, then wait (or request), then verify: a token that is known to work."""
    from bootstrap.apply import apply
    from bootstrap.tokenrequest import request_token
    from bootstrap.verify import expected_identity
    from bootstrap.wait import wait_for_token

    deadline = Deadline(options.timeout)
    admin = admin_api(options, target, deadline)
    timings.mark("connect")
    ns, sa, secret = options.namespace, options.service_account, options.secret_name
    lease = None
    if options.ttl is not None:
        from bootstrap.sweep import lease_until

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
    kubeconfig_ca = _kubeconfig_ca(target)
    if secret is None:
        token, expiry = request_token(
            admin,
            ns,
            sa,
            options.duration if options.ttl is None else min(options.duration, options.ttl),
            options.audiences,
            kubeconfig_ca,
            options.bound_secret,
        )
        expires_at = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        timings.mark("token request")
    else:
        secret = (secret_body or {}).get("metadata", {}).get("name", secret)
        token = wait_for_token(admin, ns, secret, deadline, secret_body, on_wait)
        timings.mark("wait")

    insecure = skips_tls_verification(options, target)
    ca_pem = kubeconfig_ca or token.ca_pem
    identity, powers = _verify(options, target, token.token, ca_pem, insecure, deadline)
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
        tls_server_name=target.tls_server_name,
        proxy_url=target.proxy_url,
    )


def _verify(
    options: Options,
    target: Target,
    token: str,
    ca_pem: bytes | None,
    insecure: bool,
    deadline: Deadline,
) -> tuple[str | None, tuple[str, ...] | None]:
    """(identity, powers) of the new token: who the API server says it is (None: it
    would not say) and what it may do (None: not known). Refuses a token that is
    not a plain bearer token before it is sent, printed or written."""
    from bootstrap import powers as power_checks
    from bootstrap.verify import expected_identity, verify

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
        return None, None
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
        log.warning("%s", warning)
    return identity, powers


def revoke_token(
    options: Options,
    target: Target,
    everything: bool,
    keep: str | None = None,
    plan: Plan | None = None,
) -> Plan:
    """Delete the token Secret(s) of the ServiceAccount, except `keep` (rotate's new one);
    what went and what was kept (and why) is in the returned plan, and logged once."""
    from bootstrap.revoke import revoke

    admin = admin_api(options, target, Deadline(options.timeout))
    secret = options.secret or f"{options.service_account}-token"
    return revoke(admin, options.namespace, options.service_account, secret, everything, keep, plan)


def _kubeconfig_ca(target: Target) -> bytes | None:
    """The kubeconfig's CA for this server, read now so a CA given as a file path is
    carried into the outputs instead of lost."""
    if target.ca_data:
        return target.ca_data
    if target.ca_file:
        try:
            return Path(target.ca_file).read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read the cluster's CA file {target.ca_file}: {e}") from e
    return None


def environment() -> tuple[Mapping[str, str], Path, Path]:
    return os.environ, Path.home(), Path.cwd()
