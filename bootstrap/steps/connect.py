"""The first step: from the options to a connection with the bootstrap credentials.
Loads the kubeconfig (once per process while its files are unchanged), selects the
target cluster and context (or the Pod's own ServiceAccount), applies the context's
namespace, and builds the `Api` that speaks with the admin credentials."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from bootstrap.errors import ConfigError, UsageError
from bootstrap.kube.client import Api, Deadline
from bootstrap.kube.kubeconfig import Kubeconfig, default_paths
from bootstrap.kube.target import Target, select, validate_name
from bootstrap.steps.options import Options

log = logging.getLogger("bootstrap")

_LOADED: dict[tuple[tuple[object, ...], ...], Kubeconfig] = {}
_LOADING = threading.Lock()


def load_kubeconfig(options: Options, environ: Mapping[str, str], home: Path) -> Kubeconfig:
    """The merged kubeconfig, read once per process while its files are unchanged: every
    job of a fleet asks for it, and parsing a big kubeconfig 20 times costs seconds."""
    paths = default_paths(options.kubeconfig, environ, home)
    if options.in_cluster:  # the Pod's context `in-cluster` joins (e.g. for --apply-to)
        from bootstrap.kube import incluster

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
        from bootstrap.kube import incluster

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
    from bootstrap.kube.credentials import credentials_for
    from bootstrap.kube.transport import parse_server

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
        from bootstrap.kube.exec_plugin import cluster_info

        info = cluster_info(target.cluster_entry, server, kubeconfig_ca(target))
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


def kubeconfig_ca(target: Target) -> bytes | None:
    """The kubeconfig's CA for this server, read now so a CA given as a file path is
    carried into the outputs instead of lost."""
    if target.ca_data:
        return target.ca_data
    if target.ca_file:
        from bootstrap.inputs import MAX_PEM_BYTES, read_input

        return read_input(target.ca_file, "the cluster's CA file", limit=MAX_PEM_BYTES)
    return None
