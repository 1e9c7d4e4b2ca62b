"""The Python API: the job of `bootstrap-token issue`, returning the json output's data.

    from bootstrap import issue_token

    token = issue_token("prod", namespace="ci", service_account="deployer")
    token["apiserver"], token["token"], token["ca_pem"], token.to_json()

Nothing is written to disk (so `cacert_path` is null) and nothing is printed; the
progress goes to the `bootstrap` logger. Failures raise the tool's `BootstrapError`
subclasses (`UsageError`, `ConfigError`, `ApiError`, `AuthError`, `WaitTimeout`...).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any


class IssuedToken(Mapping[str, Any]):
    """The json output's document (`apiVersion: bootstrap-token/v1`) as a read-only
    mapping; fields are also attributes (`token.apiserver`). Its repr hides the token."""

    __slots__ = ("_document",)

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = MappingProxyType(dict(document))

    def __getitem__(self, key: str) -> Any:
        return self._document[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._document)

    def __len__(self) -> int:
        return len(self._document)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._document[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        shown = {k: "<redacted>" if k == "token" else v for k, v in self._document.items()}
        return f"IssuedToken({shown!r})"

    def to_dict(self) -> dict[str, Any]:
        return dict(self._document)

    def to_json(self) -> str:
        """Exactly what `--format json` prints (without a CA file)."""
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _parse_ttl(text: str) -> int:
    from bootstrap.steps.sweep import parse_ttl

    return parse_ttl(text)


def issue_token(
    cluster: str | None = None,
    *,
    context: str | None = None,
    kubeconfig: str | None = None,
    namespace: str = "default",
    service_account: str = "default",
    secret: str | None = None,
    mode: str = "secret",
    duration: str | int = "1h",
    audiences: tuple[str, ...] = (),
    roles: tuple[str, ...] = (),
    cluster_roles: tuple[str, ...] = (),
    server: str | None = None,
    emit_server: str | None = None,
    bound_secret: str | None = None,
    timeout: float = 60.0,
    insecure_skip_tls_verify: bool = False,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    ttl: str | int | None = None,
) -> IssuedToken:
    """Issue (or reuse) a verified token, like `bootstrap-token issue` with the same flags.

    `cluster=None` uses the cluster of `context`, else of the kubeconfig's current
    context. `duration` and `ttl` (--ttl: a lease on what is created) are text like the
    flags' ("30m") or seconds. `environ` and `home`
    default to the process's (they locate the kubeconfig: $KUBECONFIG, ~/.kube/config).
    """
    from bootstrap import run
    from bootstrap.errors import UsageError
    from bootstrap.kube.target import default_cluster
    from bootstrap.outputs import emit
    from bootstrap.steps.tokenrequest import parse_duration

    if mode not in ("secret", "request"):
        raise UsageError(f"mode {mode!r} must be 'secret' or 'request'")
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    if cluster is None:
        config = run.load_kubeconfig(run.Options(cluster="", kubeconfig=kubeconfig), environ, home)
        cluster = default_cluster(config, context)
    options = run.Options(
        cluster=cluster,
        context=context,
        kubeconfig=kubeconfig,
        namespace=namespace,
        service_account=service_account,
        secret=secret,
        format="json",
        timeout=timeout,
        insecure_skip_tls_verify=insecure_skip_tls_verify,
        mode=mode,
        duration=duration if isinstance(duration, int) else parse_duration(duration),
        audiences=tuple(audiences),
        roles=tuple(roles),
        cluster_roles=tuple(cluster_roles),
        server=server,
        bound_secret=bound_secret,
        emit_server=emit_server,
        ttl=ttl if isinstance(ttl, int) or ttl is None else _parse_ttl(ttl),
    ).validate()
    target = run.load_target(options, environ, home)
    issued = run.issue(options, target, run.Timings())
    return IssuedToken(emit.json_document(issued, None))
