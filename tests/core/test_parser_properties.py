"""Properties of the request parser, over generated input."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tremolo import _core

from ..helpers import run_parser
from ..strategies import Request, requests

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@SETTINGS
@given(requests())
def test_round_trip(req: Request) -> None:
    """What is serialized is what is parsed."""
    out = run_parser([req.to_bytes()])
    assert out.error is None
    [got] = out.requests
    assert got.complete
    assert got.method == req.method.encode()
    assert got.target == req.target.encode()
    assert got.version == req.version
    assert got.headers == req.expected_headers()
    assert got.body == req.body
    expected_trailers = [(n.lower().encode("latin-1"), v.encode("latin-1"))
                         for n, v in req.trailers]
    assert got.trailers == expected_trailers


@SETTINGS
@given(st.lists(requests(version="1.1"), min_size=1, max_size=4),
       st.lists(st.integers(min_value=0), max_size=12))
def test_split_invariance(reqs: list[Request], points: list[int]) -> None:
    """However a pipelined stream is cut into reads, the same requests come out."""
    data = b"".join(r.to_bytes() for r in reqs)
    whole = run_parser([data])
    assert whole.error is None and len(whole.requests) == len(reqs)
    assert run_parser(cut(data, points)) == whole


def check_events_only(pieces: list[bytes]) -> None:
    parser = _core.RequestParser()
    seen_error = False
    for piece in pieces:
        events = parser.feed(piece)
        assert isinstance(events, list)
        for ev in events:
            assert not seen_error, "nothing may follow an error"
            if isinstance(ev, _core.HTTPParseError):
                seen_error = True
                assert ev.status in (400, 413, 414, 417, 431, 501, 505)
                assert ev.reason
            else:
                assert ev is None or isinstance(ev, _core.RequestHead | bytes | list)


@SETTINGS
@given(st.binary(max_size=3000), st.lists(st.integers(min_value=0), max_size=8))
def test_arbitrary_bytes_give_events_or_an_error(data: bytes, points: list[int]) -> None:
    check_events_only([data])
    check_events_only(cut(data, points))
    assert run_parser(cut(data, points)) == run_parser([data])


@SETTINGS
@given(requests(), st.data())
def test_mutated_requests_give_events_or_an_error(req: Request, data: st.DataObject) -> None:
    """Valid requests with a few bytes replaced, inserted or removed: near misses
    reach deeper states than random bytes do."""
    raw = bytearray(req.to_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw)))
        op = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = data.draw(st.sampled_from([0, 9, 10, 13, 32, 34, 44, 58, 59, 127, 255]))
        if op == "insert" or not raw:
            raw.insert(pos, byte)
        elif op == "replace":
            raw[min(pos, len(raw) - 1)] = byte
        else:
            del raw[min(pos, len(raw) - 1)]
    points = data.draw(st.lists(st.integers(min_value=0), max_size=6))
    check_events_only([bytes(raw)])
    assert run_parser(cut(bytes(raw), points)) == run_parser([bytes(raw)])


def test_nothing_is_parsed_after_an_error() -> None:
    parser = _core.RequestParser()
    [err] = parser.feed(b"GET / HTTP/1.1\nHost: a\r\n\r\n")
    assert isinstance(err, _core.HTTPParseError) and err.status == 400
    assert parser.closed
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") == []


def test_upgrade_holds_bytes_until_taken_or_resumed() -> None:
    raw = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    parser = _core.RequestParser()
    head, end = parser.feed(raw + b"\x81\x80")
    assert head.upgrade and end is None and parser.paused
    assert parser.feed(b"more") == []
    assert parser.take_buffered() == b"\x81\x80more"
    assert parser.closed
    # declined: what was held is parsed as HTTP
    parser = _core.RequestParser()
    parser.feed(raw + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    events = parser.resume()
    assert [type(e).__name__ for e in events] == ["RequestHead", "NoneType"]
    assert events[0].target == b"/next"


def test_body_limit_can_change_between_requests() -> None:
    parser = _core.RequestParser(max_body_size=10)
    parser.max_body_size = 3
    [err] = parser.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n")
    assert isinstance(err, _core.HTTPParseError) and err.status == 413


def test_chunk_extensions_count_toward_the_body_limit() -> None:
    """100 bytes of body in 1-byte chunks, each with a 1000-byte extension: the wire
    carries 100 KB, and the limit of 10 KB must see it."""
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"1;x=" + b"e" * 996 + b"\r\nb\r\n"
    body = chunk * 100 + b"0\r\n\r\n"
    assert run_parser([head + body], max_body_size=10_000).error == 413
    plain = b"1\r\nb\r\n" * 100 + b"0\r\n\r\n"
    assert run_parser([head + plain], max_body_size=10_000).error is None


def test_limits_are_options() -> None:
    line = b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    assert run_parser([line], max_request_line=64).error == 414
    assert run_parser([line], max_request_line=200).error is None
    many = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 5 + b"\r\n"
    assert run_parser([many], max_headers=5).error == 431
    assert run_parser([many], max_headers=6).error is None
    assert run_parser([many], max_header_size=40).error == 431


def _same_event(a: object, b: object) -> bool:
    if isinstance(a, _core.RequestHead) and isinstance(b, _core.RequestHead):
        return (a.method, a.target, a.headers) == (b.method, b.target, b.headers)
    if isinstance(a, _core.HTTPParseError) and isinstance(b, _core.HTTPParseError):
        return (a.status, a.reason) == (b.status, b.reason)
    return a == b


@SETTINGS
@given(st.lists(requests(version="1.1"), min_size=1, max_size=3),
       st.lists(st.integers(min_value=0), max_size=6))
def test_feed_request_is_feed_with_the_usual_read_unwrapped(reqs: list[Request],
                                                            points: list[int]) -> None:
    """feed_request() gives what feed() gives, except that a read that was exactly
    one whole request without a body gives its head alone."""
    plain, fast = _core.RequestParser(), _core.RequestParser()
    for piece in cut(b"".join(r.to_bytes() for r in reqs), points):
        expected = plain.feed(piece)
        got = fast.feed_request(piece)
        if isinstance(got, _core.RequestHead):
            assert len(expected) == 2 and expected[1] is None
            got = [got, None]
        else:
            assert not (len(got) == 2 and got[1] is None
                        and isinstance(got[0], _core.RequestHead))
        assert len(got) == len(expected)
        assert all(_same_event(a, b) for a, b in zip(got, expected, strict=True))


def test_a_read_that_is_all_body_is_given_as_it_is() -> None:
    """A large upload's reads after its head are body only: each is the body piece
    itself, not a copy of it (one object in memory while it waits, not two)."""
    p = _core.RequestParser()
    p.feed(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\nab")
    read = bytes(bytearray(b"cdefgh"))  # (a fresh object, as a socket read is)
    [piece] = p.feed(read)
    assert piece is read
    # part of a read is copied out of it
    tail = bytes(bytearray(b"ijklGET / HTTP/1.1\r\nHost: t\r\n\r\n"))
    body, end, head, *_ = p.feed(tail)
    assert body == b"ijkl" and body is not tail and end is None
    assert isinstance(head, _core.RequestHead)
