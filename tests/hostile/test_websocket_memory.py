"""permessage-deflate amplification (issue 17 §3): clients that send small compressed
messages which inflate to just under ws_max_payload_size each.

Eight connections each send ~80 KiB of such messages (about 40 of them, 2 KiB on the
wire, 2 MiB inflated), to a handler that reads them all or to one that reads none,
native and ASGI, on uvloop and on the asyncio loop. The worker inflates a message
only while its receive queue has room, so what the attack costs is bounded by the
queue (and one message) per connection, not by the compression ratio:

- RSS growth during the attack stays under ATTACK_CEILING (before the fix: +554 MiB
  with a handler that reads, +600 MiB with one that does not);
- once the clients have left (and the handlers ended), the fds come back exactly to
  the baseline, and RSS within AFTER_CEILING of it, after the attack and after a second
  one (before the fix: +52 MiB ten seconds after one attack, with a handler that
  reads).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tremolo import Tremolo, _core
from tremolo.testing import serve_in_thread

from ..wsclient import RawWS
from .server import PeakRSS, serve, wait_for

MIB = 1 << 20
KIB = 1 << 10
#: ws_max_payload_size's default: each message inflates to just under it
LIMIT = 2 * MIB
CONNECTIONS = 8
SENT_PER_CONNECTION = 80 * KIB
ATTACK_CEILING = 64 * MIB
#: what is in use goes back to the baseline; glibc's malloc keeps some of the freed
#: heap mapped for the next messages (once a 2 MiB block has been given back, it
#: serves blocks up to that size from its heap and trims the heap only past twice
#: that): 1 to 9 MiB was measured
AFTER_CEILING = 16 * MIB

NATIVE = """
import asyncio
from tremolo import Tremolo, _core

app = Tremolo()


@app.route("/")
async def ws(websocket=None, **server):
    await websocket.accept()
    if READ:
        count = 0
        while True:
            await websocket.receive()
            count += 1
            if count == MESSAGES:
                await websocket.send(f"got {count}")
    else:
        await asyncio.Event().wait()  # holds the connection, reads nothing
"""

ASGI = """
import asyncio


async def app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    if READ:
        count = 0
        while (await receive())["type"] == "websocket.receive":
            count += 1
            if count == MESSAGES:
                await send({"type": "websocket.send", "text": f"got {count}"})
    else:
        await asyncio.Event().wait()  # holds the connection, reads nothing
"""


def bomb(size: int = LIMIT - KIB, fill: int = 0) -> bytes:
    """One message's compressed payload (the sync flush's tail left out, RFC 7692):
    about 2 KiB that inflate to LIMIT - 1 KiB of `fill` bytes."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = z.compress(bytes([fill]) * size) + z.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def compressed_frame(payload: bytes) -> bytes:
    """A masked binary frame with RSV1 set (a compressed message)."""
    key = os.urandom(4)
    n = len(payload)
    head = bytes([0xC2, 0x80 | 126]) + n.to_bytes(2, "big") if n < 65536 \
        else bytes([0xC2, 0x80 | 127]) + n.to_bytes(8, "big")
    masked = int.from_bytes(payload, "big") ^ int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return head + key + masked.to_bytes(n, "big")


def attack_bytes() -> tuple[bytes, int]:
    frame = compressed_frame(bomb())
    count = SENT_PER_CONNECTION // len(frame)
    return frame * count, count


