"""`check`: do the credentials in an output file still work, as whom, until when?

Only the file's own credentials are used (no admin kubeconfig): a SelfSubjectReview
with its token, against its APISERVER, with its CA. `parse` reads any output of
the tool (env, dotenv, kubeconfig, json; the format is detected), `claims` decodes
the token's JWT payload without verifying it (only the server can), and `check`
asks the server. The answer is one of:

  valid         the server accepts the token (exit 0)
  invalid       401, and the token has not passed its `exp`: revoked (its Secret or
                ServiceAccount was deleted, or its bound object) or never valid here (11)
  expired       401, and the token's `exp` is in the past (12)
  expires-soon  accepted, but it expires within --expires-within (13)

A 401 is the server's verdict; `exp` only says why. A legacy Secret token has no
`exp`: it does not expire. `last_used` is the Secret's `kubernetes.io/legacy-token-
last-used` label when the token may read its own Secret (else None); the check's
own request counts as a use, so it is at least today once tracking stamped it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from bootstrap.errors import (
    ApiError,
    AuthError,
    ConfigError,
    NotFoundError,
    TokenExpired,
    TokenExpiresSoon,
    TokenInvalid,
    UsageError,
)

log = logging.getLogger("bootstrap")
UTC = timezone.utc  # noqa: UP017 (datetime.UTC is 3.11+; this module runs on 3.10)

API_VERSION = "bootstrap-token/v1"
REVIEW_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
LAST_USED = "kubernetes.io/legacy-token-last-used"
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


@dataclass(frozen=True)
class FileCredentials:
    """What an output file holds: where to go, with which token, trusting which CA."""

    format: str  # env, dotenv, kubeconfig or json
    server: str
    token: str
    ca_pem: bytes | None = None
    ca_file: str | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    namespace: str | None = None
    expires_at: str | None = None  # as written in the file (request mode)

    def __repr__(self) -> str:
        return f"FileCredentials(format={self.format!r}, server={self.server!r}, token=<redacted>)"


# --- reading the file (pure) ------------------------------------------------------------


def detect(text: str) -> str:
    """The format of an output of the tool: json, env, dotenv or kubeconfig."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return "json"
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    if lines and all(_ASSIGNMENT.match(line) for line in lines):
        return "env" if any(line.lstrip().startswith("export ") for line in lines) else "dotenv"
    return "kubeconfig"


def parse(
    text: str, base: Path, *, context: str | None = None, prefix: str | None = None
) -> FileCredentials:
    """The credentials in `text` (the file's content); relative paths (CACERT, a
    kubeconfig's certificate-authority or tokenFile) are relative to `base`.
    `context`: the kubeconfig context to read (default: current-context, else the
    only one); `prefix`: the --env-prefix of env/dotenv variables (default: found)."""
    kind = detect(text)
    if kind == "json":
        return _from_json(text, base)
    if kind == "kubeconfig":
        return _from_kubeconfig(text, base, context)
    return _from_variables(text, base, kind, prefix)


def _from_variables(text: str, base: Path, kind: str, prefix: str | None) -> FileCredentials:
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = _ASSIGNMENT.match(line)
        if not match:
            continue
        key, raw = match.groups()
        if kind == "dotenv":
            values[key] = raw
            continue
        try:
            words = shlex.split(raw, comments=False, posix=True)
        except ValueError:
            raise UsageError(f"line {number} is not valid shell quoting") from None
        values[key] = words[0] if len(words) == 1 else "".join(words)
    if prefix is None:
        prefixes = sorted({k[: -len("APISERVER")] for k in values if k.endswith("APISERVER")})
        if len(prefixes) > 1:
            raise UsageError(
                f"the file holds several credentials (variable prefixes {', '.join(prefixes)}); "
                "pass --env-prefix to pick one"
            )
        prefix = prefixes[0] if prefixes else ""

    def get(name: str) -> str | None:
        return values.get(prefix + name) or None

    server, token = get("APISERVER"), get("TOKEN")
    if not server or not token:
        raise UsageError(f"no {prefix}APISERVER and {prefix}TOKEN variables found in the file")
    cacert = get("CACERT")
    return FileCredentials(
        format=kind,
        server=server,
        token=token,
        ca_file=str(base / cacert) if cacert else None,
        tls_server_name=get("TLS_SERVER_NAME"),
        proxy_url=get("PROXY_URL") or get("HTTPS_PROXY"),
        namespace=get("NAMESPACE"),
        expires_at=get("EXPIRES_AT"),
    )


def _from_json(text: str, base: Path) -> FileCredentials:
    try:
        document = json.loads(text)
    except ValueError as e:
        raise UsageError(f"the file looks like JSON but does not parse: {e}") from None
    if not isinstance(document, dict):
        raise UsageError("the JSON file is not an object")
    server, token = document.get("apiserver"), document.get("token")
    if not isinstance(server, str) or not isinstance(token, str) or not token:
        raise UsageError('the JSON file has no "apiserver" and "token" strings')
    ca_crt, cacert = document.get("ca_crt"), document.get("cacert")

    def text_field(name: str) -> str | None:
        value = document.get(name)
        return value if isinstance(value, str) and value else None

    return FileCredentials(
        format="json",
        server=server,
        token=token,
        ca_pem=ca_crt.encode() if isinstance(ca_crt, str) and ca_crt else None,
        ca_file=str(base / cacert) if isinstance(cacert, str) and cacert else None,
        tls_server_name=text_field("tls_server_name"),
        proxy_url=text_field("proxy_url"),
        namespace=text_field("namespace"),
        expires_at=text_field("expires_at"),
    )


