"""Big transfers and many clients against a server in its own process, with its
memory watched: 100 MiB up and down, 1000 idle connections, a pipelined flood."""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..helpers import free_port, stop_process, wait_up

MiB = 1 << 20
SERVER = """
import asyncio, hashlib, os, resource, sys
from tremolo import Tremolo

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
app = Tremolo()
FILE = sys.argv[2]

@app.route('/upload')
async def upload(request, **server):
    digest, size = hashlib.sha256(), 0
    async for data in request.stream():
        digest.update(data)
        size += len(data)
    return f'{size} {digest.hexdigest()}'

@app.route('/slow-upload')
async def slow_upload(request, **server):
    size = 0
    async for data in request.stream():
        size += len(data)
        await asyncio.sleep(0.01)  # a handler slower than its clients
    return str(size)

@app.route('/download')
async def download(**server):
    chunk = b'd' * (1 << 20)
    for _ in range(100):
        yield chunk

@app.route('/file')
async def file(response, **server):
    await response.sendfile(FILE)

@app.route('/hello')
async def hello(**server):
    return b'hello'

@app.route('/64k')
async def sixty_four_k(**server):
    return b'k' * 65536

@app.route('/ws')
async def ws_echo(websocket=None, **server):
    async for message in websocket:
        await websocket.send(message)

@app.route('/ws-flood')
async def ws_flood(websocket=None, **server):
    await websocket.accept()
    chunk = b'f' * 65536
    while True:
        await websocket.send(chunk)

@app.route('/frozen')
async def frozen(**server):
    import gc
    return str(gc.get_freeze_count())

@app.route('/connections')
async def connections(request, **server):
    return str(len(request.exchange.protocol.state.connections))

app.run('127.0.0.1', int(sys.argv[1]), worker_num=0, log_level='WARNING',
        download_rate=1 << 40, upload_rate=1 << 40, client_max_body_size=200 << 20,
        keepalive_connections=2000, request_timeout=30, keepalive_timeout=30,
        ws_max_payload_size=1 << 20, ws_ping_interval=0)
"""



