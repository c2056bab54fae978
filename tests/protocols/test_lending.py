"""A long request body read by the application's thread from the socket
(protocols/lending.py): every byte in any read size, never a byte of the next request, the
body's clocks, and a read in progress ended when the connection is lost, the request
given up or the worker stopped. Bodies the loop reads for the thread (chunked, at
upload_rate) are checked to go the other way."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tremolo.protocols import lending as lent
from tremolo.testing import serve_in_thread
from tremolo.wsgi import WSGIAdapter

from ..helpers import split_responses

BIG = random.Random(20).randbytes((1 << 20) + 12345)
LINES = b"".join(b"line %d %s\n" % (i, b"x" * (i % 300)) for i in range(6000))
reading = threading.Event()  # the application began a read that waits
failures: list[BaseException] = []


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    path, stream = environ["PATH_INFO"], environ["wsgi.input"]
    if path == "/sum":  # reads in the size the query gives (none: read())
        size = int(environ["QUERY_STRING"] or -1)
        digest, count = hashlib.sha256(), 0
        while data := stream.read(size):
            digest.update(data)
            count += len(data)
            if size < 0:
                break
        body = f"{count} {digest.hexdigest()}".encode()
    elif path == "/lines":
        first = stream.readline()
        rest = list(stream)
        body = f"{len(rest) + 1} {hashlib.sha256(first + b''.join(rest)).hexdigest()}".encode()
    elif path == "/sleep":
        time.sleep(0.3)
        body = b"slept"
    elif path == "/some":  # a part of the body, and an answer
        body = str(len(stream.read(100_000))).encode()
    elif path == "/stall":  # reads on while the client stops sending
        stream.read(100_000)
        reading.set()
        try:
            stream.read()
        except BaseException as exc:
            failures.append(exc)
            raise
        body = b"read"
    else:
        body = path.encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


@pytest.fixture(autouse=True)
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many bodies had their reads lent (a count made at LentBody())."""
    reading.clear()
    failures.clear()
    made: list[int] = []
    init = lent.LentBody.__init__

    def counting(self: lent.LentBody, *args: Any) -> None:
        made.append(1)
        init(self, *args)

    monkeypatch.setattr(lent.LentBody, "__init__", counting)
    yield made


def expect(data: bytes) -> bytes:
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n".encode()
            + extra + b"\r\n" + body)


def answers(sock: socket.socket, count: int, timeout: float = 10
            ) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """The first `count` responses on `sock`, each with a Content-Length (bounded by
    `timeout`)."""
    deadline = time.monotonic() + timeout
    got = b""
    while True:
        out, rest = [], got
        while b"\r\n\r\n" in rest:
            head, _, rest = rest.partition(b"\r\n\r\n")
            [(line, fields, _)] = split_responses(head + b"\r\n\r\n")
            size = int(fields[b"content-length"])
            if len(rest) < size:
                break
            out.append((line, fields, rest[:size]))
            rest = rest[size:]
        if len(out) >= count:
            return out[:count]
        assert time.monotonic() < deadline, got[:300]
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(1 << 16)
        assert data, f"closed after {got[:300]!r}"
        got += data


def serve(**options: Any) -> Any:
    return serve_in_thread(lambda s: WSGIAdapter(app, s), **{"shutdown_timeout": 2, **options})


