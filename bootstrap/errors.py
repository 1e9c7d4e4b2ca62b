"""The errors a user can cause or meet, each with a documented exit code.

The CLI is the single boundary that turns these into one `error: ...` line on
stderr. Messages never contain a token.
"""

from __future__ import annotations


class BootstrapError(Exception):
    """Base class: a failure with a message meant for the operator."""

    exit_code = 1


class UsageError(BootstrapError):
    """Invalid flags or names, found before any request is made."""

    exit_code = 2


class ConfigError(BootstrapError):
    """The kubeconfig is missing, unreadable, malformed, or lacks the named entry."""

    exit_code = 3


class ApiError(BootstrapError):
    """The API server refused a request or could not be reached."""

    exit_code = 4

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UnreachableError(ApiError):
    """Connection refused, reset, timed out, or TLS failed."""


class TLSVerificationError(ApiError):
    """The server's certificate does not verify against the CA: never retried."""


class TransientError(ApiError):
    """Worth retrying: 429 or 5xx. `retry_after` is the server's hint in seconds."""

    def __init__(self, message: str, status: int | None, retry_after: float | None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class AuthError(ApiError):
    """401 or 403: the bootstrap credentials are invalid or lack a permission."""

    exit_code = 5


class NotFoundError(ApiError):
    """404."""


class ConflictError(ApiError):
    """An object exists that bootstrap-token must not touch, or was deleted under it."""

    exit_code = 6


class WaitTimeout(BootstrapError):
    """The token controller did not fill the Secret within --timeout."""

    exit_code = 7


class VerifyError(BootstrapError):
    """The issued token does not authenticate against the API server."""

    exit_code = 8


class OutputError(BootstrapError):
    """The output could not be written; any previous file is left intact."""

    exit_code = 9


class TokenInvalid(BootstrapError):
    """check: the server rejects the file's token (401) before its expiry: revoked."""

    exit_code = 11


class TokenExpired(BootstrapError):
    """check: the server rejects the file's token (401) and its `exp` is past."""

    exit_code = 12


class TokenExpiresSoon(BootstrapError):
    """check: the token works but expires within --expires-within."""

    exit_code = 13


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "unexpected internal error (a bug: rerun with --debug and report it)",
    2: "usage error: invalid flag or name",
    3: "kubeconfig error: missing, malformed, unknown or ambiguous cluster/context",
    4: "API server unreachable, TLS failure, or unexpected API error",
    5: "authentication or authorization refused (401/403)",
    6: "conflict: an existing object is not ours, or the Secret was deleted",
    7: "timed out waiting for the token controller",
    8: "the issued token did not verify",
    9: "the output could not be written (or stdout was closed)",
    10: "several clusters or service accounts: at least one failed (see the summary table)",
    11: "check: the token is rejected (401): revoked or invalid",
    12: "check: the token has expired",
    13: "check: the token works but expires within --expires-within",
    130: "interrupted (Ctrl-C)",
}
OUTPUT_FAILED = 9
FLEET_FAILED = 10
INTERRUPTED = 130
