"""A WebSocket echo load generator: N connections, each sends a binary message and
waits for its echo, again and again, for D seconds; prints messages/s.

    python3 bench/wsload.py PORT [--connections 64] [--size 32] [--duration 10]

Each connection's frame is masked once and sent as the same bytes every time (a
server cannot tell), so the client's cost per message is one write and counting the
echo's bytes: it stays well under one core where the servers need more.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import time

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
        self.count = 0
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
        while self.got >= self.expect:
            self.got -= self.expect
            self.count += 1
            if self.running:
                assert self.transport is not None
                self.transport.write(self.message)

    def start(self) -> None:
        assert self.transport is not None
        self.transport.write(self.message)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--duration", type=float, default=10)
    args = ap.parse_args()
    loop = asyncio.get_running_loop()
    message = frame(os.urandom(args.size))
    clients = []
    for _ in range(args.connections):
        ready = loop.create_future()
        _, c = await loop.create_connection(
            lambda r=ready: Client(message, echo_size(args.size), r), "127.0.0.1", args.port)
        clients.append(c)
        await asyncio.wait_for(ready, 10)
    for c in clients:
        c.start()
    t0 = time.monotonic()
    await asyncio.sleep(args.duration)
    total = sum(c.count for c in clients)
    elapsed = time.monotonic() - t0
    for c in clients:
        c.running = False
        if c.transport is not None:
            c.transport.close()
    print(f"{total / elapsed:.0f} messages/s")


if __name__ == "__main__":
    uvloop.run(main())
