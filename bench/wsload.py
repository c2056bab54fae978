"""A WebSocket echo load generator: N connections, each sends a binary message and
waits for its echo, again and again, for D seconds; prints messages/s, the round trip's
p50 and p99, and the client's own CPU time over that window as a fraction of one core.

    python3 bench/wsload.py PORT [--connections 64] [--size 32] [--duration 10]
                                 [--processes 1]

Each connection's frame is masked once and sent as the same bytes every time (a
server cannot tell), so the client's cost per message is one write, one clock read and
counting the echo's bytes. If the CPU it prints nears 1.0 the client is the limit:
--processes P splits the connections over P processes (their CPU is added up), which
helps only where they have more than one core between them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import time
from array import array
from typing import Any

import uvloop


def frame(payload: bytes) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x82, 0x80 | n])
    elif n < 65536:
        head = bytes([0x82, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x82, 0x80 | 127]) + n.to_bytes(8, "big")
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def echo_size(n: int) -> int:
    return n + (2 if n < 126 else 4 if n < 65536 else 10)


class Client(asyncio.Protocol):
    def __init__(self, message: bytes, expect: int, ready: asyncio.Future[None]) -> None:
        self.message, self.expect, self.ready = message, expect, ready
        self.handshake = True
        self.got = 0
        self.sent = 0
        self.rtts = array("q")  # each echo's round trip, ns
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.running = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"  # type: ignore[attr-defined]
                         "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                         f"Sec-WebSocket-Key: {key}\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        if self.handshake:
            self.buf += data
            if b"\r\n\r\n" not in self.buf:
                return
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(head.decode(errors="replace")))
                return
            self.handshake = False
            self.ready.set_result(None)
            data = rest
        self.got += len(data)
        while self.got >= self.expect:  # one message is in flight: this loop runs once
            self.got -= self.expect
            now = time.perf_counter_ns()
            self.rtts.append(now - self.sent)
            if self.running:
                assert self.transport is not None
                self.sent = now
                self.transport.write(self.message)

    def start(self) -> None:
        assert self.transport is not None
        self.sent = time.perf_counter_ns()
        self.transport.write(self.message)


async def load(port: int, connections: int, size: int, duration: float,
               barrier: Any = None) -> tuple[array[int], float, float]:
    """(every round trip in the window, the window's length, CPU over it / length)."""
    loop = asyncio.get_running_loop()
    message = frame(os.urandom(size))
    clients = []
    for _ in range(connections):
        ready = loop.create_future()
        _, c = await loop.create_connection(
            lambda r=ready: Client(message, echo_size(size), r), "127.0.0.1", port)
        clients.append(c)
        await asyncio.wait_for(ready, 10)
    if barrier is not None:  # every process starts its window together
        await loop.run_in_executor(None, barrier.wait)
    cpu0, t0 = time.process_time(), time.monotonic()
    for c in clients:
        c.start()
    await asyncio.sleep(duration)
    rtts = array("q")
    for c in clients:
        c.running = False
        rtts.extend(c.rtts)
    elapsed = time.monotonic() - t0
    cpu = (time.process_time() - cpu0) / elapsed
    for c in clients:
        if c.transport is not None:
            c.transport.close()
    return rtts, elapsed, cpu


def worker(args: argparse.Namespace, connections: int, barrier: Any, out: Any) -> None:
    rtts, elapsed, cpu = uvloop.run(load(args.port, connections, args.size, args.duration,
                                         barrier))
    out.put((rtts.tobytes(), elapsed, cpu))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--processes", type=int, default=1)
    args = ap.parse_args()
    if args.processes <= 1:
        rtts, elapsed, cpu = uvloop.run(load(args.port, args.connections, args.size,
                                             args.duration))
        rate = len(rtts) / elapsed
    else:
        ctx = multiprocessing.get_context("fork")
        barrier, out = ctx.Barrier(args.processes), ctx.Queue()
        shares = [args.connections // args.processes + (i < args.connections % args.processes)
                  for i in range(args.processes)]
        procs = [ctx.Process(target=worker, args=(args, n, barrier, out)) for n in shares]
        for p in procs:
            p.start()
        rtts, rate, cpu = array("q"), 0.0, 0.0
        for _ in procs:
            raw, elapsed, used = out.get(timeout=args.duration + 60)
            part = array("q")
            part.frombytes(raw)
            rtts.extend(part)
            rate += len(part) / elapsed
            cpu += used
        for p in procs:
            p.join(10)
    ordered = sorted(rtts)

    def pct(q: float) -> float:
        return ordered[int(q * (len(ordered) - 1))] / 1e6 if ordered else float("nan")

    print(f"{rate:.0f} messages/s, p50 {pct(0.5):.3f} ms, p99 {pct(0.99):.3f} ms, "
          f"cpu {cpu:.2f}")


if __name__ == "__main__":
    main()
