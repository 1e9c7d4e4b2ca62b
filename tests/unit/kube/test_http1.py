"""kube/http1.py: the HTTP/1.1 subset the client speaks, every read bounded. Literal
bytes in, literal values out; a hostile server's pacing is in tests/unit/test_hostile_text.py
and the real API server's answers in every cluster test."""

from __future__ import annotations

import io
import socket
import threading

import pytest

from bootstrap.kube import http1
from bootstrap.kube.http1 import ClosedBeforeAnswer, ProtocolError, Response


def parse(raw: bytes, method: str = "GET", max_body: int = 1000) -> Response:
    return http1.read_response(io.BufferedReader(io.BytesIO(raw)), method, max_body)  # type: ignore[arg-type]


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def test_a_content_length_answer() -> None:
    assert parse(OK) == Response(
        200, {"content-type": "application/json", "content-length": "2"}, b"{}", False
    )


def test_the_next_answer_on_the_connection_is_left_unread() -> None:
    reader = io.BufferedReader(
        io.BytesIO(OK + b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    )
    assert http1.read_response(reader, "GET", 100).body == b"{}"  # type: ignore[arg-type]
    second = http1.read_response(reader, "GET", 100)  # type: ignore[arg-type]
    assert (second.status, second.body, second.will_close) == (404, b"", False)


def test_a_chunked_answer_with_extensions_and_trailers() -> None:
    raw = (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'3;ext=1\r\n{"a\r\nA\r\n": "bcdef"\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    response = parse(raw)
    assert (response.status, response.body, response.will_close) == (201, b'{"a": "bcdef"}', False)


def test_header_names_are_lower_cased_and_repeated_fields_joined() -> None:
    raw = b"HTTP/1.1 200 OK\r\nWarning: a\r\nwarning: b\r\nRetry-After:  3 \r\nContent-Length: 0\r\n\r\n"
    assert parse(raw).headers == {"warning": "a, b", "retry-after": "3", "content-length": "0"}


def test_an_answer_without_framing_is_read_to_the_end_and_closes() -> None:
    raw = b'HTTP/1.1 200 OK\r\n\r\n{"kind": "Status"}'
    assert (parse(raw).body, parse(raw).will_close) == (b'{"kind": "Status"}', True)


@pytest.mark.parametrize(
    ("head", "closes"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n", True),
        (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\n", True),
        (b"HTTP/1.0 200 OK\r\n", True),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n", False),
        (b"HTTP/1.1 200 OK\r\n", False),
    ],
)
def test_connection_close(head: bytes, closes: bool) -> None:
    assert parse(head + b"Content-Length: 1\r\n\r\nx").will_close is closes


def test_interim_answers_are_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nA: b\r\n\r\n" + OK
    assert (parse(raw).status, parse(raw).body) == (200, b"{}")


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified"])
def test_answers_without_a_body(status: bytes) -> None:
    raw = b"HTTP/1.1 " + status + b"\r\nContent-Length: 5\r\n\r\n"
    assert parse(raw).body == b""
    assert parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", method="HEAD").body == b""


def test_a_body_over_the_bound_is_cut_at_bound_plus_one_and_the_connection_dropped() -> None:
    sized = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n" + b"x" * 50, max_body=10)
    assert (sized.body, sized.will_close) == (b"x" * 11, True)
    chunked = parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n"
        + b"y" * 8
        + b"\r\n8\r\n"
        + b"z" * 8
        + b"\r\n0\r\n\r\n",
        max_body=10,
    )
    assert (chunked.body, chunked.will_close) == (b"y" * 8 + b"zzz", True)
    unframed = parse(b"HTTP/1.1 200 OK\r\n\r\n" + b"w" * 50, max_body=10)
    assert (unframed.body, unframed.will_close) == (b"w" * 11, True)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", "not an HTTP/1.1 response"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "not an HTTP/1.1 response"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "not an HTTP/1.1 response"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "not an HTTP/1.1 response"),
        (b"HTTP/1.1 2\xb20 OK\r\n\r\n", "not an HTTP/1.1 response"),  # a superscript two
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "malformed header field"),
        (b"HTTP/1.1 200 OK\r\n folded: value\r\n\r\n", "malformed header field"),
        (b"HTTP/1.1 200 OK\r\nName : value\r\n\r\n", "malformed header field"),
        (b"HTTP/1.1 200 OK\r\n: value\r\n\r\n", "malformed header field"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", "in the middle of the response headers"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nab", "conflicting Content-Length"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
            "conflicting Content-Length",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nab", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nab", "invalid Content-Length"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            "in the middle of the response body",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n",
            "invalid chunk size",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "invalid chunk size"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            "chunk longer than its size",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            "in the middle of the response body",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
            "invalid chunk size",
        ),  # ends where the next size is due
    ],
)
def test_what_is_not_http_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse(raw)


