"""Floods that hold already (issue 17 §5): slowloris on heads and on bodies,
pipelining, header floods, WebSocket ping floods and never-reading WebSocket clients.
Each runs against a real server with small clocks (--request-timeout 2, so the
sweeper's tick is 0.5 s) and asserts the bound with its number: every connection gone
within its clock (the seconds measured), the fds back to the baseline, RSS growth
under a stated ceiling, and the server still answering afterwards."""

from __future__ import annotations

import base64
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from tremolo import _core

from .server import PeakRSS, Server, serve, wait_for

KIB = 1 << 10
MIB = 1 << 20
LOOPS = ["uvloop", "asyncio"]
REQUEST_TIMEOUT = 2.0
#: the sweeper checks every min(1, request_timeout / 4) seconds (state.py)
TICK = REQUEST_TIMEOUT / 4
#: what a busy 2-core machine adds to a deadline met within its tick
SLACK = 1.0
CLOCKS = ("--request-timeout", "2")
#: what the worker logs when its write-buffer clock drops a connection (state.py)
DROPPED = "dropped a connection whose client read nothing"

NATIVE = '''
import asyncio
import os
from tremolo import Tremolo

app = Tremolo()
FILE = os.path.join(os.path.dirname(__file__), "file.bin")
if not os.path.exists(FILE):
    with open(FILE, "wb") as f:
        f.write(b"x" * (8 << 20))


@app.route("/")
async def hello(**server):
    return b"hello"


@app.route("/echo")
async def echo(request, **server):
    return request.query_string


@app.route("/read")
async def read(request, **server):
    return b"%d" % len(await request.body())


@app.route("/big")
async def big(**server):
    return b"x" * (8 << 20)


@app.route("/file")
async def file(response, **server):
    await response.sendfile(FILE)  # zero-copy on the asyncio loop


@app.route("/stream")
async def stream(**server):
    data = b"x" * 16384
    for _ in range(512):
        yield data


@app.route("/ws/echo")
async def ws_echo(websocket=None, **server):
    async for message in websocket:
        await websocket.send(message)


@app.route("/ws/flood")
async def ws_flood(websocket=None, **server):
    await websocket.accept()
    data = b"x" * 65536
    while True:
        await websocket.send(data)
'''

ASGI = '''
async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        if scope["path"] == "/ws/flood":
            data = b"x" * 65536
            while True:
                await send({"type": "websocket.send", "bytes": data})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text"),
                        "bytes": message.get("bytes")})
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/read":
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"%d" % size
    elif path == "/echo":
        body = scope["query_string"]
    else:
        body = b"hello"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
'''

WSGI = '''
def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/read":
        body = b"%d" % len(environ["wsgi.input"].read())
    elif path == "/echo":
        body = environ["QUERY_STRING"].encode("latin-1")
    else:
        body = b"hello"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
'''

APPS = {"native": NATIVE, "asgi": ASGI, "wsgi": WSGI}


def still_answers(srv: Server) -> None:
    r = httpx.get(f"http://127.0.0.1:{srv.port}/", timeout=5)
    assert (r.status_code, r.content) == (200, b"hello")


def warm(srv: Server) -> tuple[int, int]:
    """One request through the whole path first; then the baseline (fds, RSS KiB)."""
    still_answers(srv)
    wait_for(lambda: srv.sockets() == 0, "the warm-up connection closed", 5)
    return srv.fds(), srv.rss_kib()


