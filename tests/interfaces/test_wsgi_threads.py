"""A WSGI application's threads under slow clients and hung handlers: no starvation,
a bounded queue, and a worker that stops whatever its threads do."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tremolo.testing import serve_in_thread
from tremolo.wsgi import WSGIAdapter

from ..helpers import exchange, free_port, split_responses, wait_up

release = threading.Event()  # what the hung handlers wait for
started: list[str] = []


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    path = environ["PATH_INFO"]
    if path == "/hang":
        started.append(path)
        release.wait(10)  # (bounded: a test that fails still ends)
    elif path == "/sleep":
        time.sleep(1.0)
    elif path == "/upload":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(len(body)).encode()]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [path.encode()]


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    release.clear()
    started.clear()
    yield
    release.set()  # never leaves a thread hung


def get(port: int, path: str, timeout: float = 5.0) -> tuple[bytes, dict[bytes, bytes], bytes]:
    raw = exchange(port, f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode(), timeout=timeout,
                   expect=path.encode() if path != "/none" else None)
    assert raw, f"no answer to {path}"
    return split_responses(raw)[0]


def read_until(s: socket.socket, end: bytes) -> bytes:
    """What the server sends on `s` until it ends with `end` (bounded by 5 s)."""
    s.settimeout(5)
    got = b""
    while not got.endswith(end):
        data = s.recv(4096)
        assert data, f"closed before {end!r}"
        got += data
    return got


def wait_for(check: Any, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_slow_uploaders_hold_no_thread() -> None:
    """Clients sending their bodies slowly (but above body_min_rate) do not take the
    threads: their bodies (within wsgi_input_buffer) are read on the loop, and a
    request behind them is answered at once."""
    with serve_in_thread(lambda s: WSGIAdapter(app, s), thread_pool_size=2,
                         shutdown_timeout=2) as (_, port):
        slow = []
        try:
            for _ in range(4):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 4000\r\n\r\n"
                          + b"x" * 1000)
                slow.append(s)
            time.sleep(0.3)  # (their requests are read and waiting for their bodies)
            t0 = time.monotonic()
            status, _, body = get(port, "/hello")
            assert status == b"HTTP/1.1 200 OK" and body == b"/hello"
            assert time.monotonic() - t0 < 1.0
            for s in slow:  # the rest of each body: each is answered
                s.sendall(b"y" * 3000)
            for s in slow:
                read_until(s, b"4000")
        finally:
            for s in slow:
                s.close()


def test_a_blocking_request_does_not_hold_back_the_next() -> None:
    """A request that blocks its thread does not delay one that came with it while
    the pool has a thread free (a spare thread takes it)."""
    with serve_in_thread(lambda s: WSGIAdapter(app, s), thread_pool_size=2,
                         shutdown_timeout=3) as (_, port):
        a = socket.create_connection(("127.0.0.1", port), timeout=5)
        b = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            a.sendall(b"GET /sleep HTTP/1.1\r\nHost: t\r\n\r\n")
            b.sendall(b"GET /quick HTTP/1.1\r\nHost: t\r\n\r\n")
            t0 = time.monotonic()
            read_until(b, b"/quick")
            assert time.monotonic() - t0 < 0.7, "waited for the sleeping request"
            read_until(a, b"/sleep")
        finally:
            a.close()
            b.close()


def test_a_full_pool_queues_then_answers_503() -> None:
    """With every thread hung, requests wait in the queue (wsgi_queue_size); past it
    they are answered 503 with Retry-After at once; the queued ones are served when a
    thread is free."""
    with serve_in_thread(lambda s: WSGIAdapter(app, s), thread_pool_size=2,
                         wsgi_queue_size=1, shutdown_timeout=2) as (_, port):
        hung = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        queued = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            for s in hung:
                s.sendall(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
            wait_for(lambda: len(started) == 2, "the handlers never started")
            queued.sendall(b"GET /queued HTTP/1.1\r\nHost: t\r\n\r\n")
            time.sleep(0.2)
            t0 = time.monotonic()
            status, headers, _ = get(port, "/none")
            assert status == b"HTTP/1.1 503 Service Unavailable"
            assert headers[b"retry-after"] == b"1"
            assert time.monotonic() - t0 < 1.0
            release.set()
            assert read_until(queued, b"/queued").startswith(b"HTTP/1.1 200 OK")
        finally:
            for s in [*hung, queued]:
                s.close()


def test_a_request_that_never_got_a_thread_is_a_503() -> None:
    """A request still queued at app_handler_timeout never ran: 503, not 500."""
    with serve_in_thread(lambda s: WSGIAdapter(app, s), thread_pool_size=1,
                         app_handler_timeout=0.5, shutdown_timeout=2) as (_, port):
        hung = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            hung.sendall(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
            wait_for(lambda: len(started) == 1, "the handler never started")
            t0 = time.monotonic()
            status, headers, _ = get(port, "/none")
            assert status == b"HTTP/1.1 503 Service Unavailable"
            assert headers[b"retry-after"] == b"1"
            assert 0.3 < time.monotonic() - t0 < 2.0
        finally:
            release.set()
            hung.close()


HUNG_APP = '''
import time

def app(environ, start_response):
    if environ["PATH_INFO"] == "/hang":
        time.sleep(3600)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"up"]
'''


def start_hung(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    (tmp_path / "hung.py").write_text(HUNG_APP)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tremolo", "--port", str(port), "--worker-num", "1",
         "--shutdown-timeout", "1", "--log-level", "ERROR", "hung:app"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    wait_up(f"http://127.0.0.1:{port}/", proc)
    return proc


def children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        out += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def hang_all(port: int, count: int) -> list[socket.socket]:
    out = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
        out.append(s)
    time.sleep(0.5)
    return out


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_worker_with_hung_threads_stops_at_its_deadline(tmp_path: Path) -> None:
    """SIGTERM: the worker's threads are all hung in the application; it still
    stops within shutdown_timeout (1 s here) and a little more, and so does the
    master."""
    port = free_port()
    proc = start_hung(tmp_path, port)
    socks = hang_all(port, 5)  # every thread of the default pool
    try:
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(8)
        assert time.monotonic() - t0 < 5
    finally:
        for s in socks:
            s.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_worker_with_hung_threads_does_not_outlive_its_master(tmp_path: Path) -> None:
    """The master killed outright (SIGKILL): its worker, every thread hung, ends
    within a few seconds rather than running on as an orphan."""
    port = free_port()
    proc = start_hung(tmp_path, port)
    workers = children(proc.pid)
    assert workers, "no worker"
    socks = hang_all(port, 5)
    try:
        proc.kill()
        proc.wait(5)
        deadline = time.monotonic() + 6
        while any(alive(w) for w in workers):
            assert time.monotonic() < deadline, "the worker outlived its master"
            time.sleep(0.05)
    finally:
        for s in socks:
            s.close()
        for w in workers:
            if alive(w):
                os.kill(w, signal.SIGKILL)
