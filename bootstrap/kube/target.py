"""Step 2: pick the cluster to bootstrap, and the credentials to do it with (pure).

`--cluster NAME` names a `clusters[]` entry: its server is APISERVER. The
credentials come from a context whose cluster is NAME:

=====================  ==========================================  =================================
--context              contexts using cluster NAME                 result
=====================  ==========================================  =================================
not given              none                                        error: add a context or --context
not given              exactly one                                 that context
not given              several, current-context among them         current-context (as kubectl would)
not given              several, current-context not among them     error listing them: pass --context
CTX                    CTX exists and uses NAME                    CTX
CTX                    CTX exists but uses another cluster         error naming both clusters
CTX                    CTX does not exist                          error listing contexts for NAME
=====================  ==========================================  =================================

A cluster without `server`, a server that is not a valid URL (`https://h:99999`,
`https://[::1`), a `proxy-url` that is not http, https or socks5, `insecure-skip-tls-verify` together
with a CA (kubectl refuses that combination), or a context
naming a missing user, is an error too.
Context names and cluster names are different things; messages say which is which.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bootstrap.errors import ConfigError, UsageError
from bootstrap.kube.endpoint import parse_server
from bootstrap.kube.kubeconfig import Kubeconfig, data_field

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


@dataclass(frozen=True)
class Target:
    """Where to bootstrap, and with which credentials."""

    cluster: str
    server: str
    context: str
    user_name: str
    user: Mapping[str, Any]
    ca_data: bytes | None  # PEM from certificate-authority-data
    ca_file: str | None  # path from certificate-authority (absolute)
    insecure: bool  # insecure-skip-tls-verify set in the kubeconfig
    tls_server_name: str | None
    proxy_url: str | None = None
    namespace: str | None = None  # the context's namespace, used when -n is not given
    cluster_entry: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def select(config: Kubeconfig, cluster: str, context: str | None = None) -> Target:
    """Resolve --cluster/--context against a merged kubeconfig (see the table above)."""
    if cluster not in config.clusters:
        known = ", ".join(sorted(config.clusters)) or "none"
        hint = ""
        if cluster in config.contexts:
            actual = config.contexts[cluster].get("cluster")
            hint = f" ({cluster!r} is a context name; its cluster is {actual!r})"
        raise ConfigError(f"unknown cluster {cluster!r}{hint}; known clusters: {known}")
    body = config.clusters[cluster]
    server = body.get("server")
    if not isinstance(server, str) or not server:
        raise ConfigError(f"cluster {cluster!r} has no server in the kubeconfig")
    try:
        parse_server(server.rstrip("/"))
    except ValueError as e:
        raise ConfigError(
            f"cluster {cluster!r}: server {server!r} is not a valid URL: {e}"
        ) from None
    ca_keys = [k for k in ("certificate-authority-data", "certificate-authority") if body.get(k)]
    if len(ca_keys) == 2:
        raise ConfigError(
            f"cluster {cluster!r}: certificate-authority-data and certificate-authority are both "
            "specified; kubectl refuses that too: keep one"
        )
    if body.get("insecure-skip-tls-verify") is True and ca_keys:
        raise ConfigError(
            f"cluster {cluster!r}: specifying a root certificates file with the insecure flag "
            f"is not allowed (kubectl refuses it too): drop insecure-skip-tls-verify or "
            f"{ca_keys[0]}"
        )
    proxy_url = _optional_str(body.get("proxy-url"))
    if proxy_url is not None:
        try:
            from bootstrap.kube.proxies import parse_proxy_url  # only when one is set

            parse_proxy_url(proxy_url)
        except ValueError as e:
            raise ConfigError(
                f"cluster {cluster!r}: error parsing proxy-url {proxy_url!r}: {e}"
            ) from None

    candidates = sorted(n for n, c in config.contexts.items() if c.get("cluster") == cluster)
    if context is not None:
        if context not in config.contexts:
            listed = ", ".join(candidates) or "none"
            raise ConfigError(
                f"unknown context {context!r}; contexts for cluster {cluster!r}: {listed}"
            )
        actual = config.contexts[context].get("cluster")
        if actual != cluster:
            raise ConfigError(
                f"context {context!r} uses cluster {actual!r}, not {cluster!r}; "
                f"pick one of: {', '.join(candidates) or 'none'}"
            )
        chosen = context
    elif not candidates:
        raise ConfigError(
            f"no context uses cluster {cluster!r}, so there are no credentials to bootstrap "
            "with; add a context for it (kubectl config set-context) or pass --context"
        )
    elif len(candidates) == 1:
        chosen = candidates[0]
    elif config.current_context in candidates:
        chosen = config.current_context
    else:
        raise ConfigError(
            f"several contexts use cluster {cluster!r}: {', '.join(candidates)}; "
            "pick one with --context"
        )

    user_name = config.contexts[chosen].get("user")
    if not isinstance(user_name, str) or not user_name:
        raise ConfigError(f"context {chosen!r} names no user")
    if user_name not in config.users:
        raise ConfigError(f"context {chosen!r} names user {user_name!r}, which is not defined")

    return Target(
        cluster=cluster,
        server=server.rstrip("/"),
        context=chosen,
        user_name=user_name,
        user=config.users[user_name],
        ca_data=data_field(
            body.get("certificate-authority-data"),
            f"cluster {cluster!r}: certificate-authority-data",
        ),
        ca_file=_optional_str(body.get("certificate-authority")),
        insecure=body.get("insecure-skip-tls-verify") is True,
        tls_server_name=_optional_str(body.get("tls-server-name")),
        proxy_url=proxy_url,
        namespace=_optional_str(config.contexts[chosen].get("namespace")),
        cluster_entry=body,
    )


def cluster_table(config: Kubeconfig) -> list[tuple[str, str]]:
    """(name, server) for every cluster, sorted by name: `--list-clusters`."""
    return sorted((name, str(body.get("server") or "-")) for name, body in config.clusters.items())


def render_table(
    rows: list[tuple[str, str]], header: tuple[str, str] = ("CLUSTER", "SERVER")
) -> str:
    from bootstrap.sanitize import visible

    rows = [(visible(a), visible(b)) for a, b in rows]
    width = max(len(r[0]) for r in [header, *rows])
    return "".join(f"{a:<{width}}  {b}\n" for a, b in [header, *rows])


def validate_name(value: str, flag: str, *, subdomain: bool = False) -> str:
    """Reject names the API server would reject, before any request is made."""
    pattern, limit, kind = (
        (_DNS1123_SUBDOMAIN, 253, "DNS-1123 subdomain")
        if subdomain
        else (_DNS1123_LABEL, 63, "DNS-1123 label")
    )
    if not value or len(value) > limit or not pattern.fullmatch(value):
        raise UsageError(
            f"{flag} {value!r} is not a valid {kind}: use at most {limit} lowercase letters, "
            "digits and '-', starting and ending with a letter or digit"
            + (" ('.' also allowed)" if subdomain else "")
        )
    return value


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def default_cluster(config: Kubeconfig, context: str | None) -> str:
    """The cluster to use when no --cluster is given, as kubectl would: that of
    --context CTX, else that of the current context. (Several clusters are always
    named explicitly: --cluster repeated, or --all-clusters.)"""
    where = "--context"
    if context is None:
        context, where = config.current_context, "current context"
        if not context:
            raise UsageError(
                "--cluster NAME is required: the kubeconfig has no current context "
                "(see the names with: bootstrap-token --list-clusters; or pick a context "
                "with --context CTX, or kubectl config use-context CTX)"
            )
    if context not in config.contexts:
        known = ", ".join(sorted(config.contexts)) or "none"
        raise ConfigError(
            f"the {where} {context!r} is not defined in the kubeconfig; contexts: {known}; "
            "pass --cluster NAME or --context CTX"
        )
    cluster = config.contexts[context].get("cluster")
    if not isinstance(cluster, str) or not cluster:
        raise ConfigError(f"context {context!r} names no cluster; pass --cluster NAME")
    return cluster
