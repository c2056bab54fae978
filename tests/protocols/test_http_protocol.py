"""HTTPProtocol without sockets: a fake transport and a real event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tremolo.config import Options
from tremolo.exceptions import HTTPException
from tremolo.protocols import Exchange, FunctionAdapter, HTTPProtocol, ServerState
from tremolo.protocols.counters import Counters
from tremolo.protocols.lifecycle import DONE

from ..helpers import split_responses

GET = b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n"


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.reading = True
        self.closed = False
        self.protocol: HTTPProtocol | None = None

    def write(self, data: Any) -> None:
        self.out += data

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def abort(self) -> None:
        self.closed = True


def connect(handler: Any, **options: Any) -> tuple[HTTPProtocol, FakeTransport]:
    state = ServerState(Options.from_kwargs(options), asyncio.get_running_loop())
    proto = HTTPProtocol(state, FunctionAdapter(handler))
    transport = FakeTransport()
    proto.connection_made(transport)
    return proto, transport


async def echo_target(ex: Exchange) -> None:
    ex.respond(200, [], ex.head.target)


async def test_deep_pipeline_does_not_recurse() -> None:
    proto, t = connect(echo_target, max_queue_size=5000)
    proto.data_received(b"".join(GET % i for i in range(3000)))
    bodies = [r[2] for r in split_responses(bytes(t.out))]
    assert bodies == [b"/%d" % i for i in range(3000)]


async def test_order_kept_when_handlers_suspend() -> None:
    async def slow_first(ex: Exchange) -> None:
        if ex.head.target == b"/0":
            await asyncio.sleep(0.05)
        ex.respond(200, [], ex.head.target)

    proto, t = connect(slow_first)
    proto.data_received(b"".join(GET % i for i in range(5)))
    assert t.out == b""
    await asyncio.sleep(0.2)
    assert [r[2] for r in split_responses(bytes(t.out))] == [b"/%d" % i for i in range(5)]


async def test_reading_pauses_when_the_queue_is_full() -> None:
    release = asyncio.Event()

    async def blocked(ex: Exchange) -> None:
        await release.wait()
        ex.respond(200, [], b"")

    proto, t = connect(blocked, max_queue_size=4)
    proto.data_received(b"".join(GET % i for i in range(10)))
    assert not t.reading
    release.set()
    for _ in range(100):
        if t.out.count(b"HTTP/1.1 200") == 10:
            break
        await asyncio.sleep(0.01)
    assert t.out.count(b"HTTP/1.1 200") == 10
    assert t.reading


async def test_reading_pauses_while_the_body_is_not_consumed() -> None:
    got = []

    async def reader(ex: Exchange) -> None:
        await asyncio.sleep(0.05)
        while data := await ex.receive():
            got.append(data)
        ex.respond(200, [], b"ok")

    proto, t = connect(reader, buffer_size=1024)
    proto.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(20):
        proto.data_received(b"x" * 1000)
    assert not t.reading  # 20000 bytes buffered > 4 * buffer_size
    for _ in range(100):
        if t.reading:
            break
        await asyncio.sleep(0.01)
    assert t.reading
    assert sum(map(len, got)) == 20000


async def test_expect_continue_is_sent_on_first_read() -> None:
    async def reader(ex: Exchange) -> None:
        body = await ex.receive()
        ex.respond(200, [], body)

    proto, t = connect(reader)
    proto.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                        b"Content-Length: 2\r\n\r\n")
    await asyncio.sleep(0)
    assert t.out == b"HTTP/1.1 100 Continue\r\n\r\n"
    proto.data_received(b"hi")
    await asyncio.sleep(0.01)
    assert t.out.endswith(b"\r\n\r\nhi")


async def test_unanswered_expectation_closes_the_connection() -> None:
    proto, t = connect(echo_target)
    proto.data_received(b"POST /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                        b"Content-Length: 2\r\n\r\n")
    # closed gently: the client may still send the body it announced
    assert b"Connection: close" in t.out and proto.phase == "lingering"


async def test_write_waits_for_drain() -> None:
    async def streamer(ex: Exchange) -> None:
        ex.start(200, [])
        await ex.write(b"a")
        await ex.write(b"b")
        ex.end()

    proto, t = connect(streamer)
    proto.pause_writing()
    proto.data_received(GET % 1)
    await asyncio.sleep(0.01)
    assert t.out.endswith(b"1\r\na\r\n")
    proto.resume_writing()
    await asyncio.sleep(0.01)
    assert t.out.endswith(b"1\r\nb\r\n0\r\n\r\n")


async def test_handler_error_gives_500_and_closes() -> None:
    async def broken(ex: Exchange) -> None:
        raise RuntimeError("boom")

    proto, t = connect(broken)
    proto.data_received(GET % 1 + GET % 2)
    assert t.out.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert t.out.count(b"HTTP/1.1") == 1 and t.closed


async def test_half_closed_client_still_gets_its_answers() -> None:
    proto, t = connect(echo_target)
    proto.data_received(GET % 1 + GET % 2)
    assert proto.eof_received() is True
    assert t.out.count(b"HTTP/1.1 200") == 2 and t.closed


@pytest.mark.parametrize("piece", [1, 3, 17])
async def test_any_read_size(piece: int) -> None:
    proto, t = connect(echo_target)
    data = b"".join(GET % i for i in range(20))
    for i in range(0, len(data), piece):
        proto.data_received(data[i:i + piece])
    assert [r[2] for r in split_responses(bytes(t.out))] == [b"/%d" % i for i in range(20)]


async def test_declined_upgrade_goes_on_as_http() -> None:
    release = asyncio.Event()

    async def answer_later(ex: Exchange) -> None:
        if ex.head.target == b"/ws":
            await release.wait()
        ex.respond(200, [], ex.head.target)

    proto, t = connect(answer_later)
    upgrade = b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    proto.data_received(upgrade + GET % 1)
    assert not t.reading  # nothing more is read until the upgrade is decided
    proto.data_received(GET % 2)
    release.set()
    for _ in range(100):
        if t.out.count(b"HTTP/1.1 200") == 3:
            break
        await asyncio.sleep(0.01)
    assert [r[2] for r in split_responses(bytes(t.out))] == [b"/ws", b"/1", b"/2"]
    assert t.reading


async def test_declined_upgrade_answered_at_once() -> None:
    proto, t = connect(echo_target)
    upgrade = b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    proto.data_received(upgrade + GET % 1)
    assert [r[2] for r in split_responses(bytes(t.out))] == [b"/ws", b"/1"]
    assert t.reading


async def refusing_reader(ex: Exchange) -> None:
    """Reads the body; a refused one is answered as the server answers it."""
    try:
        while await ex.receive():
            pass
    except HTTPException as exc:
        ex.refuse(exc)
        return
    ex.respond(200, [], b"read")


@pytest.mark.parametrize(("sent", "answer"), [
    (b"X" * 65, b"bad chunked encoding: no chunk size"),
    (b"-1\r\n", b"bad chunked encoding"),
    (b"1\r\nA\rX", b"bad chunked encoding: invalid chunk terminator"),
    (b"0;\r\n\r\n", b"bad chunked encoding: invalid chunk extension")])
async def test_a_malformed_chunked_body_is_answered_at_once(sent: bytes, answer: bytes) -> None:
    """In the original's words; garbage without a line end is answered once 64 bytes
    of it came (the original's window), not when the body clock runs out."""
    proto, t = connect(refusing_reader)
    proto.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    await asyncio.sleep(0)
    if sent.startswith(b"X"):
        proto.data_received(sent[:64])
        await asyncio.sleep(0.01)
        assert t.out == b""  # not judged yet: a CRLF could still end the line
        sent = sent[64:]
    proto.data_received(sent)
    for _ in range(3):
        await asyncio.sleep(0)
    assert t.out.startswith(b"HTTP/1.1 400 Bad Request\r\n"), bytes(t.out)
    assert b"Content-Type: text/html; charset=utf-8\r\n" in t.out
    assert t.out.endswith(b"\r\n\r\n" + answer) and t.closed


async def body_echo(ex: Exchange) -> None:
    pieces = []
    while data := await ex.receive():
        assert len(data) <= 4 * 16384
        pieces.append(data)
    ex.respond(200, [], b"".join(pieces))


BODY = bytes(range(256)) * 20


@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("piece", [1, 2, 5, 13, 64, 1000, 100000])
async def test_uploads_at_any_read_split(framing: str, piece: int) -> None:
    if framing == "length":
        raw = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY
    else:
        chunks = [BODY[i:i + 700] for i in range(0, len(BODY), 700)]
        # the last data chunk and the terminator travel together
        raw = (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n")
    raw += GET % 9
    proto, t = connect(body_echo)
    for i in range(0, len(raw), piece):
        proto.data_received(raw[i:i + piece])
        await asyncio.sleep(0)
    for _ in range(100):
        if t.out.count(b"HTTP/1.1 200") == 2:
            break
        await asyncio.sleep(0.01)
    first, second = split_responses(bytes(t.out))
    assert first[2] == BODY and second[0] == b"HTTP/1.1 200 OK"


async def test_hot_objects_keep_cpythons_fast_attribute_access() -> None:
    """CPython 3.11 shares the keys of instances' dicts (and reads their attributes
    with specialized, cached lookups) for at most 29 attributes; a 30th one on the
    connection made every request about 1,000 instructions dearer (callgrind on
    bench/micro.py). A new attribute belongs on the state, or as a class default."""
    seen: list[Exchange] = []

    async def handler(ex: Exchange) -> None:
        seen.append(ex)
        ex.respond(200, [], b"ok")

    proto, transport = connect(handler, access_log=True)
    proto.state.counters = proto.flow.counters = Counters("test")  # as --metrics does
    proto.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0)
    assert seen and transport.out.startswith(b"HTTP/1.1 200")
    assert proto.state.counters.requests[2] == 1
    assert len(vars(proto)) < 30, sorted(vars(proto))
    assert len(vars(seen[0])) < 30, sorted(vars(seen[0]))
    assert len(vars(proto.flow)) < 30


async def test_a_failing_access_log_costs_no_connection(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    """An exception while an exchange finishes (here: the access log) used to skip
    exchange_finished: the connection was never closed and the requests queued
    behind it never answered."""
    proto, t = connect(echo_target, access_log=True)

    class Broken:
        def log(self, *args: Any) -> None:
            raise ValueError("a field no format expected")

    proto.state.access = Broken()  # type: ignore[assignment]
    proto.data_received(GET % 1 + GET % 2)
    assert [r[2] for r in split_responses(bytes(t.out))] == [b"/1", b"/2"]
    assert proto.current is None and not t.closed
    assert "logging or counting a request failed" in caplog.text


async def test_an_exchange_left_unfinished_is_closed_by_the_clocks(
        caplog: pytest.LogCaptureFixture) -> None:
    """Whatever skips the end of an exchange, the sweeper's next look closes the
    connection: nothing else would."""
    async def marks_it_done(ex: Exchange) -> None:
        ex.phase = DONE  # as if answered, without what ends an exchange

    proto, t = connect(marks_it_done)
    proto.data_received(GET % 1)
    assert proto.current is not None and not t.closed
    assert proto.check_clocks(proto.loop.time()) is False
    assert t.closed and "left unfinished" in caplog.text


async def test_the_sweeper_survives_a_connection_that_fails(
        caplog: pytest.LogCaptureFixture) -> None:
    proto, t = connect(echo_target, request_timeout=0.4, keepalive_timeout=0.4)
    other, t2 = connect(echo_target)
    state = proto.state
    state.connections.add(other)

    def broken(now: float) -> bool:
        raise RuntimeError("a bug in one connection's clocks")

    other.check_clocks = broken  # type: ignore[method-assign]
    await asyncio.sleep(0.25)  # a tick of 0.1 s: a few sweeps
    assert t2.closed and "closed a connection whose clocks failed" in caplog.text
    proto.data_received(b"GET / HTTP/1.1\r\n")  # a head that never ends: 408 in time
    await asyncio.sleep(0.6)
    assert t.out.startswith(b"HTTP/1.1 408") and t.closed


async def test_a_late_head_is_408_on_a_new_connection_and_closed_on_a_kept_one() -> None:
    """As the original: its request clock answers 408 ('request timeout after 1s'),
    its keep-alive clock closes the connection without a word."""
    proto, t = connect(echo_target, request_timeout=1)
    proto.data_received(b"GET / HTTP/1.1\r\n")
    proto.check_clocks(proto.loop.time() + 1.1)
    assert t.out.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and t.closed
    assert t.out.endswith(b"\r\n\r\nrequest timeout after 1s")
    proto, t = connect(echo_target, request_timeout=1)
    proto.data_received(GET % 1 + b"GET / HTTP/1.1\r\n")
    answered = bytes(t.out)
    assert answered.startswith(b"HTTP/1.1 200 OK\r\n") and not t.closed
    proto.check_clocks(proto.loop.time() + 1.1)
    assert t.out == answered and t.closed


async def test_limit_concurrency_counts_live_connections_only() -> None:
    """Refused connections stay the worker's connections until they are gone
    (every socket is swept), but only the others count against the limit."""
    proto, _ = connect(echo_target, limit_concurrency=1)
    state = proto.state
    extra = HTTPProtocol(state, FunctionAdapter(echo_target))
    te = FakeTransport()
    extra.connection_made(te)
    assert te.out.startswith(b"HTTP/1.1 503") and extra.phase == "refused"
    assert state.connections == {proto, extra} and state.serving() == 1
    extra.connection_lost(None)
    proto.connection_lost(None)
    assert state.serving() == 0 and not state.connections and state.refused == 0
    again = HTTPProtocol(state, FunctionAdapter(echo_target))
    ta = FakeTransport()
    again.connection_made(ta)
    assert again.phase == "http" and ta.out == b""


async def test_a_client_that_half_closes_after_its_answer_is_closed() -> None:
    """EOF while the exchange is being answered: once it ends, the connection
    closes (it stayed open until keepalive_timeout)."""
    release = asyncio.Event()

    async def slow(ex: Exchange) -> None:
        await release.wait()
        ex.respond(200, [], b"late")

    proto, t = connect(slow)
    proto.data_received(GET % 1)
    proto.eof_received()
    assert not t.closed
    release.set()
    await asyncio.sleep(0.01)
    assert split_responses(bytes(t.out))[0][2] == b"late" and t.closed

