"""The response encoder, read back by h11 as a client; dates; the token bucket."""

from __future__ import annotations

import email.utils

import h11
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tremolo import _core

from ..strategies import TCHAR, VALUE_CHARS

DATE = _core.http_date(784111777)
# fields whose meaning is the server's (framing, connection management)
SERVERS_FIELDS = {"content-length", "transfer-encoding", "connection", "keep-alive",
                  "proxy-connection", "te", "upgrade"}


def client_reads(data: bytes, method: bytes = b"GET") -> tuple[h11.Response, bytes, list]:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "a")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    response, body = None, b""
    while True:
        ev = conn.next_event()
        if isinstance(ev, h11.Response):
            response = ev
        elif isinstance(ev, h11.Data):
            body += ev.data
        elif isinstance(ev, h11.EndOfMessage):
            assert response is not None
            return response, body, list(ev.headers)
        else:
            raise AssertionError(f"incomplete response: {ev}")


def test_http_date_matches_the_standard_library() -> None:
    for t in (0, 784111777, 951782400, 1700000000.9, 4102444800):
        assert _core.http_date(t) == email.utils.formatdate(int(t), usegmt=True).encode()
    assert _core.http_date(-5) == b"Thu, 01 Jan 1970 00:00:00 GMT"


def test_reason_phrases() -> None:
    assert _core.reason_phrase(200) == "OK"
    assert _core.reason_phrase(413) == "Content Too Large"
    assert _core.reason_phrase(599) == ""


@settings(max_examples=200, deadline=None)
@given(status=st.sampled_from([200, 201, 202, 400, 404, 418, 500, 503, 599]),
       headers=st.lists(st.tuples(st.text(TCHAR, min_size=1, max_size=10),
                                  st.text(VALUE_CHARS, max_size=20)), max_size=5),
       body=st.binary(max_size=500), keep_alive=st.booleans())
def test_response_round_trip(status: int, headers: list[tuple[str, str]], body: bytes,
                             keep_alive: bool) -> None:
    assume(not any(n.lower() in SERVERS_FIELDS for n, _ in headers))
    # (an application's own Server or Date replaces the server's: checked below)
    assume(not any(n.lower() in ("server", "date") for n, _ in headers))
    fields = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
    data, keep = _core.encode_response(status, fields, body, keep_alive, False, DATE,
                                       b"tremolo")
    assert keep is keep_alive
    response, got_body, _ = client_reads(data)
    assert response.status_code == status
    assert got_body == body
    got = list(response.headers)
    assert got[: len(fields)] == [(n.lower(), v) for n, v in fields]
    assert (b"date", DATE) in got and (b"server", b"tremolo") in got
    assert (b"content-length", str(len(body)).encode()) in got
    assert ((b"connection", b"close") in got) is not keep_alive


def test_an_applications_server_and_date_replace_the_servers() -> None:
    data, _ = _core.encode_response(200, [(b"SERVER", b""), (b"Date", b"x")], b"", True,
                                    False, DATE, b"tremolo")
    response, _, _ = client_reads(data)
    assert list(response.headers) == [(b"server", b""), (b"date", b"x"),
                                      (b"content-length", b"0")]


def test_chunked_response_with_trailers() -> None:
    head, _ = _core.encode_head(200, [(b"Trailer", b"X-Sum")], None, True, True, False, DATE,
                                b"")
    data = (head + _core.encode_chunk(b"hello ") + _core.encode_chunk(b"")
            + _core.encode_chunk(b"world") + _core.last_chunk([(b"X-Sum", b"42")]))
    response, body, trailers = client_reads(data)
    assert body == b"hello world"
    assert trailers == [(b"x-sum", b"42")]
    assert (b"transfer-encoding", b"chunked") in list(response.headers)
    assert not any(n == b"server" for n, _ in response.headers)


def test_head_and_bodiless_statuses() -> None:
    data, _ = _core.encode_response(200, [], b"12345", True, False, DATE, b"x", head_only=True)
    assert data.endswith(b"Content-Length: 5\r\n\r\n")
    data, _ = _core.encode_response(204, [], b"ignored", True, False, DATE, b"x")
    assert b"Content-Length" not in data and data.endswith(b"\r\n\r\n")
    data, _ = _core.encode_response(304, [], b"ignored", True, False, DATE, b"x")
    # a 304 stands for a body it does not carry: no length of its own
    assert b"Content-Length" not in data and data.endswith(b"\r\n\r\n")
    data, _ = _core.encode_response(304, [(b"content-length", b"99")], b"", True, False, DATE,
                                    b"x")
    assert data.count(b"Content-Length") == 1 and b"Content-Length: 99\r\n" in data
    data, _ = _core.encode_head(200, [], None, False, True, True, DATE, b"x")
    assert b"Connection: keep-alive\r\n" in data  # HTTP/1.0 keep-alive is explicit


