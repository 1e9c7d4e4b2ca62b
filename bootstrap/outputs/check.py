"""`check`: do the credentials in an output file still work, as whom, until when?

Only the file's own credentials are used (no admin kubeconfig): a SelfSubjectReview
with its token, against its APISERVER, with its CA. The file is evidence, not
configuration: `read_file` reads it as every input is read (files.read_input),
readback.parse refuses a user that reaches out of it (tokenFile, client cert or
key files, exec, auth-provider), and `own_ca` accepts a CA path only when it is
the CA file the tool wrote beside it (NAME.ca.crt there, a regular file of yours). `readback.parse` reads any output
of the tool (env, dotenv, kubeconfig, json; the format is detected), `claims` decodes
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
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bootstrap.errors import (
    ApiError,
    AuthError,
    NotFoundError,
    TokenExpired,
    TokenExpiresSoon,
    TokenInvalid,
)
from bootstrap.outputs.readback import FileCredentials
from bootstrap.steps.rules import Rules

log = logging.getLogger("bootstrap")
UTC = timezone.utc

API_VERSION = "bootstrap-token/v1"
REVIEW_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
LAST_USED = "kubernetes.io/legacy-token-last-used"


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


# --- reading FILE -------------------------------------------------------------------------


def read_file(name: str) -> tuple[str, Path, str]:
    """The text of `check FILE` (`-`: stdin), the directory its relative paths are
    relative to, and its name for messages. Read as every input is (files.read_input:
    a regular file, non-blocking, at most 16 MiB), else UsageError (exit 2)."""
    from bootstrap.errors import UsageError
    from bootstrap.inputs import MAX_INPUT_BYTES, read_input

    if name == "-":
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise UsageError(
                "cannot read stdin: more than 16 MiB, not an output of bootstrap-token"
            )
        base, label = Path.cwd(), "stdin"
    else:
        path = Path(name).expanduser()
        data = read_input(path, "", error=UsageError) or b""
        base, label = path.absolute().parent, name
    try:
        return data.decode("utf-8"), base, label
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {label}: not UTF-8 text") from None


def own_ca(creds: FileCredentials, base: Path) -> FileCredentials:
    """`creds` with the CA file it names read in, if that is the CA file the tool
    wrote beside FILE: `NAME.ca.crt` in FILE's directory (`base`), a regular file
    (not a symlink) owned by the caller. Any other path is refused (UsageError):
    the file would otherwise choose which local file is trusted as a CA."""
    from bootstrap.errors import UsageError
    from bootstrap.inputs import MAX_PEM_BYTES, read_input

    if creds.ca_pem is not None or not creds.ca_file:
        return replace(creds, ca_file=None)
    path = Path(os.path.normpath(creds.ca_file))
    if not path.name.endswith(".ca.crt") or not _same_directory(path.parent, base):
        raise UsageError(
            f"it names the CA file {path}, not one bootstrap-token wrote beside it "
            f"(NAME.ca.crt in {base}): only credentials written inside the file are used"
        )
    pem = read_input(
        path, "the CA file", limit=MAX_PEM_BYTES, error=UsageError, follow=False, own=True
    )
    return replace(creds, ca_pem=pem, ca_file=None)


def _same_directory(a: Path, b: Path) -> bool:
    try:
        return os.path.samestat(os.stat(a), os.stat(b))
    except OSError:
        return False


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
    can: Rules | None = None  # what the token may do (rules.py); None: not asked or refused
    groups: tuple[str, ...] | None = None  # the API groups it can discover; None: not asked

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
    want_can: bool = False,
    want_groups: bool = False,
) -> Result:
    """Ask the file's server, with the file's token, whether it works (one request;
    a second for the last-used label of a Secret token, unless not `want_last_used`;
    with `want_can` a SelfSubjectRulesReview, with `want_groups` discovery)."""
    from bootstrap.kube.client import Api, Credentials, Deadline

    now = now or datetime.now(UTC)
    payload = claims(creds.token)
    kind = token_kind(payload)
    expires = expiry(payload, creds.expires_at)
    payload = payload or {}
    secret = payload.get("kubernetes.io/serviceaccount/secret.name")
    namespace = payload.get("kubernetes.io/serviceaccount/namespace") or (
        (payload.get("kubernetes.io") or {}).get("namespace") or creds.namespace
    )
    if creds.insecure:
        log.warning(
            "warning: the file turns TLS verification off (insecure-skip-tls-verify) for %s",
            creds.server,
        )
    api = Api(
        creds.server,
        Credentials(token=creds.token),
        Deadline(timeout),
        # Never a path the file names: own_ca (check) or the kubeconfig (renew) set ca_pem.
        ca_data=creds.ca_pem,
        ca_file=None,
        insecure=creds.insecure,
        tls_server_name=creds.tls_server_name,
        proxy_url=creds.proxy_url,
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
    can = _can(api, result.namespace or "default") if want_can else None
    groups = _groups(api) if want_groups else None
    api.close()
    result = replace(result, identity=identity, last_used=last_used, can=can, groups=groups)
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


def _can(api: Any, namespace: str) -> Rules | None:
    from bootstrap.steps import rules

    try:
        return rules.review(api, namespace)
    except ApiError as e:
        log.warning("warning: could not find out what the token can do: %s", e)
        return None


def _groups(api: Any) -> tuple[str, ...] | None:
    from bootstrap.steps import rules

    try:
        return tuple(rules.discover(api))
    except ApiError as e:
        log.warning("warning: could not list the API groups the token can discover: %s", e)
        return None


def _last_used(api: Any, namespace: str | None, secret: str | None) -> str | None:
    """The Secret's last-used label, if the token may read its own Secret."""
    if not namespace or not secret:
        return None
    from bootstrap.steps.manifests import segment

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
    """For people. A rejected token is only `invalid` (with the reason): nothing is
    said about an expiry it no longer has."""
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
    ]
    if result.status != "invalid":
        fields.append(("expires", until(result)))
    if result.last_used:
        fields.append(("last used", result.last_used))
    if result.reason:
        fields.append(("reason", result.reason))
    from bootstrap.sanitize import visible

    lines[0] = visible(lines[0])
    lines += [f"  {key + ':':<11} {visible(value)}" for key, value in fields]
    text = "\n".join(lines) + "\n"
    if result.can is not None:
        from bootstrap.steps import rules

        text += rules.render(result.can, result.groups)
    return text


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
        "can": list(result.can.can) if result.can is not None else None,
        "can_incomplete": result.can.incomplete if result.can is not None else None,
        "can_evaluation_error": result.can.evaluation_error if result.can is not None else None,
    }
    return json.dumps(document, indent=2) + "\n"