def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Watch:
    """Samples a process's RSS every 50 ms in a thread; `peak` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, rss(self.pid))

    def __enter__(self) -> Watch:
        self.peak = rss(self.pid)
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, Path]]:
    d = tmp_path_factory.mktemp("heavy")
    big = d / "big.bin"
    with big.open("wb") as f:
        for i in range(100):
            f.write(bytes([i]) * MiB)
    script = d / "server.py"
    script.write_text(textwrap.dedent(SERVER))
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(script), str(port), str(big)])
    try:
        wait_up(f"http://127.0.0.1:{port}/hello", proc)
        yield port, proc.pid, big
    finally:
        stop_process(proc)


LIMIT = 64 * MiB


def test_100_mib_upload_in_bounded_memory(server: tuple[int, int, Path]) -> None:
    port, pid, _ = server

    def body() -> Iterator[bytes]:
        for i in range(100):
            yield bytes([i]) * MiB

    expected = hashlib.sha256()
    for i in range(100):
        expected.update(bytes([i]) * MiB)
    with Watch(pid) as watch:
        r = httpx.post(f"http://127.0.0.1:{port}/upload", content=body(), timeout=60)
    assert r.text == f"{100 * MiB} {expected.hexdigest()}"
    print(f"peak server RSS {watch.peak / MiB:.1f} MiB")
    assert watch.peak < LIMIT, f"peak RSS {watch.peak / MiB:.1f} MiB"


def test_uploads_to_a_slow_handler_cost_bounded_memory(
        server: tuple[int, int, Path]) -> None:
    """64 uploads of 2 MiB at once to a handler slower than its clients: each holds
    what waits for the handler (reading pauses past a 64 KiB piece) and the piece
    the handler works on; with the loop's reads of 256 KiB that was ~460 KiB an
    upload, now ~230 (the first piece comes with the head, in a read of any size)."""
    port, pid, _ = server
    body = b"u" * (2 * MiB)
    head = b"POST /slow-upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)
    answers: list[bytes] = []

    def upload() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(head + body)
            data = b""
            while not data.endswith(b"\r\n\r\n%d" % len(body)):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            answers.append(data)

    before = rss(pid)
    threads = [threading.Thread(target=upload) for _ in range(64)]
    with Watch(pid) as watch:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert len(answers) == 64 and all(a.startswith(b"HTTP/1.1 200") for a in answers)
    grown = watch.peak - before
    print(f"64 uploads to a slow handler: {grown / MiB:.1f} MiB")
    assert grown < 20 * MiB, f"{grown / 64 / 1024:.0f} KiB per upload"


@pytest.mark.parametrize("path", ["/download", "/file"])
def test_100_mib_download_in_bounded_memory(server: tuple[int, int, Path], path: str) -> None:
    port, pid, big = server
    size = 0
    digest = hashlib.sha256()
    with Watch(pid) as watch, httpx.stream("GET", f"http://127.0.0.1:{port}{path}",
                                           timeout=60) as r:
        for data in r.iter_bytes():
            size += len(data)
            digest.update(data)
    assert size == 100 * MiB
    if path == "/file":
        assert digest.hexdigest() == hashlib.sha256(big.read_bytes()).hexdigest()
    print(f"peak server RSS {watch.peak / MiB:.1f} MiB")
    assert watch.peak < LIMIT, f"peak RSS {watch.peak / MiB:.1f} MiB"


def test_slow_reader_of_a_big_file_costs_bounded_memory(server: tuple[int, int, Path]) -> None:
    port, pid, _ = server
    with Watch(pid) as watch, socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"GET /download HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(1.0)  # not reading: the server must wait, not buffer 100 MiB
        t0 = time.monotonic()
        assert httpx.get(f"http://127.0.0.1:{port}/hello", timeout=2).content == b"hello"
        assert time.monotonic() - t0 < 0.5
    print(f"peak server RSS {watch.peak / MiB:.1f} MiB")
    assert watch.peak < LIMIT, f"peak RSS {watch.peak / MiB:.1f} MiB"


def test_what_startup_made_is_left_out_of_collections(
        server: tuple[int, int, Path]) -> None:
    """The worker freezes what exists once its application has started: the
    collector does not walk it again (a young collection that did took 1.4 ms under
    load), nor writes to the pages a forked worker shares with its master."""
    port, _, _ = server
    assert int(httpx.get(f"http://127.0.0.1:{port}/frozen", timeout=5).text) > 10_000


def test_1000_idle_connections(server: tuple[int, int, Path]) -> None:
    port, pid, _ = server
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    before = rss(pid)
    socks = []
    try:
        for _ in range(1000):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        deadline = time.monotonic() + 10
        while True:
            count = int(httpx.get(f"http://127.0.0.1:{port}/connections", timeout=5).text)
            if count >= 1001 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert count >= 1001
        t0 = time.monotonic()
        assert httpx.get(f"http://127.0.0.1:{port}/hello", timeout=2).content == b"hello"
        assert time.monotonic() - t0 < 0.5
        held = rss(pid) - before
        print(f"1000 idle connections hold {held / MiB:.1f} MiB")
        assert held < 32 * MiB, f"{held / 1000:.0f} bytes per idle connection"
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    deadline = time.monotonic() + 10
    while int(httpx.get(f"http://127.0.0.1:{port}/connections", timeout=5).text) > 1:
        assert time.monotonic() < deadline, "closed connections were not let go"
        time.sleep(0.05)


def test_pipelined_flood(server: tuple[int, int, Path]) -> None:
    port, pid, _ = server
    flood = b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n" * 20000
    with Watch(pid) as watch, socket.create_connection(("127.0.0.1", port)) as s:
        s.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 5
        while sent < len(flood) and time.monotonic() < deadline:
            try:
                sent += s.send(flood[sent:])
            except BlockingIOError:
                time.sleep(0.01)
        # the server stops reading when its queue is full; others are still served
        t0 = time.monotonic()
        assert httpx.get(f"http://127.0.0.1:{port}/hello", timeout=2).content == b"hello"
        assert time.monotonic() - t0 < 0.5
        s.setblocking(True)
        s.settimeout(10)
        got = b""
        while got.count(b"hello") < 20000:
            if sent < len(flood):
                s.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    sent += s.send(flood[sent:])
                s.setblocking(True)
                s.settimeout(10)
            chunk = s.recv(1 << 20)
            assert chunk, "the server closed the flooding connection"
            got += chunk
    assert got.count(b"HTTP/1.1 200 OK") == 20000
    print(f"peak server RSS {watch.peak / MiB:.1f} MiB")
    assert watch.peak < LIMIT, f"peak RSS {watch.peak / MiB:.1f} MiB"
    assert os.path.exists(f"/proc/{pid}")


def test_pipelining_client_that_never_reads(server: tuple[int, int, Path]) -> None:
    """Reading pauses while the answers are not being read: a client that pipelines
    requests for 64 KiB answers and reads none cannot grow the server."""
    port, pid, _ = server
    flood = b"GET /64k HTTP/1.1\r\nHost: t\r\n\r\n" * 40000  # 1.3 MiB, 2.6 GB of answers
    with Watch(pid) as watch, socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 3
        while sent < len(flood) and time.monotonic() < deadline:
            try:
                sent += s.send(flood[sent:])
            except BlockingIOError:
                time.sleep(0.01)
        time.sleep(0.5)
        t0 = time.monotonic()
        assert httpx.get(f"http://127.0.0.1:{port}/hello", timeout=2).content == b"hello"
        assert time.monotonic() - t0 < 0.5
    print(f"sent {sent} bytes; peak server RSS {watch.peak / MiB:.1f} MiB")
    assert watch.peak < LIMIT, f"peak RSS {watch.peak / MiB:.1f} MiB"


def ws_connect(port: int, path: str, extensions: str = "") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    extra = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\n"
              f"Sec-WebSocket-Version: 13\r\n{extra}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, "closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def test_websocket_abuse_costs_bounded_memory(server: tuple[int, int, Path]) -> None:
    """Clients that never read a flood, clients that send messages up to the limit
    without reading the echoes, and deflate bombs: the server stays bounded and goes
    on serving others."""
    from tremolo import _core

    port, pid, _ = server
    socks: list[socket.socket] = []
    with Watch(pid) as watch:
        try:
            for _ in range(20):  # never read a server that sends without end
                socks.append(ws_connect(port, "/ws-flood"))
            big = _core.ws_frame(os.urandom(1 << 20), 2, True, os.urandom(4))
            for _ in range(4):  # 1 MiB messages, echoes never read (a few MiB each)
                s = ws_connect(port, "/ws")
                s.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    for _ in range(8):
                        s.send(big)
                socks.append(s)
            z = __import__("zlib").compressobj(9, 8, -15)
            bomb = (z.compress(b"\0" * (256 << 20)) + z.flush(2))[:-4]
            frame = bytearray(_core.ws_frame(bomb, 2, True, os.urandom(4)))
            frame[0] |= 0x40
            for _ in range(20):  # 256 MiB each, in a quarter MiB
                s = ws_connect(port, "/ws", "permessage-deflate")
                s.sendall(frame)
                socks.append(s)
            time.sleep(2)
            t0 = time.monotonic()
            assert httpx.get(f"http://127.0.0.1:{port}/hello", timeout=2).content == b"hello"
            assert time.monotonic() - t0 < 0.5
        finally:
            for s in socks:
                s.close()
    print(f"peak server RSS {watch.peak / MiB:.1f} MiB")
    assert watch.peak < LIMIT, f"peak RSS {watch.peak / MiB:.1f} MiB"