def test_framing_and_connection_fields_are_the_servers() -> None:
    # an application's Content-Length is checked and written once, by the server
    data, keep = _core.encode_response(200, [(b"content-length", b" 5 ")], b"hello", True,
                                       False, DATE, b"")
    assert data.count(b"ontent-") == 1 and data.endswith(b"Content-Length: 5\r\n\r\nhello")
    data, _ = _core.encode_response(200, [(b"Content-Length", b"5"), (b"content-length", b"5")],
                                    b"hello", True, False, DATE, b"")
    assert data.count(b"ontent-") == 1
    for bad in [b"5", b"-5", b"+11", b"0x0b", b"1 1", b"", b"99999999999999999999999"]:
        with pytest.raises(_core.ResponseEncodeError):
            _core.encode_response(200, [(b"Content-Length", bad)], b"hello world", True, False,
                                  DATE, b"")
    with pytest.raises(_core.ResponseEncodeError):
        _core.encode_response(200, [(b"Content-Length", b"11"), (b"Content-Length", b"12")],
                              b"hello world", True, False, DATE, b"")
    # HEAD: the application's length is the one a GET would have
    data, _ = _core.encode_response(200, [(b"content-length", b"1234")], b"", True, False, DATE,
                                    b"", head_only=True)
    assert data.endswith(b"Content-Length: 1234\r\n\r\n")
    # hop-by-hop fields never pass; Connection: close is honoured
    hop = [(b"Transfer-Encoding", b"gzip"), (b"Keep-Alive", b"timeout=5"), (b"TE", b"trailers"),
           (b"Proxy-Connection", b"x"), (b"Upgrade", b"h2c"), (b"Connection", b"keep-alive")]
    data, keep = _core.encode_response(200, hop, b"ok", True, False, DATE, b"")
    response, body, _ = client_reads(data)
    assert keep and body == b"ok"
    assert {n for n, _ in response.headers} == {b"date", b"content-length"}
    data, keep = _core.encode_response(200, [(b"Connection", b"foo, Close")], b"ok", True,
                                       False, DATE, b"")
    assert not keep and data.count(b"Connection") == 1 and b"Connection: close\r\n" in data
    data, keep = _core.encode_head(200, [(b"connection", b"close")], None, True, True, False,
                                   DATE, b"")
    assert not keep and b"Connection: close\r\n" in data
    # a streamed head takes the application's length only as the one it frames with
    data, _ = _core.encode_head(200, [(b"content-length", b"7")], 7, False, True, False, DATE,
                                b"")
    assert data.count(b"ontent-") == 1
    for length, chunked in [(None, True), (None, False), (8, False)]:
        with pytest.raises(_core.ResponseEncodeError):
            _core.encode_head(200, [(b"content-length", b"7")], length, chunked, True, False,
                              DATE, b"")
    # a 101 is about Upgrade and Connection: they pass as given
    data, _ = _core.encode_head(101, [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")],
                                None, False, True, False, DATE, b"")
    assert b"Upgrade: websocket\r\nConnection: Upgrade\r\n" in data


def test_fields_as_lists_and_bytearrays() -> None:
    # ASGI allows any iterable of [name, value] pairs
    data, _ = _core.encode_response(200, [[b"X-A", bytearray(b"1")], (bytearray(b"X-B"), b"2")],
                                    b"", True, False, DATE, b"")
    assert b"X-A: 1\r\nX-B: 2\r\n" in data


@pytest.mark.parametrize("fields", [
    [(b"X", b"a\r\nSet-Cookie: evil=1")], [(b"X", b"a\nb")], [(b"X", b"a\rb")],
    [(b"X", b"a\x00b")], [(b"X\r\nY", b"v")], [(b"Bad Name", b"v")], [(b"", b"v")],
])
def test_header_injection_is_refused(fields: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(_core.ResponseEncodeError):
        _core.encode_response(200, fields, b"", True, False, DATE, b"")
    with pytest.raises(_core.ResponseEncodeError):
        _core.encode_head(200, fields, 0, False, True, False, DATE, b"")
    with pytest.raises(_core.ResponseEncodeError):
        _core.last_chunk(fields)


def test_bad_arguments() -> None:
    with pytest.raises(_core.ResponseEncodeError):
        _core.encode_response(99, [], b"", True, False, DATE, b"")
    with pytest.raises(_core.ResponseEncodeError):
        _core.encode_response(200, [], b"", True, False, DATE, b"", reason=b"OK\r\n")
    with pytest.raises(ValueError):
        _core.encode_head(200, [], 5, True, True, False, DATE, b"")
    with pytest.raises(TypeError):
        _core.encode_response(200, [("str", "str")], b"", True, False, DATE, b"")
    with pytest.raises(TypeError):
        _core.encode_response(200, [(b"a",)], b"", True, False, DATE, b"")


def test_token_bucket() -> None:
    bucket = _core.TokenBucket(1000, 500, 10.0)
    assert bucket.take(300, 10.0) == (300, 0.0)
    allowed, wait = bucket.take(300, 10.0)
    assert allowed == 200 and wait == pytest.approx(0.1)
    assert bucket.available(10.1) == 100
    assert bucket.available(99.0) == 500  # never more than the burst
    assert (bucket.rate, bucket.burst) == (1000, 500)
    for rate, burst in [(0, 1), (1, 0), (-1, 1), (float("nan"), 1), (float("inf"), 1)]:
        with pytest.raises(ValueError):
            _core.TokenBucket(rate, burst, 0.0)