def test_a_silent_close_is_told_apart_so_a_stale_connection_can_be_retried() -> None:
    with pytest.raises(ClosedBeforeAnswer):
        parse(b"")
    assert issubclass(ClosedBeforeAnswer, ConnectionResetError)
    assert not issubclass(ProtocolError, ConnectionResetError)


def test_lines_and_field_counts_are_bounded() -> None:
    with pytest.raises(ProtocolError, match="over-long status line"):
        parse(b"HTTP/1.1 200 " + b"O" * 65536 + b"\r\n\r\n")
    with pytest.raises(ProtocolError, match="over-long header field"):
        parse(b"HTTP/1.1 200 OK\r\nX: " + b"v" * 65536 + b"\r\n\r\n")
    many = b"".join(b"X-%d: v\r\n" % i for i in range(101))
    with pytest.raises(ProtocolError, match="more than 100 header fields"):
        parse(b"HTTP/1.1 200 OK\r\n" + many + b"\r\n")
    assert (
        len(
            parse(
                b"HTTP/1.1 200 OK\r\n" + many[: many.index(b"X-99:")] + b"Content-Length: 0\r\n\r\n"
            ).headers
        )
        == 100
    )
    with pytest.raises(ProtocolError, match="over-long chunk size"):
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"0" * 65537 + b"\r\n")
    trailers = b"".join(b"T-%d: v\r\n" % i for i in range(101))
    with pytest.raises(ProtocolError, match="more than 100 header fields"):
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + trailers + b"\r\n")


def test_the_request_bytes() -> None:
    assert http1.request_bytes(
        "POST",
        "/api/v1/namespaces/ns/secrets",
        "[::1]:6443",
        [("Accept", "application/json")],
        b"{}",
    ) == (
        b"POST /api/v1/namespaces/ns/secrets HTTP/1.1\r\nHost: [::1]:6443\r\n"
        b"Accept: application/json\r\n\r\n{}"
    )
    assert (
        http1.request_bytes("GET", "/api", "h:1", [], None)
        == b"GET /api HTTP/1.1\r\nHost: h:1\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/api", [("Authorization", "Bearer abc\r\nX-Injected: 1")]),
        ("/api", [("Authorization", "Bearer abc\n")]),
        ("/api", [("Authorization", "Bearer a\0b")]),
        ("/api", [("X\r\nY", "v")]),
        ("/api HTTP/1.1\r\nX: y", []),
        ("/a b", []),
        ("/a\x7f", []),
        ("/a\tb", []),
    ],
)
def test_nothing_is_smuggled_into_the_request(target: str, headers: list[tuple[str, str]]) -> None:
    with pytest.raises(ValueError):
        http1.request_bytes("GET", target, "h:1", headers, None)


def test_an_exchange_on_a_socket_pair_keeps_the_connection() -> None:
    ours, theirs = socket.socketpair()
    seen: list[bytes] = []

    def server() -> None:
        with theirs:
            for answer in (
                OK,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n!\r\n0\r\n\r\n",
            ):
                request = b""
                while b"\r\n\r\n" not in request:
                    request += theirs.recv(4096)
                seen.append(request)
                theirs.sendall(answer)

    thread = threading.Thread(target=server)
    thread.start()
    connection = http1.Connection(ours, ours, "example.test:443")
    try:
        first = connection.exchange("GET", "/api", [("Accept", "application/json")], None, 100)
        second = connection.exchange("GET", "/apis", [], None, 100)
    finally:
        connection.close()
        thread.join(5)
    assert (first.body, second.body) == (b"{}", b"!")
    assert seen == [
        b"GET /api HTTP/1.1\r\nHost: example.test:443\r\nAccept: application/json\r\n\r\n",
        b"GET /apis HTTP/1.1\r\nHost: example.test:443\r\n\r\n",
    ]
    assert ours.fileno() == -1  # closed


def lines(raw_body: bytes, headers: dict[str, str], max_line: int = 20) -> list[bytes]:
    reader = io.BufferedReader(io.BytesIO(raw_body))
    return list(http1.body_lines(reader, headers, max_line))  # type: ignore[arg-type]