@pytest.mark.parametrize("size", ["", "4099", "65536", "100000", "3145728"])
def test_a_long_body_is_read_whole_in_any_size_and_the_next_request_after_it(
        size: str, counted: list[int]) -> None:
    with serve() as (_, port), socket.create_connection(("127.0.0.1", port)) as s:
        # the next request follows the body in the same write: the thread, reading
        # from the socket, must leave it to the loop
        s.sendall(post(f"/sum?{size}", BIG) + b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        (status, _, body), (status2, _, body2) = answers(s, 2)
    assert status.startswith(b"HTTP/1.1 200") and body == expect(BIG)
    assert status2.startswith(b"HTTP/1.1 200") and body2 == b"/after"
    assert counted == [1]


def test_lines_read_from_the_socket() -> None:
    with serve() as (_, port), socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(post("/lines", LINES))
        [(status, _, body)] = answers(s, 1)
    assert status.startswith(b"HTTP/1.1 200")
    assert body == f"6000 {hashlib.sha256(LINES).hexdigest()}".encode()


def test_a_body_left_unread_is_dropped_and_the_connection_goes_on(counted: list[int]) -> None:
    with serve() as (_, port), socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(post("/some", BIG) + b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        (_, _, body), (_, _, body2) = answers(s, 2)
        assert body == b"100000" and body2 == b"/after"
        s.sendall(post("/sum", b"small"))  # and the connection is still good
        [(_, _, body3)] = answers(s, 1)
    assert body3 == expect(b"small") and counted == [1]


def test_100_continue_then_a_long_body(counted: list[int]) -> None:
    with serve() as (_, port), socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(post("/sum?65536", b"", b"Expect: 100-continue\r\n").replace(
            b"Content-Length: 0", f"Content-Length: {len(BIG)}".encode()))
        s.settimeout(5)
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(BIG)
        [(status, _, body)] = answers(s, 1)
    assert status.startswith(b"HTTP/1.1 200") and body == expect(BIG) and counted == [1]


def stall(port: int) -> socket.socket:
    """A connection that sent a part of a long body and stops, once the
    application's read of the rest waits."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(post("/stall", BIG)[:300_000])
    assert reading.wait(5), "the application never read"
    return s


def closes_within(s: socket.socket, seconds: float) -> bytes:
    """What the server sends on `s` until it closes it, which must be within
    `seconds`."""
    deadline = time.monotonic() + seconds
    got = b""
    while True:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = s.recv(1 << 16)
        except TimeoutError:
            raise AssertionError(f"not closed within {seconds} s: {got[:200]!r}") from None
        if not data:
            return got
        got += data


def assert_served(port: int, seconds: float) -> None:
    """A request on a new connection is answered within `seconds`: a thread is free."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /free HTTP/1.1\r\nHost: t\r\n\r\n")
        [(_, _, body)] = answers(s, 1, timeout=seconds)
    assert body == b"/free"


def wait_for_failure() -> None:
    """Until the application's read fails (at most 5 s)."""
    deadline = time.monotonic() + 5
    while not failures and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_body_that_stops_after_the_hand_over_is_408_and_the_thread_freed() -> None:
    with serve(request_timeout=0.5, thread_pool_size=1) as (_, port):
        start = time.monotonic()
        with stall(port) as s:
            answer = closes_within(s, 5)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
        assert time.monotonic() - start < 3
        assert_served(port, 3)


def test_a_trickle_after_the_hand_over_is_408_at_body_min_rate() -> None:
    with serve(request_timeout=1.0, body_min_rate=1 << 20) as (_, port), \
            socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(post("/sum?1000", BIG)[:200_000])
        start = time.monotonic()
        answer = b""
        s.settimeout(0.25)
        while time.monotonic() - start < 10 and not answer:
            try:
                s.sendall(b"x" * 10)  # 40 bytes/s, far below body_min_rate
                answer = s.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                break
            if not answer:
                break  # (closed unanswered)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
        # the grace: request_timeout plus what the bytes received earned at the rate
        assert time.monotonic() - start < 1.0 + 200_000 / (1 << 20) + 2


def test_a_client_gone_mid_body_ends_the_read_and_leaks_no_descriptor() -> None:
    fds = len(os.listdir("/proc/self/fd"))
    with serve(thread_pool_size=1) as (_, port):
        with stall(port):
            pass  # closed: the thread's read sees the end
        wait_for_failure()
        # (the client ended its side: the application is told as a 400, which no
        # one reads here)
        assert failures and getattr(failures[0], "code", None) == 400, failures
        assert_served(port, 3)
    deadline = time.monotonic() + 5
    while len(os.listdir("/proc/self/fd")) > fds and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(os.listdir("/proc/self/fd")) <= fds


def test_app_handler_timeout_cuts_a_read_in_progress() -> None:
    """The handler's clock ends a thread waiting for a client that stopped, long
    before request_timeout would: the read ends, the connection closes."""
    with serve(request_timeout=30, app_handler_timeout=0.5, thread_pool_size=1) as (_, port):
        start = time.monotonic()
        with stall(port) as s:
            closes_within(s, 5)
        wait_for_failure()
        assert failures, "the thread's read went on"
        assert time.monotonic() - start < 5
        assert_served(port, 3)


def test_stopping_ends_a_read_in_progress() -> None:
    start = time.monotonic()
    with serve(request_timeout=30, shutdown_timeout=1) as (_, port):
        s = stall(port)
    try:
        assert time.monotonic() - start < 5  # the worker stopped: its read ended
        wait_for_failure()
        assert failures, "the thread's read went on"
    finally:
        s.close()


def chunked(data: bytes, piece: int = 50_000) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + piece]), data[i:i + piece])
                    for i in range(0, len(data), piece)) + b"0\r\n\r\n"


