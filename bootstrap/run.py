"""The whole job, wiring the steps together:
kubeconfig -> target -> apply -> wait -> verify -> emit.

`Options` is the validated command line; `issue` returns a verified token and
`write_outputs` puts it where the user asked. Both take their environment
(variables, home and working directory, streams) as parameters.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bootstrap import emit
from bootstrap.client import Api, Credentials, Deadline, credentials_for
from bootstrap.errors import ConfigError, OutputError
from bootstrap.kubeconfig import Kubeconfig, default_paths
from bootstrap.target import Target, select, validate_name

log = logging.getLogger("bootstrap")


@dataclass(frozen=True)
class Options:
    cluster: str
    context: str | None = None
    kubeconfig: str | None = None
    namespace: str = "default"
    service_account: str = "default"
    secret: str | None = None  # default: <service-account>-token
    format: str = "env"
    out: str | None = None  # None: ./<cluster>.<format>; "-": stdout
    timeout: float = 60.0
    insecure_skip_tls_verify: bool = False

    @property
    def secret_name(self) -> str:
        return self.secret or f"{self.service_account}-token"

    def validate(self) -> Options:
        validate_name(self.namespace, "--namespace")
        validate_name(self.service_account, "--service-account", subdomain=True)
        validate_name(self.secret_name, "--secret", subdomain=True)
        return self


@dataclass
class Timings:
    """Where the time of a run goes (shown with --debug)."""

    marks: list[tuple[str, float]] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)

    def mark(self, step: str) -> None:
        self.marks.append((step, time.perf_counter()))

    def summary(self) -> str:
        parts, previous = [], self.start
        for step, at in self.marks:
            parts.append(f"{step} {1000 * (at - previous):.0f} ms")
            previous = at
        return ", ".join(parts) + f"; total {1000 * (previous - self.start):.0f} ms"


def load_target(options: Options, environ: Mapping[str, str], home: Path) -> Target:
    paths = default_paths(options.kubeconfig, environ, home)
    return select(Kubeconfig.from_files(paths), options.cluster, options.context)


def issue(options: Options, target: Target, timings: Timings) -> emit.Issued:
    """Apply, wait, verify: a token that is known to work."""
    from bootstrap.apply import apply
    from bootstrap.verify import verify
    from bootstrap.wait import wait_for_token

    deadline = Deadline(options.timeout)
    insecure = options.insecure_skip_tls_verify or target.insecure
    if insecure:
        log.warning(
            "warning: TLS verification is off for %s; anyone on the network path can "
            "read the token",
            target.server,
        )
    admin = Api(
        target.server,
        credentials_for(target),
        deadline,
        ca_data=target.ca_data,
        ca_file=target.ca_file,
        insecure=insecure,
        tls_server_name=target.tls_server_name,
        who=f"user {target.user_name!r} (context {target.context!r})",
    )
    timings.mark("connect")
    ns, sa, secret = options.namespace, options.service_account, options.secret_name
    applied = apply(admin, ns, sa, secret)
    timings.mark("apply")
    token = wait_for_token(admin, ns, secret, deadline, first=applied.secret)
    timings.mark("wait")

    ca_pem = _kubeconfig_ca(target) or token.ca_pem
    as_sa = Api(
        target.server,
        Credentials(token=token.token),
        deadline,
        ca_data=ca_pem,
        insecure=insecure,
        tls_server_name=target.tls_server_name,
        who="the new token",
    )
    identity = verify(as_sa, ns, sa)
    timings.mark("verify")
    log.info("verified: the token authenticates as %s", identity)
    return emit.Issued(
        cluster=target.cluster,
        server=target.server,
        namespace=ns,
        service_account=sa,
        secret=secret,
        token=token.token,
        ca_pem=ca_pem,
        identity=identity,
        insecure=insecure,
    )


def output_path(options: Options, cwd: Path) -> Path | None:
    """Where the output goes; None means stdout."""
    if options.out == "-":
        return None
    if options.out:
        return (cwd / Path(options.out).expanduser()).absolute()
    return cwd / f"{options.cluster}.{options.format}"


def write_outputs(
    issued: emit.Issued, options: Options, cwd: Path, stdout: IO[str] = sys.stdout
) -> Path | None:
    out = output_path(options, cwd)
    if out is not None and not out.parent.is_dir():
        raise OutputError(f"cannot write {out}: the directory {out.parent} does not exist")
    if options.format == "kubeconfig":
        existing = emit.read_existing_kubeconfig(out) if out else None
        text = emit.render_kubeconfig(issued, existing)
        if out is not None and existing is not None:
            kept = emit.backup(out)
            log.info("merging into existing %s (previous version kept as %s)", out, kept)
    else:
        cacert = None
        if issued.ca_pem:
            cacert = emit.ca_path_for(out, issued.cluster, cwd)
            emit.write_atomic(cacert, issued.ca_pem, 0o644)
        render = emit.render_env if options.format == "env" else emit.render_json
        text = render(issued, cacert)
    if out is None:
        stdout.write(text)
        stdout.flush()
    else:
        emit.write_atomic(out, text.encode(), 0o600)
        log.info("wrote %s (mode 0600)", out)
    return out


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
