"""Every connection ends, by one path, within its clock: whatever the client does
(closes right after reading, never reads, leaves mid-body), on every interface and
both event loops. Each test measures the server from outside (its sockets, fds and
memory) and fails on the defect it names."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port

from .apps import APPS
from .server import serve, wait_for

INTERFACES = ["native", "asgi", "wsgi"]
LOOPS = ["uvloop", "asyncio"]


def read_response(s: socket.socket, timeout: float = 5) -> bytes:
    """Reads one Content-Length response whole."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed before the head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, "closed before the body ended"
        body += chunk
    return head


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("interface", INTERFACES)
def test_a_client_that_reads_and_closes_leaves_nothing_behind(
        tmp_path: Path, interface: str, loop: str) -> None:
    """A keep-alive client reads its answer and closes at once: the server's side
    closes too (it stayed in CLOSE-WAIT until keepalive_timeout, for WSGI), so
    limit_concurrency counts only live clients and the gauge tells the truth."""
    metrics = free_port()
    with serve(tmp_path, APPS[interface], "--loop", loop, "--limit-concurrency", "5",
               "--metrics", f"127.0.0.1:{metrics}") as srv:
        for i in range(12):
            with socket.create_connection(("127.0.0.1", srv.port)) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                head = read_response(s)
                # the sixth was answered 503 while five dead ones were counted
                assert head.startswith(b"HTTP/1.1 200"), (i, head)
        wait_for(lambda: srv.sockets() == 0, "the server's sockets closed", timeout=2)
        assert srv.sockets("CLOSE_WAIT") == 0

        def gauge() -> float:
            text = httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=5).text
            line = next(x for x in text.splitlines()
                        if x.startswith("tremolo_connections_open"))
            return float(line.split()[-1])

        wait_for(lambda: gauge() == 0, "the open-connections gauge back to 0", timeout=3)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("interface", INTERFACES)
def test_whole_answers_to_clients_that_never_read_are_dropped(
        tmp_path: Path, interface: str, loop: str) -> None:
    """20 clients ask for 8 MiB each and never read: each answer sits in the
    server's write buffer; once it has not drained for request_timeout the
    connection is aborted and the memory is returned (it was held forever, keep-alive
    or not, because a closing connection waits for its buffer)."""
    with serve(tmp_path, APPS[interface], "--loop", loop, "--request-timeout", "2",
               "--keepalive-timeout", "2", "--thread-pool-size", "20") as srv:
        httpx.get(f"http://127.0.0.1:{srv.port}/big", timeout=10)  # warm: the baseline
        fds, rss = srv.steady_fds(), srv.rss_kib()
        clients = []
        try:
            for i in range(20):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", srv.port))
                close = b"Connection: close\r\n" if i % 2 else b""
                s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n")
                clients.append(s)
            wait_for(lambda: srv.rss_kib() - rss > 100_000, "the answers buffered",
                     timeout=10)
            took = wait_for(lambda: srv.sockets() == 0, "the unread connections aborted",
                            timeout=8)
            assert took < 8
            wait_for(lambda: srv.fds() <= fds, "the fds back to the baseline", timeout=2)
            # what the buffers held is returned (the allocator may keep a little)
            wait_for(lambda: srv.rss_kib() - rss < 40_000, "the buffers' memory returned",
                     timeout=5)
        finally:
            for s in clients:
                s.close()


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("interface", INTERFACES)
@pytest.mark.parametrize("path", ["/upload", "/read"])
def test_clients_that_leave_mid_body_are_closed_at_once(
        tmp_path: Path, interface: str, loop: str, path: str) -> None:
    """200 clients announce a body, send a little of it and close: the server's
    sockets are gone at once, not after request_timeout (2,000 such clients kept
    2,000 fds for 30-40 s with ASGI)."""
    with serve(tmp_path, APPS[interface], "--loop", loop) as srv:
        fds = srv.steady_fds()
        for _ in range(200):
            with socket.create_connection(("127.0.0.1", srv.port)) as s:
                s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: 100000\r\n\r\n" + b"x" * 10)
        wait_for(lambda: srv.sockets() == 0, "the server's sockets closed", timeout=3)
        wait_for(lambda: srv.fds() <= fds, "the fds back to the baseline", timeout=2)
        time.sleep(0.2)
        assert srv.proc.poll() is None