def _from_kubeconfig(text: str, base: Path, context: str | None) -> FileCredentials:
    from bootstrap.kubeconfig import Kubeconfig, data_field
    from bootstrap.kubeconfig import parse as parse_kubeconfig

    path = base / "kubeconfig"
    try:
        config = Kubeconfig.from_documents([(path, parse_kubeconfig(text, path))])
    except (yaml.YAMLError, ConfigError):
        raise UsageError("the file is neither env, dotenv, JSON nor a kubeconfig") from None
    if not config.contexts:
        raise UsageError("the file is neither env, dotenv, JSON nor a kubeconfig with a context")
    name = context or config.current_context
    if name is None and len(config.contexts) == 1:
        name = next(iter(config.contexts))
    if name is None or name not in config.contexts:
        known = ", ".join(sorted(config.contexts))
        raise UsageError(f"the kubeconfig has no context {name!r} (it has: {known})")
    entry = config.contexts[name]
    cluster = config.clusters.get(str(entry.get("cluster")))
    user = config.users.get(str(entry.get("user")))
    if cluster is None or user is None:
        raise UsageError(f"context {name!r} names a cluster or user the file does not define")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        try:
            token = Path(str(user["tokenFile"])).read_text().strip()
        except OSError as e:
            raise UsageError(f"cannot read tokenFile {user['tokenFile']}: {e.strerror}") from None
    server = cluster.get("server")
    if not isinstance(token, str) or not token or not isinstance(server, str):
        raise UsageError(f"context {name!r} has no server or no token user")
    where = f"cluster of context {name!r}"
    return FileCredentials(
        format="kubeconfig",
        server=server,
        token=token,
        ca_pem=data_field(cluster.get("certificate-authority-data"), where),
        ca_file=cluster.get("certificate-authority") or None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
        proxy_url=cluster.get("proxy-url") or None,
        namespace=entry.get("namespace") or None,
    )


def claims(token: str) -> dict[str, Any] | None:
    """The JWT payload of `token`, not verified (only the server can); None if the
    token is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    return payload if isinstance(payload, dict) else None


def token_kind(payload: Mapping[str, Any] | None) -> str:
    """secret (a legacy Secret token), request (TokenRequest) or unknown."""
    if payload is None:
        return "unknown"
    if payload.get("iss") == "kubernetes/serviceaccount" or (
        "kubernetes.io/serviceaccount/secret.name" in payload
    ):
        return "secret"
    if isinstance(payload.get("kubernetes.io"), dict):
        return "request"
    return "unknown"


def expiry(payload: Mapping[str, Any] | None, written: str | None) -> datetime | None:
    """When the token expires: its `exp`, else what the file says (EXPIRES_AT)."""
    exp = (payload or {}).get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return datetime.fromtimestamp(exp, UTC)
    if written:
        try:
            return datetime.fromisoformat(written.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            return None
    return None


# --- asking the server --------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    status: str  # valid, expires-soon, expired, invalid
    server: str
    format: str
    identity: str | None
    token_kind: str
    expires_at: datetime | None
    seconds_left: int | None
    last_used: str | None
    secret: str | None
    namespace: str | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.status == "valid"


def check(
    creds: FileCredentials,
    *,
    expires_within: int = 0,
    timeout: float = 30.0,
    now: datetime | None = None,
    want_last_used: bool = True,
) -> Result:
    """Ask the file's server, with the file's token, whether it works (one request;
    a second for the last-used label of a Secret token, unless not `want_last_used`)."""
    from bootstrap.client import Api, Credentials, Deadline

    now = now or datetime.now(UTC)
    payload = claims(creds.token)
    kind = token_kind(payload)
    expires = expiry(payload, creds.expires_at)
    payload = payload or {}
    secret = payload.get("kubernetes.io/serviceaccount/secret.name")
    namespace = payload.get("kubernetes.io/serviceaccount/namespace") or (
        (payload.get("kubernetes.io") or {}).get("namespace") or creds.namespace
    )
    if creds.proxy_url:
        # TODO(lead): pass creds.proxy_url to Api once the transport split gives it a
        # proxy parameter; until then the check connects directly.
        log.warning("warning: the file names a proxy (%s); it is not used yet", creds.proxy_url)
    api = Api(
        creds.server,
        Credentials(token=creds.token),
        Deadline(timeout),
        ca_data=creds.ca_pem,
        ca_file=None if creds.ca_pem else creds.ca_file,
        insecure=creds.insecure,
        tls_server_name=creds.tls_server_name,
        who="the file's token",
    )
    seconds_left = int((expires - now).total_seconds()) if expires else None
    result = Result(
        status="valid",
        server=creds.server,
        format=creds.format,
        identity=None,
        token_kind=kind,
        expires_at=expires,
        seconds_left=seconds_left,
        last_used=None,
        secret=secret if isinstance(secret, str) else None,
        namespace=namespace if isinstance(namespace, str) else None,
        reason=None,
    )
    try:
        identity = _whoami(api)
    except AuthError as e:
        if e.status != 401:
            raise
        if expires is not None and expires <= now:
            return replace(result, status="expired", reason=f"expired at {stamp(expires)}")
        reason = "rejected (401 Unauthorized): revoked, or not a token of this cluster"
        return replace(result, status="invalid", reason=reason)
    last_used = None
    if want_last_used and kind == "secret":
        last_used = _last_used(api, result.namespace, result.secret)
    api.close()
    result = replace(result, identity=identity, last_used=last_used)
    if expires is not None and seconds_left is not None and seconds_left <= expires_within:
        reason = f"expires at {stamp(expires)}, within {human(expires_within)}"
        result = replace(result, status="expires-soon", reason=reason)
    return result


def _whoami(api: Any) -> str | None:
    """The username the server sees (None: it has no SelfSubjectReview, or refuses
    it to this token, and only `GET /api` proved the token authenticates)."""
    try:
        review = api.post(
            REVIEW_PATH,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            "create selfsubjectreviews",
        )
    except NotFoundError:
        api.get("/api", "get /api")
        return None
    except AuthError as e:
        if e.status != 403:
            raise
        api.get("/api", "get /api")
        return None
    username = ((review.get("status") or {}).get("userInfo") or {}).get("username")
    return username if isinstance(username, str) else None


def _last_used(api: Any, namespace: str | None, secret: str | None) -> str | None:
    """The Secret's last-used label, if the token may read its own Secret."""
    if not namespace or not secret:
        return None
    from bootstrap.manifests import segment

    try:
        body = api.get(
            f"/api/v1/namespaces/{segment(namespace)}/secrets/{segment(secret)}",
            f"get secrets in namespace {namespace}",
        )
    except (AuthError, NotFoundError):
        return None
    except ApiError:
        log.debug("could not read the token's own Secret", exc_info=True)
        return None
    value = ((body.get("metadata") or {}).get("labels") or {}).get(LAST_USED)
    return value if isinstance(value, str) else None


