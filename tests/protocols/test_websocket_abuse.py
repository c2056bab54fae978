"""Hostile WebSocket clients: each gets its close code, or is dropped on time, and
others are still served."""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Iterator

import pytest
from websockets.sync.client import connect

from tremolo import Tremolo, _core
from tremolo.asgi import ASGIAdapter
from tremolo.testing import serve_in_thread

from ..wsclient import RawWS

native = Tremolo()


@native.route("/")
async def echo(websocket=None, **server):
    async for message in websocket:
        await websocket.send(message)


@native.route("/flood")
async def flood(websocket=None, **server):
    await websocket.accept()
    while True:
        await websocket.send(b"x" * 65536)


async def asgi_echo(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while (msg := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": msg.get("text"),
                    "bytes": msg.get("bytes")})


OPTIONS = {"ws_max_payload_size": 64 << 10, "ws_ping_interval": 0.5, "ws_ping_timeout": 0.5,
           "request_timeout": 2, "ws_close_timeout": 1}


@pytest.fixture(scope="module", params=["native", "asgi"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    target = native if request.param == "native" else \
        (lambda state: ASGIAdapter(asgi_echo, state))
    with serve_in_thread(target, **OPTIONS) as (_, port):
        yield port


def still_serves(port: int) -> None:
    with connect(f"ws://127.0.0.1:{port}/") as ws:
        ws.send("alive?")
        assert ws.recv(timeout=5) == "alive?"


def test_unmasked_frame_is_1002(port: int) -> None:
    with RawWS(port) as ws:
        ws.send("no mask", mask=False)
        assert ws.recv_close() == 1002
        assert ws.closed_by_server()
    still_serves(port)


def test_the_servers_close_frames_carry_the_code_alone(port: int) -> None:
    """As the original Tremolo's do (its users' tests compare the frames): the reason
    goes to the log and to the application."""
    with RawWS(port) as ws:
        ws.send("no mask", mask=False)
        assert ws.recv_frame() == (True, 8, b"\x03\xea")
    with RawWS(port) as ws:
        ws.send(b"x" * ((64 << 10) + 1))
        assert ws.recv_frame() == (True, 8, b"\x03\xf1")


def test_a_client_still_sending_after_a_protocol_error_gets_the_close(port: int) -> None:
    """The server ends its side and reads on: closing with the client's data unread
    would make the kernel reset the connection and drop the close frame."""
    with RawWS(port) as ws:
        ws.send(b"Hello, World", fin=False, mask=False)
        for _ in range(4):  # the client goes on sending while the server fails it
            ws.send_raw(_core.ws_frame(b"!" * 65536, 0, False, None))
            time.sleep(0.02)
        assert ws.recv_frame() == (True, 8, b"\x03\xea")
        assert ws.closed_by_server()


def test_oversized_frame_is_1009_before_its_payload(port: int) -> None:
    with RawWS(port) as ws:
        # a header announcing 1 GiB; no payload follows
        ws.send_raw(b"\x82\xff" + (1 << 30).to_bytes(8, "big") + os.urandom(4))
        assert ws.recv_close() == 1009
        assert ws.closed_by_server()


def test_oversized_message_in_small_fragments_is_1009(port: int) -> None:
    with RawWS(port) as ws:
        ws.send(b"a" * 40000, fin=False)
        ws.send(b"a" * 40000, opcode=0)
        assert ws.recv_close() == 1009


def test_deflate_bomb_is_1009(port: int) -> None:
    with RawWS(port, headers=[("Sec-WebSocket-Extensions", "permessage-deflate")]) as ws:
        assert ws.headers[b"sec-websocket-extensions"].startswith(b"permessage-deflate")
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = z.compress(b"\0" * (64 << 20)) + z.flush(zlib.Z_SYNC_FLUSH)
        bomb = bomb[:-4]
        assert len(bomb) < 128 << 10  # 64 MiB in about 64 KiB
        frame = bytearray(_core.ws_frame(bomb, 2, True, os.urandom(4)))
        frame[0] |= 0x40  # RSV1: compressed
        t0 = time.monotonic()
        ws.send_raw(bytes(frame))
        assert ws.recv_close() == 1009
        assert time.monotonic() - t0 < 2


def test_invalid_utf8_split_across_fragments_fails_fast(port: int) -> None:
    with RawWS(port) as ws:
        ws.send("κόσμε".encode() + b"\xce", opcode=1, fin=False)
        ws.send(b"\xba\xed\xa0\x80", opcode=0, fin=False)  # a surrogate: never valid
        # the error comes without the message's end
        assert ws.recv_close(timeout=2) == 1007


@pytest.mark.slow
def test_client_that_never_answers_pings_is_closed(port: int) -> None:
    with RawWS(port) as ws:
        t0 = time.monotonic()
        ping = ws.recv_frame(timeout=3)
        assert ping is not None and ping[1] == 9  # pinged after 0.5 s of silence
        # and closed 0.5 s later with 1000, as the original closes on a receive timeout
        assert ws.recv_frame(timeout=3) == (True, 8, b"\x03\xe8")
        assert ws.closed_by_server(timeout=3)
        assert time.monotonic() - t0 < 3


@pytest.mark.slow
def test_answering_pings_keeps_the_connection(port: int) -> None:
    with RawWS(port) as ws:
        for _ in range(3):
            ping = ws.recv_frame(timeout=3)
            assert ping is not None and ping[1] == 9
            ws.send(ping[2], opcode=10)
        ws.send("still here")
        while (frame := ws.recv_frame(timeout=3)) is not None and frame[1] == 9:
            ws.send(frame[2], opcode=10)
        assert frame == (True, 1, b"still here")


@pytest.mark.slow
def test_client_that_never_reads_is_dropped() -> None:
    with serve_in_thread(native, **OPTIONS) as (_, port), RawWS(port, "/flood") as ws:
        time.sleep(3)  # never reading: the server's writes wait, then it drops us
        # what is left is what the kernel had buffered before the drop: it ends
        deadline = time.monotonic() + 10
        drained, eof = 0, False
        ws.sock.settimeout(1)
        while not eof and time.monotonic() < deadline:
            try:
                chunk = ws.sock.recv(1 << 20)
            except TimeoutError:
                break
            except ConnectionResetError:
                chunk = b""
            eof = not chunk
            drained += len(chunk)
        assert eof, "the server kept the connection of a client that never reads"
        # (the kernels' socket buffers hold a few MiB; the server's own is 64 KiB)
        assert drained < 48 << 20, "the server buffered without bound"


def test_messages_before_a_close_are_answered_first(port: int) -> None:
    """A strict endpoint finishes with what came before the client's close (or before
    a protocol error) and only then closes."""
    with RawWS(port) as ws:
        ws.send_raw(_core.ws_frame("one", 1, True, b"abcd") + _core.ws_frame("two", 1, True,
                                                                            b"efgh")
                    + _core.ws_frame(b"\x03\xe8", 8, True, b"ijkl"))
        assert ws.recv_frame() == (True, 1, b"one")
        assert ws.recv_frame() == (True, 1, b"two")
        assert ws.recv_frame() == (True, 8, b"\x03\xe8")
        assert ws.closed_by_server()
    with RawWS(port) as ws:
        ws.send_raw(_core.ws_frame("fine", 1, True, b"abcd") + _core.ws_frame(b"x", 3, True,
                                                                             b"efgh"))
        assert ws.recv_frame() == (True, 1, b"fine")
        assert ws.recv_close() == 1002


def test_fragments_with_a_ping_between_are_one_message(port: int) -> None:
    with RawWS(port) as ws:
        ws.send("frag", fin=False)
        ws.send(b"between", opcode=9)
        ws.send("mented", opcode=0)
        assert ws.recv_frame() == (True, 10, b"between")
        assert ws.recv_frame() == (True, 1, b"fragmented")
