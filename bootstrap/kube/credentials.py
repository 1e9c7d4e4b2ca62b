"""A kubeconfig user -> the credentials and headers of the bootstrap requests,
with client-go's rules:

- `tokenFile` wins over `token` (client-go re-reads the file for every request and
  uses `token` only while the file is unreadable or empty); the file is trimmed of
  surrounding whitespace; a token with a line break inside is a config error.
- `username` + `password` -> basic auth.
- Client certificate and key: each from its `*-data` field (wins) or its file, so
  data and file may be mixed.
- `exec` runs only when none of the above is set (as client-go); see exec_plugin.
- `auth-provider` (deprecated in kubectl since 1.26) is left to the official
  `kubernetes` client, imported only for such users.
- Impersonation (`as`, `as-uid`, `as-groups`, `as-user-extra`) -> the
  Impersonate-* headers, sent with the bootstrap credentials only.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bootstrap import redact
from bootstrap.errors import ConfigError
from bootstrap.kube.kubeconfig import data_field

if TYPE_CHECKING:  # imported where an exec plugin is used
    from bootstrap.kube import exec_plugin

log = logging.getLogger("bootstrap")

# Bytes allowed in an HTTP header name (RFC 7230 tchar), except '%' which escapes.
_HEADER_KEY_BYTES = frozenset(
    b"!#$&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


class Deadline:
    """The overall --timeout, shared by every step of a run."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())


@dataclass(frozen=True)
class Credentials:
    """How to authenticate: a bearer token, basic auth, and/or a client certificate,
    plus the impersonation headers."""

    token: str | None = None
    basic: tuple[str, str] | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    cert_files: tuple[str, str] | None = None  # when both came from files: load them there
    impersonation: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # Every credential is known to the redaction the moment it exists (see redact.py).
        redact.register(self.token)
        if self.basic:
            redact.register(self.basic[1], username=self.basic[0])

    def __repr__(self) -> str:  # never print secrets, even in a --debug traceback
        return "Credentials(<redacted>)"

    def headers(self) -> list[tuple[str, str]]:
        """Authorization and Impersonate-* headers (a name may repeat)."""
        headers: list[tuple[str, str]] = []
        if self.token:
            headers.append(("Authorization", f"Bearer {self.token}"))
        elif self.basic:
            pair = ":".join(self.basic).encode()
            headers.append(("Authorization", "Basic " + base64.b64encode(pair).decode()))
        return headers + list(self.impersonation)


def checked_token(token: str, where: str) -> str:
    if "\n" in token or "\r" in token:
        raise ConfigError(f"{where} contains a line break; a token is one line")
    return token


def static_credentials(user: Mapping[str, Any], name: str) -> Credentials:
    """Everything but exec and auth-provider (pure apart from reading files)."""
    where = f"user {name!r}"
    _validate(user, name)
    token = checked_token(str(user["token"]), f"{where}: token") if user.get("token") else None
    if user.get("tokenFile"):
        # client-go reads a tokenFile on every request and prefers it to `token`; the
        # inline token is used only while the file cannot be read (or is empty).
        path = str(user["tokenFile"])
        from bootstrap.inputs import MAX_TOKEN_BYTES, read_input

        try:
            data = read_input(path, "", limit=MAX_TOKEN_BYTES) or b""
            from_file = data.decode("utf-8", "replace").strip()
        except ConfigError as e:
            if token is None:
                raise ConfigError(f"{where}: tokenFile: {e}") from None
            from_file = ""
        if from_file:
            token = checked_token(from_file, f"{where}: tokenFile {path}")
    basic = None
    if user.get("username") and user.get("password"):
        basic = (str(user["username"]), str(user["password"]))
    cert = data_field(user.get("client-certificate-data"), f"{where}: client-certificate-data")
    if cert is None and user.get("client-certificate"):
        cert = _read(str(user["client-certificate"]), f"{where}: client-certificate")
    key = data_field(user.get("client-key-data"), f"{where}: client-key-data")
    if key is None and user.get("client-key"):
        key = _read(str(user["client-key"]), f"{where}: client-key")
    if bool(cert) != bool(key):
        missing = "client-key" if cert else "client-certificate"
        raise ConfigError(f"{where}: a client certificate needs its key: {missing} is not set")
    files = None
    if cert and not user.get("client-certificate-data") and not user.get("client-key-data"):
        # Both are files: ssl loads them in place, nothing is copied to tmpfs.
        files = (str(user["client-certificate"]), str(user["client-key"]))
    return Credentials(
        token=token,
        basic=basic,
        cert_pem=cert,
        key_pem=key,
        cert_files=files,
        impersonation=impersonation_headers(user, name),
    )


