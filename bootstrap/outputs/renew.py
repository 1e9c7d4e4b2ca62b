"""`issue --renew-before DURATION`: keep a still-good output file, renew the others.

Cheap and idempotent from cron: when the output file exists, `decide` checks it
with its own token only (`check.py`: one SelfSubjectReview with the file's token,
no request with the admin credentials). The file is kept, byte for byte, when its
token works, is the expected ServiceAccount's, of the asked --mode, on the same API
server, and does not expire within DURATION (a Secret token never does).

The file is evidence, not configuration (someone else may have planted it in a
shared directory, to be kept and sourced):
- an existing output that is not a regular file owned by the caller (or root) is
  refused before anything is read from it (OutputError, exit 9, as a planted
  symlink is);
- the token is checked against the kubeconfig's server, with the kubeconfig's CA,
  tls-server-name and proxy: never an endpoint, CA or proxy named only by the file;
- a file with anything the tool does not write (readback.foreign: an unknown line,
  header or key) is renewed, never kept. Otherwise the token is issued anew and the file rewritten; a Secret token
the server rejected (revoked) is replaced under a fresh Secret name, as `rotate`
does, so that re-creating the deleted Secret cannot bring the revoked token back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bootstrap.console import NOTICE
from bootstrap.errors import BootstrapError, ConfigError, TLSVerificationError, UsageError
from bootstrap.kube.target import Target
from bootstrap.outputs import check, files, readback
from bootstrap.outputs.write import output_path
from bootstrap.sanitize import visible
from bootstrap.steps.options import Options
from bootstrap.steps.verify import expected_identity

log = logging.getLogger("bootstrap")


@dataclass(frozen=True)
class Decision:
    keep: bool  # the file is good: do nothing
    message: str  # why (for the log)
    fresh: bool = False  # issue under a fresh Secret name (the old token was revoked)


def decide(options: Options, server: str, cwd: Path, window: int, target: Target) -> Decision:
    """Whether the output of `options` can stay as it is for `window` more seconds.
    `server` is the APISERVER the outputs would carry; `target` the kubeconfig's
    cluster, whose server, CA, tls-server-name and proxy the check uses."""
    out = output_path(options, cwd)
    if out is None:
        raise UsageError("--renew-before needs an output file (not --out - nor --format github)")
    data = files.read_bytes(out, trusted_owner=True)
    if data is None:
        return Decision(False, f"{out} does not exist yet")
    context = f"{options.namespace}/{options.service_account}@{options.cluster}"
    kube_context = context if options.format == "kubeconfig" else None
    try:
        text = data.decode("utf-8")
        creds = readback.parse(
            text, out.parent, context=kube_context, prefix=options.variable_prefix
        )
    except (BootstrapError, UnicodeDecodeError) as e:
        return Decision(False, f"{out} cannot be read back ({e})")
    unknown = readback.foreign(text, options.variable_prefix or "", kube_context)
    if unknown:
        return Decision(False, f"{out} has {unknown}: not as bootstrap-token wrote it")
    mode = check.token_kind(check.claims(creds.token))
    if creds.server.rstrip("/") != server.rstrip("/"):
        return Decision(False, f"{out} is for {visible(creds.server)}, not {server}")
    if mode != options.mode:
        return Decision(False, f"{out} holds a {mode} token, not a {options.mode} one")
    # Where and how to ask: the kubeconfig's, never what the file names.
    creds = _kubeconfig_endpoint(creds, options, target)
    try:
        result = check.check(
            creds, expires_within=window, timeout=options.timeout, want_last_used=False
        )
    except (TLSVerificationError, ConfigError) as e:
        # e.g. the cluster's CA changed: a new output carries the current one.
        return Decision(False, f"{out} cannot be checked: {e}")
    if result.status == "invalid":
        return Decision(
            False, f"the token in {out} is rejected by the server (revoked)", fresh=True
        )
    if result.status != "valid":
        return Decision(False, f"the token in {out} {result.reason}")
    want = expected_identity(options.namespace, options.service_account)
    if result.identity is not None and result.identity != want:
        return Decision(False, f"{out} authenticates as {result.identity}, not {want}")
    return Decision(
        True,
        f"{out} is still valid: {check.until(result)}; nothing to do "
        f"(renewed only within {check.human(window)} of expiry)",
    )


def _kubeconfig_endpoint(
    creds: readback.FileCredentials, options: Options, target: Target
) -> readback.FileCredentials:
    """The file's token, to be checked where the kubeconfig says (its server, CA,
    TLS name and proxy; $HTTPS_PROXY as for any request when it names none)."""
    from dataclasses import replace

    from bootstrap.steps.connect import kubeconfig_ca, skips_tls_verification

    return replace(
        creds,
        server=options.server or target.server,
        ca_pem=kubeconfig_ca(target),
        ca_file=None,
        insecure=skips_tls_verification(options, target),
        tls_server_name=target.tls_server_name,
        proxy_url=target.proxy_url,
    )


def renew_or_keep(options: Options, target: Target, cwd: Path, window: str) -> tuple[Options, str]:
    """For cli: (the options to issue with, "" ) or (options, why the file is kept)."""
    from dataclasses import replace

    from bootstrap.steps.tokenrequest import parse_duration

    seconds = parse_duration(window, "--renew-before", minimum=0)
    decision = decide(options, options.emit_server or target.server, cwd, seconds, target)
    if decision.keep:
        return options, decision.message
    log.log(NOTICE, "renewing: %s", decision.message)  # why, e.g. revoked: worth a line
    if decision.fresh and options.mode == "secret":
        options = replace(options, rotate=True)
    return options, ""