# --- the verdict --------------------------------------------------------------------------


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human(seconds: int) -> str:
    """3600 -> 1h, 5400 -> 1h30m, 90061 -> 1d1h1m1s."""
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def until(result: Result) -> str:
    """Until when the token works, in words."""
    if result.expires_at is None:
        if result.token_kind == "secret":
            return "does not expire (a Secret token: valid until its Secret is deleted)"
        return "unknown (the token carries no expiry)"
    left = result.seconds_left or 0
    return f"{stamp(result.expires_at)} ({'in ' + human(left) if left > 0 else 'past'})"


def failure(result: Result, name: str) -> TokenInvalid | TokenExpired | TokenExpiresSoon | None:
    """The error (exit code) for a result that is not plain valid."""
    text = f"the token in {name} "
    if result.status == "invalid":
        return TokenInvalid(
            text + f"is rejected by {result.server} (401): it was revoked (its Secret or "
            "ServiceAccount deleted) or is not a token of this cluster; issue a new one"
        )
    if result.status == "expired":
        return TokenExpired(text + f"{result.reason}; issue a new one")
    if result.status == "expires-soon":
        return TokenExpiresSoon(text + f"{result.reason} (--expires-within)")
    return None


def render_text(result: Result, name: str) -> str:
    lines = [f"{name}: {result.status}"]
    fields = [
        ("apiserver", result.server),
        ("format", result.format),
        ("identity", result.identity or ("-" if not result.ok else "(not reported)")),
        (
            "token",
            {"secret": "legacy Secret token", "request": "TokenRequest token"}.get(
                result.token_kind, "unknown kind"
            )
            + (f" (Secret {result.namespace}/{result.secret})" if result.secret else ""),
        ),
        ("expires", until(result)),
    ]
    if result.last_used:
        fields.append(("last used", result.last_used))
    if result.reason:
        fields.append(("reason", result.reason))
    lines += [f"  {key + ':':<11} {value}" for key, value in fields]
    return "\n".join(lines) + "\n"


def render_json(result: Result, name: str) -> str:
    document = {
        "apiVersion": API_VERSION,
        "kind": "TokenCheck",
        "file": name,
        "format": result.format,
        "apiserver": result.server,
        "status": result.status,
        "valid": result.status in ("valid", "expires-soon"),
        "identity": result.identity,
        "token_kind": result.token_kind,
        "expires_at": stamp(result.expires_at) if result.expires_at else None,
        "expires_in_seconds": result.seconds_left,
        "last_used": result.last_used,
        "secret": result.secret,
        "namespace": result.namespace,
        "reason": result.reason,
    }
    return json.dumps(document, indent=2) + "\n"