CHUNKED = {"transfer-encoding": "chunked"}


def test_a_watch_body_is_read_a_line_at_a_time_across_chunks() -> None:
    body = b'5\r\n{"a":\r\n7\r\n1}\n{"b"\r\n4\r\n:2}\n\r\n0\r\n\r\n'
    assert lines(body, CHUNKED) == [b'{"a":1}\n', b'{"b":2}\n']
    assert lines(b"3\r\nxyz\r\n0\r\n\r\n", CHUNKED) == [b"xyz"]  # a last line without \n


def test_a_line_body_framed_by_length_or_by_the_close() -> None:
    assert lines(b"ab\ncd\nef", {"content-length": "6"}) == [b"ab\n", b"cd\n"]
    assert lines(b"ab\ncd", {}) == [b"ab\n", b"cd"]


def test_lines_are_bounded_however_the_chunks_come() -> None:
    with pytest.raises(ProtocolError, match="line over 20 bytes"):
        lines(b"15\r\n" + b"x" * 21 + b"\r\n0\r\n\r\n", CHUNKED)
    with pytest.raises(ProtocolError, match="line over 20 bytes"):  # 21 bytes in 3 chunks
        lines(b"7\r\nxxxxxxx\r\n" * 3 + b"0\r\n\r\n", CHUNKED)
    huge = b"fffffffffffffff\r\n" + b"y" * 100  # the size is the server's word, not a buffer
    with pytest.raises(ProtocolError, match="line over 20 bytes"):
        lines(huge, CHUNKED)
    with pytest.raises(ProtocolError, match="line over 20 bytes"):
        lines(b"z" * 30, {})
    assert lines(b"x" * 20 + b"\n", {}, max_line=21) == [b"x" * 20 + b"\n"]


def test_a_stream_answer_other_than_2xx_is_read_whole() -> None:
    ours, theirs = socket.socketpair()
    theirs.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope")
    connection = http1.Connection(ours, ours, "h:1")
    head, body = connection.stream("/api/v1/secrets?watch=1", [], 100, 100)
    assert (head.status, head.body, list(body)) == (403, b"nope", [])
    assert theirs.recv(100) == b"GET /api/v1/secrets?watch=1 HTTP/1.1\r\nHost: h:1\r\n\r\n"
    connection.close()
    theirs.close()


def test_a_line_is_bounded_with_its_newline_whatever_the_framing() -> None:
    exactly = b"x" * 19 + b"\n"  # 20 bytes with its newline: the most a line may be
    over = b"y" * 20 + b"\n"
    assert lines(exactly, {"content-length": "20"}) == [exactly]
    assert lines(b"14\r\n" + exactly + b"\r\n0\r\n\r\n", CHUNKED) == [exactly]
    for framing in ({"content-length": "21"}, {}):
        with pytest.raises(ProtocolError, match="line over 20 bytes"):
            lines(over, framing)
    with pytest.raises(ProtocolError, match="line over 20 bytes"):
        lines(b"15\r\n" + over + b"\r\n0\r\n\r\n", CHUNKED)  # one chunk, the newline in it
    with pytest.raises(ProtocolError, match="line over 20 bytes"):
        lines(b"14\r\n" + b"y" * 20 + b"\r\n1\r\n\n\r\n0\r\n\r\n", CHUNKED)  # the newline after


def test_the_last_coding_decides_chunked_and_any_other_reads_to_the_close() -> None:
    chunked = parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\n!\r\n0\r\n\r\n"
    )
    assert (chunked.body, chunked.will_close) == (b"!", False)
    other = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n1\r\n!")
    assert (other.body, other.will_close) == (b"1\r\n!", True)


def test_a_line_of_exactly_max_line_bytes_is_read_one_more_is_not() -> None:
    head = b"HTTP/1.1 200 "
    fits = head + b"O" * (65536 - len(head) - 2) + b"\r\n"
    assert len(fits) == 65536
    assert parse(fits + b"Content-Length: 0\r\n\r\n").status == 200
    with pytest.raises(ProtocolError, match="over-long status line"):
        parse(head + b"O" * (65537 - len(head) - 2) + b"\r\n\r\n")


def test_a_response_is_a_value() -> None:
    response = parse(OK)
    with pytest.raises(AttributeError):
        response.status = 500  # type: ignore[misc]


def test_closing_closes_the_tunnel_under_the_tls_socket_too() -> None:
    inner, inner_peer = socket.socketpair()
    raw, raw_peer = socket.socketpair()
    http1.Connection(inner, raw, "h:1").close()
    assert (inner.fileno(), raw.fileno()) == (-1, -1)
    inner_peer.close()
    raw_peer.close()


