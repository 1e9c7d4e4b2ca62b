"""Foreign text made safe for a terminal: the one sanitizer.

Text that comes from outside (an API server's Status message, a Secret's
annotations shown by `list`, a proxy's reason phrase, an exec plugin's stderr, a
checked file's server name) may carry escape sequences: OSC (window title, OSC 52
clipboard writes), CSI (cursor moves, erasing the line), bare CR or BS that
overwrite what was printed, line separators that forge a second `error:` line. Such
text goes through `visible` where it enters a message, and the error line and the
log formatter apply it once more as a safety net.

`visible` shows every character Python does not call printable (C0 and C1 control
characters, ESC, DEL, U+2028/U+2029, bidi overrides and other format characters,
lone surrogates) as an escape: `\\x1b`, `\\x7f`, `\\u2028`, `\\U000e0001`. It never
removes anything, so what was sent stays readable, and it is idempotent (its output
has only printable characters); a backslash is left as is.
"""

from __future__ import annotations

__all__ = ["visible"]


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str, *, newlines: bool = False) -> str:
    """`text` with its non-printable characters shown as escapes. `newlines`: keep
    "\\n" (for the tool's own multi-line messages; foreign text keeps none)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or (newlines and c == "\n") else _escape(c) for c in text)
