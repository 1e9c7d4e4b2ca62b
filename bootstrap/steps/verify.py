"""Step 5: prove the token works, by asking the API server who it is.

SelfSubjectReview (authentication.k8s.io/v1, GA in 1.28) returns the username,
e.g. `system:serviceaccount:NS:NAME`. Older servers answer 404 for it, and
a server may refuse it (403); then `GET /api` (discovery, open to every
authenticated user) proves the token is accepted, but not whose it is: `verify`
returns None and says so, and the outputs report `identity_checked: false`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from bootstrap.errors import ApiError, AuthError, NotFoundError, VerifyError
from bootstrap.kube.client import Api

log = logging.getLogger("bootstrap")

REVIEW_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def expected_identity(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


# A legacy token is checked against the API server's cached copy of its Secret,
# which can lag the token controller's write by a few ms (seen when many tokens are
# issued at once): a brand-new token may get one spurious 401. It is asked again
# for this long before the 401 counts. (Only the new token: the bootstrap
# credentials' 401 is never retried.)
FRESH_TOKEN_GRACE = 2.0


def whoami(api: Api) -> tuple[str | None, str]:
    """(username, how): the username the API server sees for `api`'s token, or None
    with the reason it could not say (the token was then only shown to authenticate)."""
    try:
        review = _review_with_grace(api)
    except NotFoundError:
        api.get("/api", "get /api")
        return None, "the server has no SelfSubjectReview API (404: Kubernetes < 1.28)"
    except AuthError as e:
        if e.status == 401:
            raise VerifyError(
                f"the new token was rejected by {api.server} (401 Unauthorized); the server may "
                "not accept legacy service-account tokens"
            ) from None
        # A 403 means the token authenticated but may not create reviews (unusual RBAC).
        api.get("/api", "get /api")
        return None, "the server refused the SelfSubjectReview (403 Forbidden)"
    user = (review.get("status") or {}).get("userInfo") or {}
    username = user.get("username")
    if not isinstance(username, str):
        raise ApiError("the SelfSubjectReview came back without a username")
    return username, "SelfSubjectReview"


def _review_with_grace(api: Api) -> dict[str, Any]:
    """The SelfSubjectReview; a 401 is asked again for FRESH_TOKEN_GRACE (the API server
    may not know a token filled moments ago yet). tenacity only then: most runs pass at
    once and need not import it; the first 401 is replayed as tenacity's attempt 1."""
    started = time.monotonic()
    try:
        first: dict[str, Any] = api.post(REVIEW_PATH, REVIEW, "create selfsubjectreviews")
        return first
    except AuthError as e:
        if e.status != 401:
            raise
        replay: list[BaseException] = [e]
    import tenacity

    def attempt() -> dict[str, Any]:
        if replay:
            raise replay.pop()
        answer: dict[str, Any] = api.post(REVIEW_PATH, REVIEW, "create selfsubjectreviews")
        return answer

    grace = min(FRESH_TOKEN_GRACE, api.deadline.remaining() + (time.monotonic() - started))
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda e: isinstance(e, AuthError) and e.status == 401),
        stop=lambda _: time.monotonic() - started >= grace,
        wait=tenacity.wait_exponential(multiplier=0.02, max=0.25),
        reraise=True,
    )
    review: dict[str, Any] = retrying(attempt)
    return review


def verify(api: Api, namespace: str, service_account: str) -> str | None:
    """The verified identity, or None when the server would not say who the token is
    (it was then only shown to authenticate, and a warning says so); fail if the
    token is someone else's or is rejected."""
    identity, how = whoami(api)
    want = expected_identity(namespace, service_account)
    if identity is None:
        log.warning(
            "warning: the token authenticates (GET /api succeeded) but its identity was NOT "
            "checked: %s; it should be %s",
            how,
            want,
        )
        return None
    if identity != want:
        raise VerifyError(f"the new token authenticates as {identity!r}, expected {want!r}")
    log.info("verified: the token authenticates as %s (SelfSubjectReview)", identity)
    return identity