def _validate(user: Mapping[str, Any], name: str) -> None:
    """clientcmd's validateAuthInfo: kubectl refuses these combinations."""
    for data, file, short in (
        ("client-certificate-data", "client-certificate", "client-cert"),
        ("client-key-data", "client-key", "client-key"),
    ):
        if user.get(data) and user.get(file):
            raise ConfigError(
                f"user {name!r}: {short}-data and {short} are both specified for {name}; "
                f"kubectl refuses that too: keep {data} or {file}"
            )
    methods = []
    if user.get("token") or user.get("tokenFile"):
        methods.append("token")
    if user.get("username") or user.get("password"):
        methods.append("basicAuth")
    if len(methods) > 1:
        raise ConfigError(
            f"user {name!r}: more than one authentication method found for {name}; "
            f"found [{' '.join(methods)}], only one is allowed"
        )
    if user.get("exec") and user.get("auth-provider"):
        raise ConfigError(
            f"user {name!r}: authProvider cannot be provided in combination with an exec plugin"
        )


def impersonation_headers(user: Mapping[str, Any], name: str) -> tuple[tuple[str, str], ...]:
    """`as`, `as-uid`, `as-groups`, `as-user-extra` -> Impersonate-* headers."""
    where = f"user {name!r}"
    as_user = user.get("as") or ""
    uid = user.get("as-uid") or ""
    groups = user.get("as-groups") or []
    extra = user.get("as-user-extra") or {}
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ConfigError(f"{where}: as-groups must be a list of strings")
    if not isinstance(extra, Mapping):
        raise ConfigError(f"{where}: as-user-extra must be a mapping of lists of strings")
    if (uid or groups or extra) and not as_user:
        raise ConfigError(
            f"{where}: requesting uid, groups or user-extra for {name} without impersonating a user"
        )
    headers: list[tuple[str, str]] = []
    if as_user:
        headers.append(("Impersonate-User", str(as_user)))
    if uid:
        headers.append(("Impersonate-Uid", str(uid)))
    headers += [("Impersonate-Group", group) for group in groups]
    for key, values in extra.items():
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list):
            raise ConfigError(f"{where}: as-user-extra {key!r} must be a list of strings")
        headers += [("Impersonate-Extra-" + escape_header_key(str(key)), str(v)) for v in values]
    for header, value in headers:
        if "\n" in value or "\r" in value:
            raise ConfigError(f"{where}: {header} would contain a line break")
    return tuple(headers)


def escape_header_key(key: str) -> str:
    """client-go's headerKeyEscape: percent-encode every byte not legal in a header name."""
    return "".join(chr(b) if b in _HEADER_KEY_BYTES else f"%{b:02X}" for b in key.encode("utf-8"))


