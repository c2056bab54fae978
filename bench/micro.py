"""Protocol-level micro-benchmark: the cost of one keep-alive request through
HTTPProtocol and the native or the ASGI app, with a fake transport (no sockets, no
kernel). An ASGI request may need loop iterations: they are counted in its cost.
`--app ws-native` / `ws-asgi`: one WebSocket echo of a 32-byte binary message (a
"request" is a message in and its echo out), after one handshake. `--app wsgi`: the
WSGI hello (bench/apps/wsgi_hello.py) on its thread pool, 64 connections each sending
a request in one loop turn, then the next 64 once all are answered (the way wrk -c64
loads it), so the hand-off's cost per batch is shared as it is under load.

    python3 bench/micro.py [--app native|asgi|protocol|ws-native|ws-asgi|wsgi]
                           [--requests 200000] [--profile]
                           [--metrics]   (counting for --metrics on)
                           [--access-log] (the default format, to /dev/null)
                           [--proxied]   (each request as nginx forwards it, from a
                                          trusted peer: X-Forwarded-For, -Proto, -Host)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from apps.asgi_hello import app as asgi_app
from apps.tremolo_hello import app
from apps.wsgi_hello import app as wsgi_app

from tremolo import Tremolo
from tremolo.asgi import ASGIAdapter
from tremolo.config import Options
from tremolo.protocols import Adapter, Exchange, FunctionAdapter, HTTPProtocol, ServerState
from tremolo.protocols.counters import Counters
from tremolo.wsgi import WSGIAdapter

REQUEST = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\n\r\n"
# what the documented nginx setup (docs/deployment.md) sends for a client's request
PROXIED = (b"GET /hello HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 203.0.113.9\r\n"
           b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n"
           b"User-Agent: wrk\r\n\r\n")
UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
# a masked binary frame of 32 bytes, as a client sends it
MESSAGE = bytes([0x82, 0x80 | 32]) + b"\x01\x02\x03\x04" + bytes(
    b ^ (1, 2, 3, 4)[i % 4] for i, b in enumerate(b"m" * 32))

ws_app = Tremolo()


@ws_app.route("/ws")
async def ws_echo(websocket: Any = None, **server: Any) -> bytes | None:
    if websocket is None:
        return b"not a WebSocket"
    async for message in websocket:
        await websocket.send(message)
    return None


async def ws_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            return


class Sink(asyncio.Transport):
    def __init__(self) -> None:
        # the addresses wrk's connections have in bench/run.py: a peer on 127.0.0.1,
        # which the default forwarded_allow_ips trusts as a proxy
        super().__init__({"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)})
        self.n = 0
        self.protocol: Any = None

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def write(self, data: object) -> None:
        self.n += 1

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0  # everything is written at once

    def close(self) -> None:
        raise AssertionError("closed")


async def run(n: int, kind: str, profile: bool, metrics: bool = False,
              proxied: bool = False, access_log: bool = False) -> None:
    if access_log:  # the server's own handler, writing to /dev/null
        from tremolo import logs

        logs.configure("INFO", "%(message)s", access_file="/dev/null")
    state = ServerState(Options(access_log=access_log), asyncio.get_running_loop())
    if metrics:
        state.counters = Counters(kind)
    if kind == "wsgi":
        await batches(n, state, request=PROXIED if proxied else REQUEST)
        return
    adapter: Adapter
    if kind == "native":
        adapter = app.make_adapter(state)
    elif kind == "asgi":
        adapter = ASGIAdapter(asgi_app, state)
    elif kind == "ws-native":
        adapter = ws_app.make_adapter(state)
    elif kind == "ws-asgi":
        adapter = ASGIAdapter(ws_asgi, state)
    else:  # the protocol alone: what every adapter costs at least
        async def handle(ex: Exchange) -> None:
            ex.respond(200, [(b"Content-Type", b"text/plain")], b"Hello world!")

        adapter = FunctionAdapter(handle)
    await adapter.startup()
    proto = HTTPProtocol(state, adapter)
    sink = Sink()
    proto.connection_made(sink)
    sink.protocol = proto
    feed = proto.data_received
    request = PROXIED if proxied else REQUEST
    loop = asyncio.get_running_loop()
    if kind.startswith("ws"):
        await messages(n, profile, sink, proto)
        return

    async def requests(count: int) -> None:
        # fed from a plain callback, as a socket read would be: a request answered
        # by a Task costs the Task and its loop iterations, nothing more
        finished = loop.create_future()
        left = count

        def step() -> None:
            nonlocal left
            if proto.current is None:
                if not left:
                    finished.set_result(None)
                    return
                left -= 1
                feed(request)
            loop.call_soon(step)

        step()
        await finished

    await requests(1000)
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    t0 = time.perf_counter()
    await requests(n)
    dt = time.perf_counter() - t0
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    assert sink.n == n + 1000
    print(f"{dt / n * 1e6:.2f} us per request ({n / dt:,.0f} requests/s on one core, no I/O)")


async def messages(n: int, profile: bool, sink: Sink, proto: HTTPProtocol) -> None:
    """WebSocket echoes: a message is fed once the echo of the one before is out."""
    loop = asyncio.get_running_loop()
    proto.data_received(UPGRADE)
    for _ in range(100):  # the handshake's answer, then the switch
        if sink.protocol is not proto:
            break
        await asyncio.sleep(0)
    ws = sink.protocol
    assert ws is not proto, "no WebSocket"

    async def echoes(count: int) -> None:
        finished = loop.create_future()
        left = count
        seen = sink.n

        def step() -> None:
            nonlocal left, seen
            if sink.n != seen or left == count:
                seen = sink.n
                if not left:
                    finished.set_result(None)
                    return
                left -= 1
                ws.data_received(MESSAGE)
            loop.call_soon(step)

        step()
        await finished

    await echoes(1000)
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    t0 = time.perf_counter()
    before = sink.n
    await echoes(n)
    dt = time.perf_counter() - t0
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    assert sink.n - before == n, (sink.n - before, n)
    print(f"{dt / n * 1e6:.2f} us per message ({n / dt:,.0f} echoes/s on one core, no I/O)")


async def batches(n: int, state: ServerState, request: bytes, width: int = 64) -> None:
    """WSGI requests in batches of `width` connections (see the module docs)."""
    loop = asyncio.get_running_loop()
    adapter = WSGIAdapter(wsgi_app, state)
    answered = 0
    done: asyncio.Future[None] | None = None

    class Counted(Sink):
        def write(self, data: object) -> None:
            nonlocal answered
            self.n += 1
            answered += 1
            if answered == width and done is not None:
                done.set_result(None)

    feeds = []
    for _ in range(width):
        proto = HTTPProtocol(state, adapter)
        sink = Counted()
        proto.connection_made(sink)
        sink.protocol = proto
        feeds.append(proto.data_received)

    def feed_all() -> None:  # from a plain callback, as socket reads would be
        for feed in feeds:
            feed(request)

    async def requests(count: int) -> None:
        nonlocal answered, done
        for _ in range(count // width):
            answered, done = 0, loop.create_future()
            loop.call_soon(feed_all)
            await done

    await requests(64 * 50)
    t0 = time.perf_counter()
    await requests(n)
    dt = time.perf_counter() - t0
    await adapter.shutdown()
    print(f"{dt / n * 1e6:.2f} us per request ({n / dt:,.0f} requests/s, batches of {width})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--app", choices=["native", "asgi", "protocol", "ws-native", "ws-asgi",
                                      "wsgi"],
                    default="native")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--metrics", action="store_true")
    ap.add_argument("--proxied", action="store_true")
    ap.add_argument("--access-log", action="store_true")
    args = ap.parse_args()
    import uvloop
    uvloop.run(run(args.requests, args.app, args.profile, args.metrics, args.proxied,
                   args.access_log))


if __name__ == "__main__":
    main()