@pytest.mark.parametrize("how", ["chunked", "upload_rate"])
def test_bodies_the_loop_reads_for_the_thread(how: str, counted: list[int]) -> None:
    options = {"upload_rate": 20 << 20} if how == "upload_rate" else {}
    with serve(**options) as (_, port), socket.create_connection(("127.0.0.1", port)) as s:
        if how == "chunked":
            s.sendall(b"POST /sum?65536 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                      b"\r\n" + chunked(BIG))
        else:
            s.sendall(post("/sum?65536", BIG))
        [(status, _, body)] = answers(s, 1)
    assert status.startswith(b"HTTP/1.1 200") and body == expect(BIG)
    assert counted == []


@pytest.mark.parametrize("how", ["length", "chunked"])
def test_a_client_ending_its_side_mid_body_is_answered_400_at_once(how: str) -> None:
    """Not the application's 500, and at once: the loop's way used to leave the
    thread waiting for the body until app_close_timeout."""
    with serve(thread_pool_size=1) as (_, port), \
            socket.create_connection(("127.0.0.1", port)) as s:
        if how == "length":
            s.sendall(post("/stall", BIG)[:300_000])
        else:
            s.sendall(b"POST /stall HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                      b"\r\n" + chunked(BIG)[:300_000])
        assert reading.wait(5), "the application never read"
        s.shutdown(socket.SHUT_WR)
        answer = closes_within(s, 3)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
        assert b"client closed before the body ended" in answer
        assert_served(port, 2)  # the thread is free


def test_100_continue_with_nothing_read_ahead(counted: list[int]) -> None:
    with serve(wsgi_input_buffer=0) as (_, port), \
            socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /sum?65536 HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(BIG))
        s.settimeout(3)
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(BIG)
        [(status, _, body)] = answers(s, 1)
    assert status.startswith(b"HTTP/1.1 200") and body == expect(BIG) and counted == [1]


def test_a_body_behind_a_connection_already_lost_is_not_lent(
        counted: list[int], caplog: pytest.LogCaptureFixture) -> None:
    """A long body queued behind a request whose connection is reset before its
    answer: the handler starts on a connection already gone, and lends nothing (it
    once tried a descriptor of a closed socket: an ERROR and a traceback)."""
    import struct
    with serve() as (_, port):
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /sleep HTTP/1.1\r\nHost: t\r\n\r\n" + post("/sum", BIG)[:200_000])
            time.sleep(0.1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        time.sleep(0.6)  # (the sleeps end, the answers fail, the bodies' handlers run)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    assert counted == []


def test_out_of_descriptors_the_loop_reads_for_the_thread(
        counted: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    def no_more(fd: int) -> int:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr("tremolo.protocols.lending.os.dup", no_more)
    with serve() as (_, port), socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(post("/sum?65536", BIG))
        [(status, _, body)] = answers(s, 1)
    assert status.startswith(b"HTTP/1.1 200") and body == expect(BIG) and counted == []


def test_a_reader_the_application_left_behind_ends_the_connection() -> None:
    """An application that hands wsgi.input to a thread of its own and answers while
    that thread still reads: the connection is not read by two at once (each could
    take a part of what follows); it ends with this request."""
    left: list[BaseException] = []

    def handing_over(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        stream.read(100_000)

        def read_on() -> None:
            try:
                stream.read()
            except BaseException as exc:
                left.append(exc)

        threading.Thread(target=read_on, daemon=True).start()
        time.sleep(0.2)  # (it waits for the rest, which does not come yet)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with serve_in_thread(lambda st: WSGIAdapter(handing_over, st), shutdown_timeout=2) \
            as (_, port), socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(post("/", BIG)[:300_000])
        [(_, fields, body)] = answers(s, 1)
        assert body == b"ok" and fields[b"connection"] == b"close"
        closes_within(s, 3)
        deadline = time.monotonic() + 3
        while not left and time.monotonic() < deadline:
            time.sleep(0.01)
        assert left, "the application's reader was not stopped"
