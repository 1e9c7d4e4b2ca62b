"""Step 4, short-lived variant (--mode request): ask the TokenRequest API for a
token, as `kubectl create token` does, instead of waiting for a Secret.

The server may shorten the requested lifetime without saying so (its
--service-account-max-token-expiration, or a managed provider's cap), so the
real expiry is read from `status.expirationTimestamp` and reported.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone

from bootstrap.errors import ApiError, UsageError
from bootstrap.kube.client import Api
from bootstrap.steps.wait import Token

log = logging.getLogger("bootstrap")

MIN_DURATION = 600  # the API's minimum expirationSeconds
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


def parse_duration(text: str, flag: str = "--duration", minimum: int = MIN_DURATION) -> int:
    """'7d', '1h', '90m', '1h30m', '3600s' or '3600' -> seconds (at least `minimum`:
    10 minutes for --duration, the API's minimum; --renew-before and
    --expires-within reuse it with no minimum)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise UsageError(f"{flag} {text!r} is not a duration like 1h, 30m, 1h30m or 3600s")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    if total < minimum:
        raise UsageError(f"{flag} {text!r} is too short: the API's minimum is 10m")
    return total


def request_token(
    api: Api,
    namespace: str,
    service_account: str,
    seconds: int,
    audiences: tuple[str, ...],
    ca_pem: bytes | None,
    bound_secret: str | None = None,
) -> tuple[Token, datetime]:
    spec: dict[str, object] = {"expirationSeconds": seconds}
    if audiences:
        spec["audiences"] = list(audiences)
    if bound_secret:
        # A bound token dies with its object: deleting the Secret revokes it early.
        secret = api.get(
            f"/api/v1/namespaces/{namespace}/secrets/{bound_secret}",
            f"get secrets in namespace {namespace}",
        )
        spec["boundObjectRef"] = {
            "kind": "Secret",
            "apiVersion": "v1",
            "name": bound_secret,
            "uid": (secret.get("metadata") or {}).get("uid"),
        }
    body = api.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        f"create serviceaccounts/token in namespace {namespace}",
    )
    status = body.get("status") or {}
    token, expires = status.get("token"), status.get("expirationTimestamp")
    if not isinstance(token, str) or not token or not isinstance(expires, str):
        raise ApiError("the TokenRequest came back without a token or expiry")
    try:
        expires_at = datetime.fromisoformat(expires.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError as e:
        raise ApiError(f"the TokenRequest's expirationTimestamp {expires!r} is not a time") from e
    granted = int((expires_at - datetime.now(timezone.utc)).total_seconds())
    if granted < seconds - 60:
        log.warning(
            "warning: asked for %d s (--duration) but the server granted only %d s, until %s "
            "(its --service-account-max-token-expiration or a provider's cap)",
            seconds,
            granted,
            expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    log.info("short-lived token expires at %s", expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return Token(token=token, ca_pem=ca_pem, namespace=namespace), expires_at
