"""One HTTP/1.1 exchange on a connected socket (plain, TLS or tunnelled), the subset
the API server speaks: a request out, then a status line, headers and a body framed
by Content-Length, chunked coding or the end of the connection (RFC 9112 section 6).
Every read is bounded: a line, the number of header fields, the body.

Hand-written rather than http.client, which imports the email package to parse
header fields: ~10 ms of every run's start-up (docs/performance.md), for the three
fields the client reads. Nothing here knows Kubernetes; client.py maps the errors.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

MAX_LINE = 65536  # a status line, header field or chunk-size line (as http.client)
MAX_FIELDS = 100  # header fields, and trailer fields after a chunked body
MAX_INTERIM = 10  # 1xx answers before the real one
_HEX = frozenset("0123456789abcdefABCDEF")


class ProtocolError(ConnectionError):
    """The server's bytes are not an HTTP/1.1 response, or stop in the middle of one."""


class RequestRefused(ValueError):
    """A request that cannot be sent as HTTP/1.1: a line break, NUL or a character
    outside Latin-1 in a field (from a kubeconfig's credentials, typically)."""


class ClosedBeforeAnswer(ConnectionResetError):
    """The server closed the connection without a status line (an idle kept-alive
    connection it had timed out, typically: safe to send the request again)."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # field names lower-cased; repeated fields joined by ", "
    body: bytes  # at most max_body + 1 bytes: more than max_body means cut short
    will_close: bool  # the connection cannot carry another request


class Connection:
    """A socket to speak HTTP/1.1 on; `raw` is the TCP socket under TLS or a tunnel."""

    def __init__(self, sock: socket.socket, raw: socket.socket, host: str) -> None:
        self.sock = sock
        self.raw = raw
        self.host = host  # the Host field: host:port, IPv6 in brackets
        self._reader = sock.makefile("rb")

    def exchange(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        payload: bytes | None,
        max_body: int,
    ) -> Response:
        self.sock.sendall(request_bytes(method, target, self.host, headers, payload))
        return read_response(self._reader, method, max_body)

    def stream(
        self, target: str, headers: list[tuple[str, str]], max_line: int, max_body: int
    ) -> tuple[Response, Iterator[bytes]]:
        """A GET whose body is read as it arrives (a watch): the answer without its
        body and the body's lines for a 2xx one; else the whole answer and no lines."""
        self.sock.sendall(request_bytes("GET", target, self.host, headers, None))
        status, fields, close = read_head(self._reader)
        if not 200 <= status < 300:
            return read_body(self._reader, "GET", status, fields, close, max_body), iter(())
        return Response(status, fields, b"", True), body_lines(self._reader, fields, max_line)

    def close(self) -> None:
        self._reader.close()
        self.sock.close()
        if self.raw is not self.sock:
            self.raw.close()


