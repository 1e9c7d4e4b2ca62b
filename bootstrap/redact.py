"""The secrets of this run, and the one function that keeps them out of everything printed.

Whatever holds a secret registers it the moment it has it (`register(value)`):
the admin's bearer token, basic-auth password or exec-plugin token, and the new
token. Every string that reaches stderr or stdout, apart from the output the
user asked for, goes through `redact(text)`: log lines (the handler's formatter,
tracebacks included), the `error:` line of the error boundary, the progress line
and the fleet summary. It replaces every registered secret, and anything shaped
like a JWT, with `<redacted>`. An API server that echoes a request (a Status
message quoting the Authorization header) can then not make the tool print a
credential.

`check_plain_token` refuses a token that is not a plain bearer token before it
is printed, written or sent: a newline or `::` in it could inject lines into an
env file or workflow commands into a GitHub Actions log.

The registry is process-wide (fleet mode runs jobs in threads): a secret of one
job is redacted in the lines of every job.
"""

from __future__ import annotations

import base64
import json
import re
import threading

from bootstrap.errors import VerifyError

__all__ = ["MIN_LENGTH", "REDACTED", "check_plain_token", "clear", "redact", "register"]

REDACTED = "<redacted>"
# Shorter values are not secrets worth the name, and masking them would garble
# ordinary words ("a" in every line).
MIN_LENGTH = 4
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# A bearer token as the API server issues them (JWT: base64url and dots) or as
# providers do (opaque: base64, hex, `~`, `+`, `/`, `=`): printable ASCII only,
# no whitespace, quotes, `$`, backslash or `:` (which would let it form `::`).
PLAIN_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")
MAX_TOKEN = 16 * 1024

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register(value: str | None, *, username: str | None = None) -> None:
    """Remember a secret so that `redact` hides it from now on.

    Pass a password with its `username` to also hide the `Authorization: Basic`
    header value it becomes. The forms a server could echo are registered too
    (JSON-escaped, base64 of the value)."""
    if not value:
        return
    forms = {value, json.dumps(value)[1:-1]}
    if username is not None:
        forms.add(base64.b64encode(f"{username}:{value}".encode()).decode())
    global _pattern
    with _lock:
        before = len(_secrets)
        _secrets.update(form for form in forms if len(form) >= MIN_LENGTH)
        if len(_secrets) != before:
            _pattern = None


def clear() -> None:
    """Forget every secret (tests)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def _compiled() -> re.Pattern[str] | None:
    global _pattern
    with _lock:
        if _pattern is None and _secrets:
            # Longest first: where two secrets start at the same place, the longer wins.
            ordered = sorted(_secrets, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(s) for s in ordered))
        return _pattern


def redact(text: str) -> str:
    """`text` with every registered secret and every JWT-shaped string replaced."""
    pattern = _compiled()
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = JWT.sub(REDACTED, text)
    if pattern is not None and pattern.search(text):
        # Only a secret containing part of the marker can be re-formed by the
        # replacement itself; rather than loop, withhold the whole text.
        return "<output withheld: it contained a secret>"
    return text


def check_plain_token(token: str, source: str) -> None:
    """Refuse a token that could not be a plain bearer token (see PLAIN_TOKEN).

    `source` says where it came from, for the error message (which never shows it)."""
    if not token or len(token) > MAX_TOKEN or not PLAIN_TOKEN.fullmatch(token):
        raise VerifyError(
            f"{source} is not a plain bearer token (empty, too long, or containing "
            "whitespace, quotes, ':' or other characters no token has); it was not "
            "written anywhere. Check what the API server (or a proxy before it) returns"
        )