def small_reader() -> socket.socket:
    """A client socket with a small receive buffer: what it does not read stays
    in the server rather than in the kernel."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return s


def flood(sock: socket.socket, data: bytes, stall: float = 1.0, limit: float = 15) -> float:
    """Sends `data` over and over until the peer takes nothing for `stall` seconds
    (it stopped reading), the connection drops, or `limit` passes. Returns when it
    last took something (time.monotonic)."""
    sock.setblocking(False)
    view, last = memoryview(data), time.monotonic()
    end = last + limit
    while time.monotonic() < end:
        _, writable, _ = select.select([], [sock], [], 0.05)
        if writable:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                sent = 0
            except OSError:
                return last  # dropped by the server
            if sent:
                last = time.monotonic()
                view = view[sent:] or memoryview(data)
        if time.monotonic() - last > stall:
            return last
    raise AssertionError(f"the server read a flood for {limit} s without pausing")


def gone_within(srv: Server, since: float, bound: float, what: str) -> float:
    """Waits until the server holds no connection; returns the seconds since
    `since`, asserted within `bound`."""
    wait_for(lambda: srv.sockets() == 0, what, timeout=bound + 5)
    took = time.monotonic() - since
    assert took <= bound, f"{what}: {took:.2f} s, bound {bound:.2f} s"
    return took


def flooded_and_dropped(srv: Server, connect: Callable[[], ContextManager[socket.socket]],
                        data: bytes, what: str, ceiling: int) -> str:
    """Floods a connection with `data` until the server stops reading it, then
    asserts that the write-buffer clock drops it within request_timeout + a tick,
    that RSS grew less than `ceiling` meanwhile, and that the fds came back.
    Returns what was measured."""
    fds, rss = warm(srv)
    with PeakRSS(srv) as peak, connect() as s:
        start = time.monotonic()
        last = flood(s, data)
        took = gone_within(srv, last, REQUEST_TIMEOUT + TICK + SLACK, what)
    assert srv.text().count(DROPPED) == 1
    growth = (peak.peak - rss) * KIB
    assert growth < ceiling, f"RSS +{growth / MIB:.1f} MiB"
    wait_for(lambda: srv.fds() <= fds, "the fds back to the baseline", 3)
    still_answers(srv)
    return f"blocked after {last - start:.2f} s, dropped {took:.2f} s later, RSS " \
        f"+{growth / MIB:.1f} MiB at most"


@contextmanager
def connected(port: int) -> Iterator[socket.socket]:
    with small_reader() as s:
        s.connect(("127.0.0.1", port))
        yield s


# -- slowloris ---------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_slowloris_heads_end_at_the_head_deadline(tmp_path: Path, loop: str) -> None:
    """200 connections each trickle a request head, a byte every 0.5 s: every one is
    answered 408 (and closed) within request_timeout + a tick of its opening, since
    the head's deadline is absolute (reset per byte, a head that never ends would
    hold its connection until it reached client_max_header_size: 8,192 bytes at
    2 bytes/s, over an hour)."""
    count, step = 200, 0.5
    with serve(tmp_path, NATIVE, "--loop", loop, *CLOCKS) as srv:
        fds, _ = warm(srv)
        with ExitStack() as stack:
            t0 = time.monotonic()
            socks = opened(stack, srv.port, count, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            # (times count from the trickle's start; the first head began this long
            # before it: opening 200 connections on a loaded machine takes a while)
            opening = time.monotonic() - t0
            ended = trickle(socks, b"a", step, REQUEST_TIMEOUT + TICK + SLACK + 3)
            assert len(ended) == count, f"{count - len(ended)} heads still open"
            times = sorted(t for t, _ in ended.values())
            print(f"{loop}: {count} slow heads closed {times[0]:.2f}-{times[-1]:.2f} s "
                  f"after they began")
            assert times[-1] <= REQUEST_TIMEOUT + TICK + SLACK
            assert times[0] + opening >= REQUEST_TIMEOUT - 0.2  # the head clock, not another
            assert {answer[:12] for _, answer in ended.values()} == {b"HTTP/1.1 408"}
        wait_for(lambda: srv.fds() <= fds, "the fds back to the baseline", 3)
        still_answers(srv)


def opened(stack: ExitStack, port: int, count: int, first: bytes) -> list[socket.socket]:
    """`count` connections (closed with `stack`), each of which has sent `first`."""
    socks = []
    for _ in range(count):
        s = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
        s.sendall(first)
        socks.append(s)
    return socks


def trickle(socks: list[socket.socket], piece: bytes, every: float, limit: float
            ) -> dict[socket.socket, tuple[float, bytes]]:
    """Sends `piece` on every socket each `every` seconds until the server answers
    and closes it, or `limit` passes; returns (seconds from the start to the end,
    answer) of each that ended."""
    start = time.monotonic()
    answers = {s: b"" for s in socks}
    ended: dict[socket.socket, tuple[float, bytes]] = {}
    next_piece = start
    while len(ended) < len(socks) and time.monotonic() - start < limit:
        live = [s for s in socks if s not in ended]
        if time.monotonic() >= next_piece:
            next_piece += every
            for s in live:
                with suppress(OSError):
                    s.send(piece)
        readable, _, _ = select.select(live, [], [], 0.02)
        for s in readable:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                chunk = b""
            answers[s] += chunk
            if not chunk:
                ended[s] = (time.monotonic() - start, answers[s])
    return ended


@pytest.mark.parametrize("interface", ["native", "asgi", "wsgi"])
def test_slowloris_bodies_end_at_the_minimum_rate(tmp_path: Path, interface: str) -> None:
    """20 clients send a whole head, then trickle a 100,000-byte body at 500 bytes/s
    (100 bytes every 0.2 s: each piece well inside request_timeout) to a handler that
    reads it, under --body-min-rate 1000: the allowance is request_timeout + received
    / body_min_rate, against the time waited, so with data at half the minimum rate
    it runs out after request_timeout / (1 - 500/1000) = 4 s. Each is answered 408
    then, and closed (with the per-wait clock alone, each would hold its handler for
    the 200 s the body takes)."""
    count, piece, every, rate = 20, b"x" * 100, 0.2, 1000
    bound = REQUEST_TIMEOUT / (1 - len(piece) / every / rate)
    with serve(tmp_path, APPS[interface], *CLOCKS, "--body-min-rate", str(rate),
               "--thread-pool-size", str(count)) as srv:
        fds, _ = warm(srv)
        with ExitStack() as stack:
            t0 = time.monotonic()
            socks = opened(stack, srv.port, count, b"POST /read HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 100000\r\n\r\n")
            opening = time.monotonic() - t0  # (see the slow heads' test)
            ended = trickle(socks, piece, every, bound + 2 * SLACK + 2)
            assert len(ended) == count, f"{count - len(ended)} slow bodies still open"
            times = sorted(t for t, _ in ended.values())
            print(f"{interface}: {count} slow bodies answered {times[0]:.2f}-"
                  f"{times[-1]:.2f} s after their heads (bound {bound:.1f} s)")
            assert {answer[:12] for _, answer in ended.values()} == {b"HTTP/1.1 408"}
            assert bound - SLACK <= times[0] + opening and times[-1] <= bound + SLACK
        wait_for(lambda: srv.fds() <= fds, "the fds back to the baseline", 3)
        still_answers(srv)


# -- pipelining ----------------------------------------------------------------------

PIPELINED = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
#: what a connection that pipelines and never reads may make the worker hold: the
#: write buffer (up to its high-water mark, 4 x buffer_size, plus the answers to one
#: read's requests) and the events of one read (reading pauses past max_queue_size)
PIPELINE_CEILING = 16 * MIB


@pytest.mark.parametrize("loop", LOOPS)
def test_a_pipelining_client_that_never_reads(tmp_path: Path, loop: str) -> None:
    """One connection pipelines requests as fast as it can and reads nothing: the
    server stops reading once its write buffer is full (the client's sends then
    block), holds a bounded amount, and drops the connection once that buffer has
    not shrunk for request_timeout (it was held for as long as the client liked)."""
    with serve(tmp_path, NATIVE, "--loop", loop, *CLOCKS) as srv:
        print(loop, flooded_and_dropped(srv, lambda: connected(srv.port), PIPELINED * 1000,
                                        "the never-reading connection dropped",
                                        PIPELINE_CEILING))


@pytest.mark.parametrize(("interface", "loop"), [("native", "uvloop"), ("asgi", "asyncio")])
def test_a_pipelining_client_that_reads_slowly_gets_every_answer_in_order(
        tmp_path: Path, loop: str, interface: str) -> None:
    """2,000 pipelined requests whose answers are read at 50 KB/s, for about twice
    request_timeout: the write buffer shrinks as the client reads, so the
    connection is never dropped, and every answer comes, in order."""
    count, rate, every = 2000, 50_000, 0.05
    requests = b"".join(b"GET /echo?%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(count))
    with serve(tmp_path, APPS[interface], "--loop", loop, *CLOCKS) as srv, \
            small_reader() as s:
        s.connect(("127.0.0.1", srv.port))
        s.settimeout(5)
        sender = threading.Thread(target=s.sendall, args=(requests,), daemon=True)
        sender.start()
        data, bodies = b"", []
        start = next_read = time.monotonic()
        while len(bodies) < count:
            assert time.monotonic() - start < 30, f"{len(bodies)} answers in 30 s"
            next_read += every
            time.sleep(max(0.0, next_read - time.monotonic()))
            chunk = s.recv(int(rate * every))
            assert chunk, f"dropped after {len(bodies)} answers, " \
                f"{time.monotonic() - start:.2f} s: {srv.text()[-1000:]}"
            data += chunk
            while True:
                head, sep, rest = data.partition(b"\r\n\r\n")
                if not sep:
                    break
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                if len(rest) < length:
                    break
                assert head.startswith(b"HTTP/1.1 200"), head
                bodies.append(rest[:length])
                data = rest[length:]
        took = time.monotonic() - start
        sender.join(5)
        print(f"{interface} {loop}: {count} answers in order over {took:.1f} s")
        assert bodies == [b"%d" % i for i in range(count)]
        assert took > REQUEST_TIMEOUT  # longer than the clock it must not trip


@pytest.mark.parametrize("path", ["/stream", "/big", "/file"])
@pytest.mark.parametrize("loop", LOOPS)
def test_a_client_that_reads_slowly_but_steadily_is_not_dropped(
        tmp_path: Path, loop: str, path: str) -> None:
    """A client reads a long answer at 50 KB/s (a 400 kbit/s link), streamed (the
    handler waits in drain), whole (nobody waits: the sweeper watches the write
    buffer) or a file (zero-copy on the asyncio loop: what the client acknowledges
    is watched), for 3 x request_timeout: it is never taken for a client that reads
    nothing. The kernel's send buffer must not hide its reading: Linux grows it to
    megabytes and takes more from the transport only once a third of it is free, so
    with the transport's buffer alone as the measure of progress the connection was
    dropped (at 2.5 s, after 0.1 MB; with the default request_timeout of 30 s, a
    client reading at 20 KB/s after 31 s)."""
    rate, every, duration = 50_000, 0.05, 3 * REQUEST_TIMEOUT
    with serve(tmp_path, NATIVE, "--loop", loop, *CLOCKS) as srv, small_reader() as s:
        s.connect(("127.0.0.1", srv.port))
        s.settimeout(5)
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        got, checked = 0, 0
        start = next_read = time.monotonic()
        while time.monotonic() - start < duration:
            next_read += every
            time.sleep(max(0.0, next_read - time.monotonic()))
            want = int(rate * every)
            while want > 0:
                chunk = s.recv(want)
                assert chunk, "the answer ended early"
                got += len(chunk)
                want -= len(chunk)
            checked += 1
            if checked % 5 == 0:  # the server's side, not what the kernel still holds
                assert srv.sockets("ESTABLISHED") == 1, f"dropped within " \
                    f"{time.monotonic() - start:.2f} s, {got / 1e6:.2f} MB read at " \
                    f"{rate // 1000} KB/s: {srv.text()[-1000:]}"
        print(f"{path} {loop}: {got / 1e6:.2f} MB read in {duration:.0f} s, still open")
        assert srv.sockets("ESTABLISHED") == 1
        assert DROPPED not in srv.text()


def send_all(s: socket.socket, data: bytes) -> None:
    with suppress(OSError):  # the connection may end first
        s.sendall(data)


def bursty(port: int, seconds: float, every: float,
           results: list[tuple[int, float | None]]) -> None:
    """Pipelines requests and reads, every `every` seconds, all that has come."""
    with connected(port) as s:
        requests = b"GET /echo?1 HTTP/1.1\r\nHost: x\r\n\r\n" * 100_000
        threading.Thread(target=send_all, args=(s, requests), daemon=True).start()
        start, got = time.monotonic(), 0
        while time.monotonic() - start < seconds:
            time.sleep(every)
            end = time.monotonic() + 0.02
            while time.monotonic() < end:
                try:
                    chunk = s.recv(65536, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    time.sleep(0.001)
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    results.append((got, time.monotonic() - start))
                    return
                got += len(chunk)
        results.append((got, None))


@pytest.mark.xfail(reason="known defect, not fixed yet: now and then one of the 8 is "
                   "answered 408 (request head not received in time) while it reads; the "
                   "write-buffer clock no longer drops it (it did before acknowledged bytes "
                   "were counted)", strict=False)
@pytest.mark.parametrize("loop", LOOPS)
def test_clients_that_read_in_bursts_are_not_dropped(tmp_path: Path, loop: str) -> None:
    """8 clients pipeline requests and read all that has come every 0.5 s (0.5 to
    1.3 MB/s each), for 5 request_timeouts: none is dropped. Counting progress as a
    write buffer that shrinks between two looks dropped some (4 of 16 in a run, and
    1 of 48 with the kernel's queue counted too): answers written in between refill
    it; what the client's TCP acknowledged is counted instead."""
    with serve(tmp_path, NATIVE, "--loop", loop,
               "--request-timeout", str(REQUEST_TIMEOUT)) as srv:
        results: list[tuple[int, float | None]] = []
        seconds = 5 * REQUEST_TIMEOUT
        readers = [threading.Thread(target=bursty, args=(srv.port, seconds, 0.5, results))
                   for _ in range(8)]
        for t in readers:
            t.start()
        for t in readers:
            t.join(seconds + 10)
        dropped = [(got, at) for got, at in results if at is not None]
        assert len(results) == 8 and not dropped, dropped
        assert all(got > 1_000_000 for got, _ in results), results


@pytest.mark.parametrize("loop", LOOPS)
def test_a_client_that_never_reads_a_file_is_dropped(tmp_path: Path, loop: str) -> None:
    """10 clients ask for an 8 MiB file and read nothing: each is dropped within
    request_timeout + a tick, also while the asyncio loop sends it with the kernel's
    zero-copy sendfile, which no write buffer sees (such a client was held until
    app_handler_timeout, 120 s by default)."""
    count = 10
    with serve(tmp_path, NATIVE, "--loop", loop, *CLOCKS) as srv, ExitStack() as stack:
        fds, _ = warm(srv)
        start = time.monotonic()
        for _ in range(count):
            stack.enter_context(connected(srv.port)).sendall(
                b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: srv.sockets() == count, "the clients accepted", 5)
        took = gone_within(srv, start, REQUEST_TIMEOUT + TICK + SLACK + 1,
                           "the never-reading file downloads dropped")
        print(f"{loop}: {count} unread file downloads dropped within {took:.2f} s")
        wait_for(lambda: srv.fds() <= fds, "the fds back to the baseline", 3)
        still_answers(srv)


# -- header floods -------------------------------------------------------------------


def head_of(size: int, fields: int = 1) -> bytes:
    """A GET head of exactly `size` bytes (final CRLF CRLF included), with
    `fields` fields (Host first)."""
    lines = [b"GET / HTTP/1.1", b"Host: x"] + [b"X-%d: y" % i for i in range(fields - 1)]
    base = len(b"\r\n".join(lines)) + 4
    assert size >= base + 1, "too small for that many fields"
    lines[-1] += b"z" * (size - base) if fields > 1 else b""
    if fields == 1:
        lines.append(b"X-Pad: " + b"z" * (size - base - len(b"\r\nX-Pad: ")))
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    assert len(head) == size, (len(head), size)
    return head


def status_of(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        answer = b""
        while b"\r\n" not in answer:
            chunk = s.recv(4096)
            assert chunk, f"closed without an answer: {answer!r}"
            answer += chunk
        return answer[:12]


def test_heads_at_the_limits(tmp_path: Path) -> None:
    """client_max_header_size (8,192) and max_headers (100) are where the server
    says they are: a head of 8,192 bytes with 100 fields is served, one byte or one
    field more is 431."""
    with serve(tmp_path, NATIVE, *CLOCKS) as srv:
        assert status_of(srv.port, head_of(8192)) == b"HTTP/1.1 200"
        assert status_of(srv.port, head_of(8193)) == b"HTTP/1.1 431"
        assert status_of(srv.port, head_of(2000, fields=100)) == b"HTTP/1.1 200"
        assert status_of(srv.port, head_of(2000, fields=101)) == b"HTTP/1.1 431"


#: 100 clients' heads: what the server may hold meanwhile (buffered whole, the
#: 1 MiB floods would hold 100 MiB)
HEAD_FLOOD_CEILING = 16 * MIB
HEAD_FLOODS = {
    # a head that never ends, 1 MiB of it: one field growing, or 5-byte fields by
    # the thousand; each is refused at the limit
    "one-long-field": (b"X-Long: " + b"a" * MIB, b"HTTP/1.1 431"),
    "many-fields": (b"a: b\r\n" * (MIB // 6), b"HTTP/1.1 431"),
    # just under the limit, never finished: held until the head's deadline
    "held-at-the-limit": (b"X-Held: " + b"a" * 8000, b"HTTP/1.1 408"),
}


@pytest.mark.parametrize("shape", list(HEAD_FLOODS))
@pytest.mark.parametrize("loop", LOOPS)
def test_header_floods_cost_a_bounded_amount(tmp_path: Path, loop: str, shape: str) -> None:
    """100 connections at once each send a head that never ends: past a limit
    each is answered 431 and closed, and one kept just under the limits is
    answered 408 at request_timeout; the worker holds at most a head's worth per
    connection meanwhile."""
    count = 100
    fill, status = HEAD_FLOODS[shape]
    data = b"GET / HTTP/1.1\r\nHost: x\r\n" + fill
    with serve(tmp_path, NATIVE, "--loop", loop, *CLOCKS) as srv:
        fds, rss = warm(srv)
        answers: list[bytes] = []

        def attack() -> None:
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
                with suppress(OSError):  # refused midway: the answer is waiting
                    s.sendall(data)
                answer = b""
                try:
                    while chunk := s.recv(4096):
                        answer += chunk
                except ConnectionResetError:
                    pass
                answers.append(answer[:12])

        start = time.monotonic()
        with PeakRSS(srv) as peak:
            threads = [threading.Thread(target=attack) for _ in range(count)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        took = time.monotonic() - start
        growth = (peak.peak - rss) * KIB
        print(f"{shape} {loop}: {count} heads answered within {took:.2f} s, RSS "
              f"+{growth / MIB:.1f} MiB at most")
        assert answers == [status] * count
        assert took <= REQUEST_TIMEOUT + TICK + SLACK
        assert growth < HEAD_FLOOD_CEILING
        wait_for(lambda: srv.fds() <= fds, "the fds back to the baseline", 3)
        still_answers(srv)


# -- WebSocket -----------------------------------------------------------------------


@contextmanager
def websocket(port: int, path: str) -> Iterator[socket.socket]:
    """A raw WebSocket connection (no extension) with a small receive buffer."""
    with small_reader() as s:
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16))
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  b"Sec-WebSocket-Key: " + key + b"\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1)  # the head only: what follows stays unread
            assert chunk, f"closed during the handshake: {head!r}"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        yield s


#: what a WebSocket client that reads nothing may make the worker hold
WS_CEILING = 16 * MIB


@pytest.mark.parametrize("interface", ["native", "asgi"])
@pytest.mark.parametrize("loop", LOOPS)
def test_a_ping_flood_that_never_reads_the_pongs(tmp_path: Path, loop: str,
                                                 interface: str) -> None:
    """A client sends 125-byte pings as fast as it can and reads no pong: the pongs
    fill the server's write buffer, reading pauses (the client's sends block), the
    worker holds a bounded amount, and the connection is dropped once that buffer
    has not shrunk for request_timeout."""
    pings = _core.ws_frame(b"p" * 125, 9, True, os.urandom(4)) * 500
    with serve(tmp_path, APPS[interface], "--loop", loop, *CLOCKS,
               "--ws-ping-interval", "0") as srv:
        print(interface, loop, flooded_and_dropped(
            srv, lambda: websocket(srv.port, "/ws/echo"), pings, "the ping flood dropped",
            WS_CEILING))


@pytest.mark.parametrize("interface", ["native", "asgi"])
@pytest.mark.parametrize("loop", LOOPS)
def test_a_websocket_client_that_never_reads_a_sending_handler(
        tmp_path: Path, loop: str, interface: str) -> None:
    """A handler sends 64 KiB messages in a loop to 10 clients that read nothing:
    each send waits in drain (the worker holds about a write buffer per client, not
    what the handler would have sent), and each connection is dropped within
    request_timeout of its buffer filling; the handlers end."""
    count = 10
    with serve(tmp_path, APPS[interface], "--loop", loop, *CLOCKS,
               "--ws-ping-interval", "0", "--app-close-timeout", "1") as srv:
        fds, rss = warm(srv)
        with PeakRSS(srv) as peak, ExitStack() as stack:
            start = time.monotonic()
            for _ in range(count):
                stack.enter_context(websocket(srv.port, "/ws/flood"))
            took = gone_within(srv, start, REQUEST_TIMEOUT + TICK + SLACK + 1,
                               "the never-reading WebSocket clients dropped")
        growth = (peak.peak - rss) * KIB
        print(f"{interface} {loop}: {count} never-reading clients dropped within "
              f"{took:.2f} s, RSS +{growth / MIB:.1f} MiB at most")
        assert growth < WS_CEILING
        wait_for(lambda: srv.fds() <= fds, "the fds back to the baseline", 3)
        still_answers(srv)
