"""The clocks: request_timeout, keepalive_timeout, keepalive_connections,
app_handler_timeout, and slow or hostile clients."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tremolo import Tremolo
from tremolo.testing import serve_in_thread

from ..helpers import exchange

app = Tremolo()


@app.route("/hello")
async def hello() -> bytes:
    return b"hello"


@app.route("/slow")
async def slow() -> bytes:
    await asyncio.sleep(30)
    return b"never"


@app.route("/slow-stream")
async def slow_stream() -> Any:
    yield b"first"
    await asyncio.sleep(30)
    yield b"never"


@app.route("/upload")
async def upload(request: Any) -> bytes:
    return await request.body()


@app.route("/huge")
async def huge() -> Any:
    chunk = b"x" * (1 << 20)
    for _ in range(50):
        yield chunk


OPTIONS = {"request_timeout": 1.0, "keepalive_timeout": 1.0, "app_handler_timeout": 2.0,
           "keepalive_connections": 3, "shutdown_timeout": 2}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, Any]]:
    with serve_in_thread(app, **OPTIONS) as (_, port):
        yield port, None


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Reads until the server closes (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return True, data
        if not chunk:
            return True, data
        data += chunk
    return False, data


def test_slowloris_is_answered_408_on_time(server: tuple[int, Any]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        start = time.monotonic()
        head = b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 50
        for byte in head:
            try:
                s.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break  # answered and closed while we were still trickling
            # a normal client is served promptly meanwhile
            if byte == ord("a"):
                t0 = time.monotonic()
                assert httpx.get(f"http://127.0.0.1:{port}/hello", timeout=2).content == b"hello"
                assert time.monotonic() - t0 < 0.5
            time.sleep(0.05)
            if time.monotonic() - start > 3:
                break
        closed, data = closed_within(s, 3)
    elapsed = time.monotonic() - start
    assert closed and data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert data.endswith(b"\r\n\r\nrequest timeout after 1s")  # the original's words
    assert elapsed < 1.0 + 1.0 + 0.5  # the deadline plus a sweep, not reset per byte


def test_silent_connection_is_closed(server: tuple[int, Any]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        closed, data = closed_within(s, 3)
    assert closed and data == b""


def test_idle_keep_alive_is_closed(server: tuple[int, Any]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        start = time.monotonic()  # the response follows at once: idle from here
        time.sleep(0.2)
        assert s.recv(65536).endswith(b"hello")
        closed, data = closed_within(s, 3)
    assert closed and data == b""
    # keepalive_timeout (1 s), plus at most one sweep (0.25 s) and some slack
    assert 1.0 <= time.monotonic() - start < 2.0


def test_oldest_idle_keep_alive_connection_is_dropped(server: tuple[int, Any]) -> None:
    port, _ = server
    socks = []
    try:
        for _ in range(4):  # the limit is 3
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            assert s.recv(65536).endswith(b"hello")
            socks.append(s)
            time.sleep(0.05)
        closed, _ = closed_within(socks[0], 0.5)
        assert closed, "the oldest idle connection should be closed"
        for s in socks[1:]:
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            assert s.recv(65536).endswith(b"hello")
    finally:
        for s in socks:
            s.close()


@pytest.mark.slow
def test_slow_handler_is_cancelled(server: tuple[int, Any]) -> None:
    port, _ = server
    start = time.monotonic()
    out = exchange(port, b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n", timeout=5)
    assert out.startswith(b"HTTP/1.1 500 ") and 1.9 < time.monotonic() - start < 4
    out = exchange(port, b"GET /slow-stream HTTP/1.1\r\nHost: t\r\n\r\n", timeout=5)
    assert b"5\r\nfirst\r\n" in out and not out.endswith(b"0\r\n\r\n")  # cut, then closed


def test_slow_post_is_answered_408(server: tuple[int, Any]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab")
        closed, data = closed_within(s, 4)
    assert closed and data.startswith(b"HTTP/1.1 408 ")


@pytest.mark.slow
def test_client_that_never_reads_costs_bounded_memory(server: tuple[int, Any]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"GET /huge HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(2.5)  # past request_timeout: the server gave up on this client
        # the server wrote far less than 50 MiB and then dropped us
        got = 0
        s.settimeout(3)
        try:
            while chunk := s.recv(1 << 20):
                got += len(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    assert got < 20 * (1 << 20)
    assert httpx.get(f"http://127.0.0.1:{port}/hello", timeout=2).content == b"hello"


cancelled: list[bool] = []


@app.route("/abandoned")
async def abandoned() -> bytes:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        cancelled.append(True)
        raise
    return b"never"


def test_handler_of_a_gone_client_is_cancelled_after_app_close_timeout() -> None:
    with serve_in_thread(app, app_close_timeout=0.5, shutdown_timeout=2) as (_, port):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /abandoned HTTP/1.1\r\nHost: t\r\n\r\n")
            time.sleep(0.2)
        start = time.monotonic()
        while not cancelled and time.monotonic() - start < 3:
            time.sleep(0.05)
        assert cancelled and 0.3 < time.monotonic() - start < 1.5