def test_a_silent_close_says_so() -> None:
    with pytest.raises(ClosedBeforeAnswer) as closed:
        parse(b"")
    assert str(closed.value) == "the server closed the connection without an answer"


def test_the_trailers_of_a_chunked_stream_are_read_to_its_end() -> None:
    reader = io.BufferedReader(io.BytesIO(b"2\r\na\n\r\n0\r\nT: 1\r\n\r\nNEXT"))
    assert list(http1.body_lines(reader, CHUNKED, 20)) == [b"a\n"]  # type: ignore[arg-type]
    assert reader.read() == b"NEXT"


def test_the_edges_of_the_framing() -> None:
    assert parse(b"HTTP/1.1 204\r\n\r\n").status == 204  # no reason phrase
    assert parse(b"HTTP/1.1 199 Early\r\n\r\n" + OK).status == 200  # 1xx: interim
    whole = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" + b"x" * 10, max_body=10)
    assert (whole.body, whole.will_close) == (b"x" * 10, False)
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n" + b"y" * 10
    whole = parse(raw + b"\r\n0\r\n\r\n", max_body=10)
    assert (whole.body, whole.will_close) == (b"y" * 10, False)
    assert lines(b"a\nb", {"content-length": "3"}) == [b"a\n", b"b"]
    assert lines(b"14\r\n" + b"z" * 20 + b"\r\n0\r\n\r\n", CHUNKED) == [b"z" * 20]  # unended
    with pytest.raises(ProtocolError, match="chunk longer than its size"):
        lines(b"2\r\na\nX\r\n0\r\n\r\n", CHUNKED)


def test_a_chunk_size_has_at_most_sixteen_hex_digits() -> None:
    sixteen = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n000000000000000"
        + b"1\r\n!\r\n0\r\n\r\n"
    )
    assert parse(sixteen).body == b"!"
    with pytest.raises(ProtocolError, match="invalid chunk size"):
        parse(sixteen.replace(b"\r\n0000", b"\r\n00000"))


def test_what_a_request_refuses_is_said() -> None:
    with pytest.raises(
        ValueError, match=r"^an HTTP request line or header field holds a line break or NUL$"
    ):
        http1.request_bytes("GET", "/api", "h:1", [("X", "a\nb")], None)
    with pytest.raises(
        ValueError, match=r"^an HTTP request target holds a space or a control character$"
    ):
        http1.request_bytes("GET", "/a b", "h:1", [], None)


@pytest.mark.parametrize(
    ("status", "streamed"), [(200, True), (299, True), (300, False), (101, False)]
)
def test_a_stream_gives_lines_for_2xx_only(status: int, streamed: bool) -> None:
    ours, theirs = socket.socketpair()
    body = b"3\r\n{}\n\r\n0\r\n\r\n"
    theirs.sendall(b"HTTP/1.1 %d X\r\nTransfer-Encoding: chunked\r\n\r\n%s" % (status, body))
    theirs.shutdown(socket.SHUT_WR)
    connection = http1.Connection(ours, ours, "h:1")
    head, got = connection.stream("/w", [], 100, 100)
    expected = ([b"{}\n"], b"") if streamed else ([], b"" if status == 101 else b"{}\n")
    assert (head.status, list(got), head.body) == (status, *expected)
    assert head.will_close is True or not streamed
    connection.close()
    theirs.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n!\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n!\r\n0\r\n\r\n",
    ],
)
def test_doubtful_framing_ends_the_connection(raw: bytes) -> None:
    assert parse(raw).will_close is True


def test_interim_answers_are_bounded() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    assert parse(interim * 10 + OK).status == 200
    with pytest.raises(ProtocolError, match="more than 10 interim"):
        parse(interim * 11 + OK)


def test_a_field_outside_latin_1_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(http1.RequestRefused, match="outside Latin-1"):
        http1.request_bytes("GET", "/api", "h:1", [("Authorization", "Bearer abc€def")], None)
    assert issubclass(http1.RequestRefused, ValueError)


def test_many_small_chunks_make_the_same_lines() -> None:
    body = b"".join(b"1\r\n%s\r\n" % bytes([c]) for c in b'{"a":1}\n{"b":2}\n{"c"') + b"0\r\n\r\n"
    assert lines(body, CHUNKED) == [b'{"a":1}\n', b'{"b":2}\n', b'{"c"']
