"""Speed limits, measured: download_rate, a route's rate, upload_rate."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tremolo import Tremolo
from tremolo.testing import serve_in_thread

MiB = 1 << 20
app = Tremolo()


@app.route("/returned")
async def returned() -> bytes:
    return b"r" * (3 * MiB)


@app.route("/yielded")
async def yielded() -> Any:
    for _ in range(6):
        yield b"y" * (MiB // 2)


@app.route("/fast")
async def fast(rate: int = 4 * MiB) -> bytes:
    return b"f" * (4 * MiB)


@app.route("/upload")
async def upload(request: Any) -> bytes:
    size = 0
    async for piece in request.stream():
        size += len(piece)
    return str(size).encode()


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve_in_thread(app, download_rate=MiB, upload_rate=MiB, shutdown_timeout=2,
                         client_max_body_size=8 * MiB) as (_, p):
        yield p


def timed_get(port: int, path: str) -> tuple[int, float]:
    start = time.monotonic()
    r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=30)
    return len(r.content), time.monotonic() - start


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/returned", "/yielded"])
def test_download_rate(port: int, path: str) -> None:
    size, elapsed = timed_get(port, path)
    assert size == 3 * MiB
    rate = size / elapsed
    assert 0.8 * MiB <= rate <= 1.2 * MiB, f"{rate / MiB:.2f} MiB/s"


def test_route_rate_overrides_download_rate(port: int) -> None:
    size, elapsed = timed_get(port, "/fast")
    rate = size / elapsed
    assert 3.2 * MiB <= rate <= 4.8 * MiB, f"{rate / MiB:.2f} MiB/s"


@pytest.mark.slow
def test_upload_rate_pauses_reading(port: int) -> None:
    body = b"u" * (3 * MiB)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        start = time.monotonic()
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n" % len(body) + body)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        elapsed = time.monotonic() - start
    assert out.endswith(b"\r\n\r\n3145728")
    rate = len(body) / elapsed
    assert 0.8 * MiB <= rate <= 1.2 * MiB, f"{rate / MiB:.2f} MiB/s"


def test_body_limits_end_to_end() -> None:
    with serve_in_thread(app, client_max_body_size=100_000, shutdown_timeout=2) as (_, p):
        # declared too large: refused before any body is read
        with socket.create_connection(("127.0.0.1", p), timeout=5) as s:
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100001\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 413 ")
        # chunked: stopped with 413 where it passes the limit
        with socket.create_connection(("127.0.0.1", p), timeout=5) as s:
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            out = b""
            try:
                for _ in range(20):
                    s.sendall(b"2710\r\n" + b"c" * 10000 + b"\r\n")  # 10000 bytes each
                    time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                pass
            s.settimeout(5)
            try:
                while chunk := s.recv(65536):
                    out += chunk
            except ConnectionResetError:
                pass
        assert out.startswith(b"HTTP/1.1 413 ")