def handshake(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n").encode())
    head = b""
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in head:
        assert time.monotonic() < deadline, "no handshake answer"
        chunk = sock.recv(4096)
        assert chunk, f"closed during the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"permessage-deflate" in head.lower(), head
    return sock


def read_text_frame(sock: socket.socket, timeout: float) -> bytes:
    """The payload of the server's next (small, unfragmented) frame."""
    sock.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while len(buf) < 2 or len(buf) < 2 + (buf[1] & 0x7F):
        assert time.monotonic() < deadline, "no frame from the server"
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        buf += chunk
    return buf[2:2 + (buf[1] & 0x7F)]


@contextmanager
def attackers(port: int, data: bytes) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        socks = [stack.enter_context(handshake(port)) for _ in range(CONNECTIONS)]
        for s in socks:
            s.settimeout(10)  # the kernel's buffers take 80 KiB whether or not it reads
            s.sendall(data)
        yield socks


def warm_up(port: int) -> None:
    """One connection through the whole path first (imports, the inflater), so that
    the baseline is the server as it serves."""
    with handshake(port) as s:
        s.sendall(compressed_frame(bomb(16 * KIB)))
        time.sleep(0.3)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
@pytest.mark.parametrize("reads", [True, False], ids=["reading", "not-reading"])
@pytest.mark.parametrize("interface", ["native", "asgi"])
def test_deflate_bombs_cost_a_bounded_amount(tmp_path: Path, interface: str, reads: bool,
                                             loop: str) -> None:
    data, messages = attack_bytes()
    source = f"READ = {reads}\nMESSAGES = {messages}\n" + (NATIVE if interface == "native"
                                                          else ASGI)
    # reading pauses while the queue is full, so the server learns that a client of
    # a handler that reads nothing left when its ping goes unanswered; and such a
    # handler keeps its queue until it ends: app_close_timeout cancels it then
    clocks = ["--ws-ping-interval", "1", "--ws-ping-timeout", "1", "--app-close-timeout", "1"]
    with serve(tmp_path, source, "--loop", loop, *clocks) as server:
        warm_up(server.port)
        wait_for(lambda: server.sockets() == 0, "the warm-up connection closed")
        time.sleep(1.5)  # its handler cancelled too
        base_rss, base_fds = server.rss_kib(), server.fds()
        for attack in (1, 2):  # the second shows that what stays does not add up
            with PeakRSS(server) as rss, attackers(server.port, data) as socks:
                if reads:
                    for s in socks:
                        assert read_text_frame(s, 60) == f"got {messages}".encode()
                time.sleep(1.0)
            growth = (rss.peak - base_rss) * KIB
            print(f"{interface} reads={reads} {loop} attack {attack}: baseline "
                  f"{base_rss / KIB:.0f} MiB, +{growth / MIB:.1f} MiB during it")
            assert growth < ATTACK_CEILING, f"+{growth / MIB:.0f} MiB during the attack"
            wait_for(lambda: server.fds() == base_fds, "fds back to the baseline", 10)
            wait_for(lambda: (server.rss_kib() - base_rss) * KIB < AFTER_CEILING,
                     f"RSS back within {AFTER_CEILING // MIB} MiB of the baseline", 10)
            print(f"  after it: +{(server.rss_kib() - base_rss) / KIB:.1f} MiB")


# -- what the bound holds back is delivered, in order, whatever follows it -----------

delivered: list[bytes | str] = []
native = Tremolo()


@native.route("/collect")
async def collect(websocket=None, **server):  # type: ignore[no-untyped-def]
    await websocket.accept()
    while True:
        try:
            message = await websocket.receive()
        except Exception as exc:
            delivered.append(type(exc).__name__)
            return
        delivered.append(bytes(message[:1]) + str(len(message)).encode())
        await asyncio.sleep(0.01)  # a slow reader: the queue is full most of the time


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
@pytest.mark.parametrize("end", ["close", "eof"])
def test_messages_held_back_are_all_delivered_in_order(loop: str, end: str) -> None:
    """Ten messages of 1 MiB each (a few KiB compressed) sent with the handshake in
    one write, then a Close or the end of the stream: each is inflated only when the
    queue has room, and the handler gets all ten, in order, then the close."""
    delivered.clear()
    frames = b"".join(compressed_frame(bomb(MIB, fill=i)) for i in range(10))
    with serve_in_thread(native, loop=loop) as (_, port), \
            RawWS(port, "/collect", headers=[("Sec-WebSocket-Extensions", "permessage-deflate")],
                  early=frames + (_core.ws_frame(b"\x03\xe8", 8, True, b"abcd")
                                  if end == "close" else b"")) as ws:
        if end == "eof":
            ws.sock.shutdown(socket.SHUT_WR)
        wait_for(lambda: len(delivered) == 11, f"every message, then the close {delivered}", 15)
    assert delivered == [bytes([i]) + str(MIB).encode() for i in range(10)] \
        + ["WebSocketClientClosed"]


cancelled: list[float] = []


@native.route("/idle")
async def idle(websocket=None, **server):  # type: ignore[no-untyped-def]
    await websocket.accept()
    try:
        await asyncio.Event().wait()  # reads nothing, never ends by itself
    except asyncio.CancelledError:
        cancelled.append(time.monotonic())
        raise


def test_a_handler_that_does_not_read_is_cancelled_after_its_client_left() -> None:
    """A native handler that accepts in its first step (before the exchange knows its
    task) is still cancelled app_close_timeout after the connection is lost, so what
    it holds (its queue: up to one message plus the queue's bound) goes then."""
    cancelled.clear()
    with serve_in_thread(native, app_close_timeout=0.5) as (_, port):
        with RawWS(port, "/idle") as ws:
            ws.send(b"x" * 1000)
            time.sleep(0.2)
        left = time.monotonic()
        wait_for(lambda: bool(cancelled), "the handler cancelled", 5)
    assert cancelled[0] - left < 2
