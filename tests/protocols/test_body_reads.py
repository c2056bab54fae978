"""A long request body is read from the socket in pieces of at most
max(buffer_size, 64 KiB) (protocols/bodyreads.py), over TCP and TLS, on uvloop and on
asyncio's loop; once that body is over the connection reads as before; the body
waiting for a handler that does not read is bounded; and a handler that stops
reading leaves no timer behind."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tremolo import Tremolo
from tremolo.protocols.bodyreads import MIN_PIECE
from tremolo.testing import serve_in_thread

from ..helpers import eventually, split_responses

MiB = 1 << 20
BODY = bytes(range(256)) * (3 * MiB // 256)

app = Tremolo()
#: the exchanges /first saw, for the test of its timer
exchanges: list[Any] = []


@app.route("/pieces")
async def pieces(request: Any, **server: Any) -> bytes:
    sizes, data = [], bytearray()
    async for piece in request.stream():
        sizes.append(len(piece))
        data += piece
    return json.dumps({"sizes": sizes, "same": bytes(data) == BODY}).encode()


@app.route("/reads-with")
async def reads_with(request: Any, **server: Any) -> bytes:
    transport = request.exchange.protocol.transport
    return type(transport.get_protocol()).__name__.encode()


@app.route("/plain")
async def plain(**server: Any) -> bytes:
    return b"ok"


@app.route("/waits")
async def waits(request: Any, **server: Any) -> bytes:
    """Reads nothing for a while: what then waits in memory is what reading let in."""
    await asyncio.sleep(0.5)
    queued = request.exchange._body_size
    size = sum([len(piece) async for piece in request.stream()])
    return json.dumps({"queued": queued, "size": size}).encode()


@app.route("/first")
async def first(request: Any, **server: Any) -> bytes:
    exchanges.append(request.exchange)
    await request.recv()  # waited for: the body's timer runs
    return b"enough"  # and the rest is never asked for


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["tcp", "tls"])
def served(request: pytest.FixtureRequest, loop_name: str,
           pki: dict[str, Path]) -> Iterator[tuple[str, httpx.Client]]:
    options: dict[str, Any] = {"loop": loop_name, "client_max_body_size": 64 * MiB,
                               "buffer_size": 65536, "shutdown_timeout": 2}
    verify: Any = False
    scheme = "http"
    if request.param == "tls":
        options["ssl"] = {"cert": str(pki["server"]), "key": str(pki["server_key"])}
        verify = ssl.create_default_context(cafile=str(pki["ca"]))
        scheme = "https"
    with serve_in_thread(app, **options) as (_, port), \
            httpx.Client(verify=verify, timeout=10) as client:
        yield f"{scheme}://127.0.0.1:{port}", client


def chunks() -> Iterator[bytes]:
    for at in range(0, len(BODY), 300_000):
        yield BODY[at:at + 300_000]


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_long_body_comes_in_bounded_pieces(served: tuple[str, httpx.Client],
                                             framing: str) -> None:
    base, client = served
    content = BODY if framing == "length" else chunks()
    r = client.post(f"{base}/pieces", content=content)
    seen = r.json()
    assert r.status_code == 200 and seen["same"]
    # the first piece may have come in the read that brought the head
    rest = seen["sizes"][1:]
    assert max(rest) <= 65536, max(rest)
    assert len(seen["sizes"]) >= len(BODY) // 65536
    # the body over, the connection reads as it did before it
    assert client.get(f"{base}/reads-with").text == "HTTPProtocol"


def test_a_short_body_is_read_as_before(served: tuple[str, httpx.Client]) -> None:
    base, client = served
    r = client.post(f"{base}/reads-with", content=b"x" * 1000)
    assert r.text == "HTTPProtocol"


def test_pieces_are_at_least_64_kib_whatever_buffer_size_says() -> None:
    with serve_in_thread(app, client_max_body_size=64 * MiB, buffer_size=4096,
                         shutdown_timeout=2) as (_, port):
        seen = httpx.post(f"http://127.0.0.1:{port}/pieces", content=BODY,
                          timeout=10).json()
    assert seen["same"] and max(seen["sizes"][1:]) <= MIN_PIECE
    # fewer, larger pieces than 4 KiB ones: reads of 64 KiB were taken
    assert len(seen["sizes"]) < len(BODY) // 4096


def test_a_request_pipelined_behind_a_long_body_is_answered(loop_name: str) -> None:
    with serve_in_thread(app, loop=loop_name, client_max_body_size=64 * MiB,
                         shutdown_timeout=2) as (_, port), \
            socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /pieces HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                     % len(BODY) + BODY + b"GET /plain HTTP/1.1\r\nHost: t\r\n"
                     b"Connection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    (_, _, first), (_, _, second) = split_responses(data)
    assert json.loads(first)["same"] and second == b"ok"


@pytest.mark.parametrize("buffer_size, bound", [
    # reading pauses once more than min(4 x buffer_size, a piece) waits: with the
    # reads of 64 KiB, two pieces at most
    (65536, 2 * 65536),
    (16384, 2 * 65536),
])
def test_the_body_waiting_for_a_handler_is_bounded(buffer_size: int, bound: int) -> None:
    with serve_in_thread(app, client_max_body_size=64 * MiB, buffer_size=buffer_size,
                         shutdown_timeout=2) as (_, port):
        seen = httpx.post(f"http://127.0.0.1:{port}/waits", content=BODY,
                          timeout=10).json()
    assert seen["size"] == len(BODY)
    # (the first read, with the head, may bring up to 256 KiB more)
    assert 0 < seen["queued"] <= bound + 256 * 1024, seen


def test_a_handler_that_stops_reading_leaves_no_timer() -> None:
    exchanges.clear()
    with serve_in_thread(app, client_max_body_size=64 * MiB, shutdown_timeout=2) \
            as (_, port), socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # the body is announced; a piece of it comes while the handler waits for it,
        # and the rest never does
        sock.sendall(b"POST /first HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n"
                     b"\r\n")
        eventually(lambda: exchanges and exchanges[0]._waiter is not None,
                   "the wait for the body", timeout=5)
        (ex,) = exchanges
        assert ex._clock is not None
        sock.sendall(b"x" * 100_000)
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"enough")
        # its wait for the body is over with the handler: no timer holds the request
        # for request_timeout
        eventually(lambda: ex._clock is None, "the timer's end", timeout=5)