def credentials_for(
    user: Mapping[str, Any],
    name: str,
    deadline: Deadline,
    cluster_info: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """The bootstrap credentials of a kubeconfig user (runs its exec plugin if needed)."""
    static = static_credentials(user, name)
    if static.token or static.basic or static.cert_pem:
        return static
    if user.get("exec"):
        from bootstrap.kube import exec_plugin

        config = exec_plugin.exec_config(user["exec"], name)
        result = _run_cached(config, name, cluster_info, deadline, environ)
        return Credentials(
            token=checked_token(result.token, f"user {name!r}: the exec plugin's token")
            if result.token
            else None,
            cert_pem=result.cert_pem,
            key_pem=result.key_pem,
            impersonation=static.impersonation,
        )
    if user.get("auth-provider"):
        return _auth_provider(user, name, static)
    return static


_CACHE: dict[str, tuple[exec_plugin.ExecResult, float]] = {}


def _run_cached(
    config: exec_plugin.ExecConfig,
    name: str,
    cluster_info: Mapping[str, Any] | None,
    deadline: Deadline,
    environ: Mapping[str, str] | None,
) -> exec_plugin.ExecResult:
    """One plugin run per process for the same config (rotate and revoke reuse it),
    as client-go caches, until the credential's expirationTimestamp."""
    import json

    from bootstrap.kube import exec_plugin

    key = json.dumps([repr(config), name, cluster_info], sort_keys=True, default=str)
    cached = _CACHE.get(key)
    if cached is not None and time.time() < cached[1]:
        return cached[0]
    log.debug("running the exec plugin of user %r: %s", name, config.command)
    try:
        result = exec_plugin.run(
            config, cluster_info, deadline.remaining(), os.environ if environ is None else environ
        )
    except exec_plugin.ExecError as e:
        raise ConfigError(f"user {name!r}: getting credentials from its exec plugin: {e}") from None
    _CACHE[key] = (result, _expiry(result.expires_at))
    return result


def _expiry(timestamp: str | None) -> float:
    if not timestamp:
        return float("inf")
    from datetime import datetime

    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() - 10
    except ValueError:
        return 0.0  # unreadable: do not reuse


def _read(path: str, where: str) -> bytes:
    from bootstrap.inputs import MAX_PEM_BYTES, read_input

    try:
        return read_input(path, "", limit=MAX_PEM_BYTES) or b""
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _provider_name(user: Mapping[str, Any]) -> str:
    provider = user.get("auth-provider")
    value = provider.get("name") if isinstance(provider, Mapping) else None
    return "".join(c if c.isprintable() else "?" for c in str(value or "unnamed"))[:40]


def _auth_provider(user: Mapping[str, Any], name: str, static: Credentials) -> Credentials:
    """Legacy auth-provider users, through the official client (imported only here)."""
    log.debug("resolving credentials of user %r with the kubernetes client", name)
    try:
        import kubernetes  # noqa: F401  (only its presence, before the provider runs)
    except ImportError:
        # A plain install leaves the official client out (~150 MB): say how to add it.
        raise ConfigError(
            f"user {name!r} uses a legacy auth-provider "
            f"({_provider_name(user)}), which needs the kubernetes client: "
            "pip install 'bootstrap-token[auth-provider]'"
        ) from None
    try:
        from kubernetes.client import Configuration
        from kubernetes.config.kube_config import KubeConfigLoader

        config = {
            "clusters": [{"name": "c", "cluster": {"server": "https://unused.invalid"}}],
            "users": [{"name": "u", "user": {"auth-provider": dict(user["auth-provider"])}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
        configuration = Configuration()
        KubeConfigLoader(config_dict=config).load_and_set(configuration)  # type: ignore[no-untyped-call]
    except Exception as e:  # the provider's own failure, in its own words
        first = str(e).splitlines()[0] if str(e) else ""
        raise ConfigError(
            f"user {name!r}: getting credentials from its auth provider failed: "
            f"{type(e).__name__}: {first}"
        ) from None
    keys = configuration.api_key or {}
    header = str(keys.get("BearerToken") or keys.get("authorization") or "")
    if not header.startswith("Bearer "):
        raise ConfigError(f"user {name!r}: its auth provider gave no credentials")
    return Credentials(
        token=checked_token(header[7:].strip(), f"user {name!r}: the auth provider's token"),
        impersonation=static.impersonation,
    )