def request_bytes(
    method: str,
    target: str,
    host: str,
    headers: list[tuple[str, str]],
    payload: bytes | None,
) -> bytes:
    """The request head and body; a CR, LF or NUL in any part is refused (no header
    can be smuggled into another through a value from a kubeconfig)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    for line in lines:
        if any(c in line for c in "\r\n\0"):
            raise RequestRefused("an HTTP request line or header field holds a line break or NUL")
    if any(c <= " " or c == "\x7f" for c in target):
        raise RequestRefused("an HTTP request target holds a space or a control character")
    try:
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise RequestRefused("an HTTP header field holds a character outside Latin-1") from None
    return head + payload if payload else head


def read_response(reader: _Reader, method: str, max_body: int) -> Response:
    status, headers, close = read_head(reader)
    return read_body(reader, method, status, headers, close, max_body)


def read_body(
    reader: _Reader, method: str, status: int, headers: dict[str, str], close: bool, max_body: int
) -> Response:
    """The answer whose head was read, with its body (at most max_body + 1 bytes)."""
    if method == "HEAD" or status < 200 or status in (204, 304):
        return Response(status, headers, b"", close or status == 101)  # 101: not HTTP after
    coding = headers.get("transfer-encoding")
    if coding is not None:
        if not _chunked_coding(coding):
            return Response(status, headers, _until_close(reader, max_body), True)
        body, cut = _chunked(reader, max_body)
        # With Content-Length too, or from HTTP/1.0: read as chunked, then close (RFC 9112 6.1).
        doubtful = "content-length" in headers or close
        return Response(status, headers, body, doubtful or cut)
    length = headers.get("content-length")
    if length is None:
        return Response(status, headers, _until_close(reader, max_body), True)
    size = _content_length(length)
    body = _exactly(reader, min(size, max_body + 1))
    return Response(status, headers, body, close or size > max_body)


def read_head(reader: _Reader) -> tuple[int, dict[str, str], bool]:
    """(status, header fields, whether the connection closes after this answer)."""
    for _ in range(MAX_INTERIM + 1):
        status, http10 = _status_line(reader)
        headers = _fields(reader)
        if status >= 200 or status == 101:
            break  # an interim 1xx answer (100 Continue...) is followed by the real one
    else:
        raise ProtocolError(f"the server sent more than {MAX_INTERIM} interim (1xx) answers")
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    # An HTTP/1.0 answer closes unless it asks to be kept alive...
    close = (http10 and "keep-alive" not in tokens) or "close" in tokens
    # ...and always after a Transfer-Encoding it should not have used (RFC 9112 6.1).
    return status, headers, close or (http10 and "transfer-encoding" in headers)


def body_lines(reader: _Reader, headers: dict[str, str], max_line: int) -> Iterator[bytes]:
    """The body of an answer as it arrives, a line at a time (a watch's events, one
    JSON object a line), each at most max_line bytes; ends with the body."""
    coding = headers.get("transfer-encoding")
    if coding is not None and _chunked_coding(coding):
        yield from _chunked_lines(reader, max_line)
        return
    length = headers.get("content-length")
    left = _content_length(length) if coding is None and length is not None else None
    while left is None or left > 0:
        line = reader.readline(max_line + 1 if left is None else min(max_line + 1, left))
        if not line:
            return
        if len(line) > max_line:
            raise ProtocolError(f"the server sent a line over {max_line} bytes")
        if left is not None:
            left -= len(line)
        yield line


def _chunked_lines(reader: _Reader, max_line: int) -> Iterator[bytes]:
    pending = bytearray()  # the line begun, without its newline
    while (size := _chunk_size(reader)) > 0:
        while size > 0:  # a chunk is read in pieces: its size is the server's word
            piece = _exactly(reader, min(size, max_line + 1))
            size -= len(piece)
            start = 0
            while (end := piece.find(b"\n", start)) >= 0:  # each byte looked at once
                pending += piece[start : end + 1]
                start = end + 1
                if len(pending) > max_line:
                    raise ProtocolError(f"the server sent a line over {max_line} bytes")
                yield bytes(pending)
                pending.clear()
            pending += piece[start:]
            if len(pending) > max_line:
                raise ProtocolError(f"the server sent a line over {max_line} bytes")
        if _exactly(reader, 2) != b"\r\n":
            raise ProtocolError("the server sent a chunk longer than its size")
    _fields(reader)
    if pending:
        yield bytes(pending)


def _chunked_coding(coding: str) -> bool:
    return coding.rsplit(",", 1)[-1].strip().lower() == "chunked"


class _Reader(Protocol):  # the part of io.BufferedReader used here
    def readline(self, size: int = -1, /) -> bytes: ...
    def read(self, size: int = -1, /) -> bytes: ...


def _line(reader: _Reader, what: str) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise ProtocolError(f"the server sent an over-long {what} (> {MAX_LINE} bytes)")
    return line


def _status_line(reader: _Reader) -> tuple[int, bool]:
    """(status, whether the answer is HTTP/1.0)."""
    line = _line(reader, "status line")
    if not line:
        raise ClosedBeforeAnswer("the server closed the connection without an answer")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    version, code = parts[0], parts[1] if len(parts) > 1 else ""
    three_digits = len(code) == 3 and code.isascii() and code.isdigit()  # not "2²0"
    if version not in ("HTTP/1.1", "HTTP/1.0") or not three_digits:
        raise ProtocolError("the server's answer is not an HTTP/1.1 response")
    return int(code), version == "HTTP/1.0"


def _fields(reader: _Reader) -> dict[str, str]:
    fields: dict[str, str] = {}
    for _ in range(MAX_FIELDS + 1):
        line = _line(reader, "header field")
        if not line:
            raise ProtocolError("the connection closed in the middle of the response headers")
        if line in (b"\r\n", b"\n"):
            return fields
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():  # no space before the colon
            raise ProtocolError("the server sent a malformed header field")
        key = name.lower()
        value = value.strip(" \t\r\n")
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    raise ProtocolError(f"the server sent more than {MAX_FIELDS} header fields")


def _content_length(value: str) -> int:
    """One length, or the same one repeated (RFC 9110 8.6); anything else is refused."""
    lengths = {v.strip() for v in value.split(",")}
    if len(lengths) != 1:
        raise ProtocolError("the server sent conflicting Content-Length fields")
    (length,) = lengths
    if not length.isdigit() or not length.isascii():
        raise ProtocolError("the server sent an invalid Content-Length")
    return int(length)


def _exactly(reader: _Reader, size: int) -> bytes:
    data = reader.read(size) if size else b""
    if len(data) < size:
        raise ProtocolError("the connection closed in the middle of the response body")
    return data


def _until_close(reader: _Reader, max_body: int) -> bytes:
    return reader.read(max_body + 1)


def _chunk_size(reader: _Reader) -> int:
    size_text = _line(reader, "chunk size").split(b";", 1)[0].strip().decode("latin-1")
    if not size_text or len(size_text) > 16 or not set(size_text) <= _HEX:
        raise ProtocolError("the server sent an invalid chunk size")
    return int(size_text, 16)


def _chunked(reader: _Reader, max_body: int) -> tuple[bytes, bool]:
    """The body of a chunked answer; (body, cut short) once it passes max_body."""
    body = bytearray()
    while True:
        size = _chunk_size(reader)
        if size == 0:
            break
        want = min(size, max_body + 1 - len(body))
        body += _exactly(reader, want)
        if len(body) > max_body:
            return bytes(body), True
        if _exactly(reader, 2) != b"\r\n":  # the CRLF after the chunk
            raise ProtocolError("the server sent a chunk longer than its size")
    _fields(reader)  # trailer fields, bounded like the headers, then the final CRLF
    return bytes(body), False
