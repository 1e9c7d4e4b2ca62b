"""The secrets of this run, and the one function that keeps them out of everything printed.

Whatever holds a secret registers it the moment it has it (`register(value)`):
the admin's bearer token, basic-auth password or exec-plugin token, and the new
token. Every string that reaches stderr or stdout, apart from the output the
user asked for, goes through `redact(text)`: log lines (the handler's formatter,
tracebacks included), the `error:` line of the error boundary, the progress line
and the fleet summary. It replaces every registered secret, the first PARTIAL
characters of one or more (a message cut short in the middle of an echoed
secret), and anything shaped like a JWT, with `<redacted>`. An API server that echoes a request (a Status
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

__all__ = ["MIN_LENGTH", "PARTIAL", "REDACTED", "check_plain_token", "clear", "redact", "register"]

REDACTED = "<redacted>"
# Shorter values are not secrets worth the name, and masking them would garble
# ordinary words ("a" in every line).
MIN_LENGTH = 4
# A server may truncate a message in the middle of an echoed secret: this many
# leading characters of a secret (or more) are redacted wherever they appear.
PARTIAL = 8
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# A bearer token as the API server issues them (JWT: base64url and dots) or as
# providers do (opaque: base64, hex, `~`, `+`, `/`, `=`): printable ASCII only,
# no whitespace, quotes, `$`, backslash or `:` (which would let it form `::`).
PLAIN_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")
MAX_TOKEN = 16 * 1024

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: tuple[re.Pattern[str], re.Pattern[str], tuple[str, ...]] | None = None


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


def _compiled() -> tuple[re.Pattern[str], re.Pattern[str], tuple[str, ...]] | None:
    """(whole secrets, their leading PARTIAL characters, the secrets), longest first."""
    global _pattern
    with _lock:
        if _pattern is None and _secrets:
            # Longest first: where two secrets start at the same place, the longer wins.
            ordered = tuple(sorted(_secrets, key=len, reverse=True))
            heads = {s[:PARTIAL] for s in ordered if len(s) > PARTIAL}
            _pattern = (
                re.compile("|".join(re.escape(s) for s in ordered)),
                re.compile("|".join(re.escape(h) for h in sorted(heads)) or r"(?!)"),
                ordered,
            )
        return _pattern


def _cut_secrets(text: str, heads: re.Pattern[str], ordered: tuple[str, ...]) -> str:
    """Replace what is left of a secret cut short (a server's message truncated in the
    middle of an echoed token): its first PARTIAL characters and as many more as match."""
    pieces, position = [], 0
    for match in heads.finditer(text):
        if match.start() < position:
            continue
        start = match.start()
        length = max(
            (_common_prefix(text, start, s) for s in ordered if s.startswith(match.group())),
            default=0,
        )
        pieces += [text[position:start], REDACTED]
        position = start + max(length, PARTIAL)
    return "".join(pieces) + text[position:]


def _common_prefix(text: str, start: int, secret: str) -> int:
    length = 0
    while length < len(secret) and start + length < len(text):
        if text[start + length] != secret[length]:
            break
        length += 1
    return length


def redact(text: str) -> str:
    """`text` with every registered secret, the start of one cut short, and every
    JWT-shaped string replaced by `<redacted>`."""
    compiled = _compiled()
    if compiled is not None:
        text = compiled[0].sub(REDACTED, text)
    # Every JWT whole, before the starts of cut-short secrets: all JWTs of one issuer
    # begin alike (the header), and cutting that start first would leave the rest of
    # an unregistered JWT no longer JWT-shaped, so printed.
    text = JWT.sub(REDACTED, text)
    if compiled is not None:
        text = _cut_secrets(text, compiled[1], compiled[2])
    if compiled is not None and (compiled[0].search(text) or compiled[1].search(text)):
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
