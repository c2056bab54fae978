"""Protocol-level micro-benchmark: the cost of one keep-alive request through
HTTPProtocol and the native or the ASGI app, with a fake transport (no sockets, no
kernel). An ASGI request may need loop iterations: they are counted in its cost.

    python3 bench/micro.py [--app native|asgi|protocol] [--requests 200000] [--profile]
                           [--metrics]   (counting for --metrics on)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from apps.asgi_hello import app as asgi_app
from apps.tremolo_hello import app

from tremolo.asgi import ASGIAdapter
from tremolo.config import Options
from tremolo.protocols import Adapter, Exchange, FunctionAdapter, HTTPProtocol, ServerState
from tremolo.protocols.counters import Counters

REQUEST = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\n\r\n"


class Sink(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def write(self, data: object) -> None:
        self.n += 1

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0  # everything is written at once

    def close(self) -> None:
        raise AssertionError("closed")


async def run(n: int, kind: str, profile: bool, metrics: bool = False) -> None:
    state = ServerState(Options(), asyncio.get_running_loop())
    if metrics:
        state.counters = Counters(kind)
    adapter: Adapter
    if kind == "native":
        adapter = app.make_adapter(state)
    elif kind == "asgi":
        adapter = ASGIAdapter(asgi_app, state)
    else:  # the protocol alone: what every adapter costs at least
        async def handle(ex: Exchange) -> None:
            ex.respond(200, [(b"Content-Type", b"text/plain")], b"Hello world!")

        adapter = FunctionAdapter(handle)
    await adapter.startup()
    proto = HTTPProtocol(state, adapter)
    sink = Sink()
    proto.connection_made(sink)
    feed = proto.data_received

    loop = asyncio.get_running_loop()

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
                feed(REQUEST)
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--app", choices=["native", "asgi", "protocol"], default="native")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--metrics", action="store_true")
    args = ap.parse_args()
    import uvloop
    uvloop.run(run(args.requests, args.app, args.profile, args.metrics))


if __name__ == "__main__":
    main()
