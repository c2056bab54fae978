"""The process master under faults, with real processes and signals: killed workers
are restarted with backoff and the server stays up; workers go when the master is
killed; SIGTTIN/SIGTTOU; a signal during a worker's start; a worker that cannot start
stops the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ..helpers import free_port, stop_process

APP = """
import asyncio, os
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        message = await receive()
        delay = float(os.environ.get("START_DELAY", "0"))
        await asyncio.sleep(delay)
        if os.environ.get("DIE_AT_START"):
            os._exit(7)
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
"""


def children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(p) for p in text.split()}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


def until(check: object, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@contextmanager
def master(tmp_path: Path, workers: int = 2, *args: str, **env: str
           ) -> Iterator[tuple[subprocess.Popen[str], int]]:
    (tmp_path / "sup.py").write_text(APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--port", str(port),
                             "--workers", str(workers), "--no-access-log", *args,
                             "sup:app"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **env})
    try:
        yield proc, port
    finally:
        stop_process(proc, signal.SIGTERM, 20)
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)


def serving(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def ready(proc: subprocess.Popen[str]) -> str:
    seen = ""
    while "press CTRL+C to quit" not in seen:
        line = proc.stderr.readline() if proc.stderr else ""
        assert line, seen
        seen += line
    return seen


def test_killed_workers_are_restarted_with_backoff_and_the_server_stays_up(
        tmp_path: Path) -> None:
    with master(tmp_path) as (proc, port):
        ready(proc)
        for round_ in range(7):  # more quick deaths than the old master survived
            before = children(proc.pid)
            assert len(before) == 2
            victim = min(before)
            os.kill(victim, signal.SIGKILL)
            until(lambda gone=victim: len(children(proc.pid) - {gone}) == 2 and gone not in
                  children(proc.pid), f"no new worker in round {round_}", timeout=20)
            until(lambda: serving(port), "not serving")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert "was killed by SIGKILL after" in err
    assert "starting another in 0.1s" in err and "starting another in 0.2s" in err


def test_workers_go_when_the_master_is_killed(tmp_path: Path) -> None:
    with master(tmp_path) as (proc, port):
        ready(proc)
        workers = children(proc.pid)
        assert len(workers) == 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        started = time.monotonic()
        until(lambda: not any(alive(w) for w in workers), "workers outlived the master",
              timeout=5)
        assert time.monotonic() - started < 2
        assert not serving(port)


def test_ttin_and_ttou_change_the_worker_count(tmp_path: Path) -> None:
    with master(tmp_path) as (proc, port):
        ready(proc)
        os.kill(proc.pid, signal.SIGTTIN)
        until(lambda: len(children(proc.pid)) == 3, "no third worker")
        os.kill(proc.pid, signal.SIGTTOU)
        until(lambda: len(children(proc.pid)) == 2, "not down to two workers")
        os.kill(proc.pid, signal.SIGTTOU)  # (two at once would be one: signals merge)
        until(lambda: len(children(proc.pid)) == 1, "not down to one worker")
        os.kill(proc.pid, signal.SIGTTOU)  # never fewer than one
        time.sleep(0.5)
        assert len(children(proc.pid)) == 1 and serving(port)


def test_a_signal_during_a_workers_start_is_not_swallowed(tmp_path: Path) -> None:
    with master(tmp_path, workers=1, START_DELAY="1.5") as (proc, _):
        until(lambda: len(children(proc.pid)) == 1, "no worker")
        time.sleep(0.3)  # the worker is in its lifespan startup
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def test_a_worker_that_dies_before_serving_stops_the_server(tmp_path: Path) -> None:
    with master(tmp_path, workers=2, DIE_AT_START="1") as (proc, _):
        code = proc.wait(20)
        err = proc.stderr.read() if proc.stderr else ""
    assert code == 1, err
    assert "exited with code 7 before it served: stopping" in err


def pids_seen(port: int, count: int) -> list[str]:
    """The pid of the worker that answered each of `count` requests, one connection
    each; every request must succeed."""
    out = []
    for _ in range(count):
        r = httpx.get(f"http://127.0.0.1:{port}/", timeout=5,
                      headers={"Connection": "close"})
        assert r.status_code == 200
        out.append(r.text)
    return out


def test_max_requests_replaces_a_worker_without_a_failed_request(tmp_path: Path) -> None:
    with master(tmp_path, 1, "--max-requests", "5") as (proc, port):
        ready(proc)
        seen = []
        deadline = time.monotonic() + 20
        while len(set(seen)) < 3:
            assert time.monotonic() < deadline, seen
            seen += pids_seen(port, 5)
        # an old one may still be draining, another just exiting (on a loaded
        # machine a process takes a moment to end): they do not pile up
        until(lambda: len(children(proc.pid)) <= 2, "replaced workers gone", 5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert "it served max_requests (5)" in err


def test_limit_memory_replaces_a_worker(tmp_path: Path) -> None:
    with master(tmp_path, 1, "--limit-memory", "1") as (proc, port):  # 1 KiB: always over
        ready(proc)
        seen: set[str] = set()
        deadline = time.monotonic() + 20
        while len(seen) < 2:
            assert time.monotonic() < deadline, seen
            seen.update(pids_seen(port, 2))
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert "over limit_memory (1)" in err


def test_limit_concurrency_answers_503_past_the_limit(tmp_path: Path) -> None:
    import socket

    with master(tmp_path, 1, "--limit-concurrency", "2") as (proc, port):
        ready(proc)
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        try:
            time.sleep(0.2)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as third:
                answer = b""
                while chunk := third.recv(4096):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert b"Retry-After: 1" in answer and b"limit of connections (2)" in answer
        finally:
            for sock in held:
                sock.close()
        until(lambda: serving(port), "not serving once below the limit")


STUCK = """
import os, time
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/block":
        time.sleep(60)  # blocks the event loop: a bug
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
"""


def test_a_worker_whose_loop_is_stuck_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "stuck.py").write_text(STUCK)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--port", str(port),
                             "--workers", "1", "--worker-timeout", "1.5", "--no-access-log",
                             "stuck:app"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        ready(proc)
        first = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
        with pytest.raises(httpx.TransportError):  # cut when the worker is killed
            httpx.get(f"http://127.0.0.1:{port}/block", timeout=10)
        until(lambda: serving(port) and httpx.get(f"http://127.0.0.1:{port}/",
                                                 timeout=2).text != first,
              "no new worker", timeout=20)
    finally:
        stop_process(proc, signal.SIGTERM, 20)
    err = proc.stderr.read() if proc.stderr else ""
    # the worker named the request and where its handler is stuck, then was replaced
    assert "blocks it" in err and "the handler of GET /block" in err, err
    assert 'stuck.py", line 7, in app' in err
    assert "has not answered for" in err and "(worker_timeout)" in err


LOCKED = """
import asyncio, os
from tremolo import Tremolo

app = Tremolo()
COUNTER = os.environ["COUNTER"]

@app.route("/add")
async def add(lock, **server):
    async with lock:  # shared by every worker process
        with open(COUNTER) as f:
            value = int(f.read() or 0)
        await asyncio.sleep(0.005)  # other requests, in this worker and others, run now
        with open(COUNTER, "w") as f:
            f.write(str(value + 1))
    return str(os.getpid())

app.run("127.0.0.1", int(os.environ["PORT"]), worker_num=2, log_level="ERROR")
"""


def test_the_lock_is_shared_by_real_worker_processes(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    counter = tmp_path / "counter"
    counter.write_text("0")
    (tmp_path / "locked.py").write_text(LOCKED)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(tmp_path / "locked.py")], cwd=tmp_path,
                            env={**os.environ, "COUNTER": str(counter), "PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        until(lambda: len(children(proc.pid)) == 2 and serving_path(port, "/add"),
              "not serving")

        def add(_: int) -> str:
            with httpx.Client(timeout=10) as c:
                return c.get(f"http://127.0.0.1:{port}/add",
                             headers={"Connection": "close"}).text
        with ThreadPoolExecutor(16) as pool:
            pids = set(pool.map(add, range(80)))
        assert len(pids) == 2  # both workers took part
        # every increment kept: no two critical sections overlapped, across processes
        assert counter.read_text() == str(80 + 1)  # (+1: the readiness probe)
    finally:
        stop_process(proc, signal.SIGTERM, 20)


def serving_path(port: int, path: str) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_sockets_handed_in_with_fd_and_systemd_activation(tmp_path: Path) -> None:
    import socket

    (tmp_path / "sup.py").write_text(APP)
    for style in ("--fd", "systemd"):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        fd = listener.fileno()
        if style == "--fd":
            argv = [sys.executable, "-m", "tremolo", "--fd", str(fd), "--workers", "2",
                    "--no-access-log", "sup:app"]
            proc = subprocess.Popen(argv, cwd=tmp_path, pass_fds=[fd],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
        else:  # as systemd hands them: from fd 3 on, LISTEN_FDS, LISTEN_PID
            script = (f'LISTEN_PID=$$ LISTEN_FDS=1 exec "{sys.executable}" -m tremolo '
                      "--workers 2 --no-access-log sup:app")
            # (fd 3 is kept through the close of inherited descriptors)
            proc = subprocess.Popen(["sh", "-c", script], cwd=tmp_path, pass_fds=[3],
                                    preexec_fn=lambda fd=fd: os.dup2(fd, 3),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
        listener.close()  # the server holds it now
        try:
            assert "on fd:" in ready(proc)
            assert len(set(pids_seen(port, 20))) >= 1
        finally:
            stop_process(proc, signal.SIGTERM, 20)


def test_uds_mode_sets_the_socket_permissions(tmp_path: Path) -> None:
    (tmp_path / "sup.py").write_text(APP)
    sock = tmp_path / "s.sock"
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--bind", str(sock),
                             "--uds-mode", "600", "--workers", "0", "sup:app"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        ready(proc)
        assert sock.stat().st_mode & 0o777 == 0o600
    finally:
        stop_process(proc, signal.SIGTERM, 20)
    r = subprocess.run([sys.executable, "-m", "tremolo", "--uds-mode", "999", "sup:app"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "argument --uds-mode" in r.stderr


SSE_FOREVER = """
import asyncio
from tremolo import Tremolo

app = Tremolo()

@app.route("/events")
async def events(sse=None, **server):
    i = 0
    while True:
        await sse.send(f"tick {i}")
        i += 1
        await asyncio.sleep(0.1)
"""


def test_a_stop_ends_event_streams_cleanly(tmp_path: Path) -> None:
    (tmp_path / "sse.py").write_text(SSE_FOREVER)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--port", str(port),
                             "--workers", "0", "--no-access-log", "sse:app"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        ready(proc)
        events = []
        with httpx.stream("GET", f"http://127.0.0.1:{port}/events", timeout=10) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    events.append(line)
                if len(events) == 3:
                    stopped = time.monotonic()
                    proc.send_signal(signal.SIGTERM)
            # the body ended with its last chunk (httpx raises on a cut chunked body)
        assert time.monotonic() - stopped < 3  # not shutdown_timeout (30 s)
        assert proc.wait(10) == 0
    finally:
        stop_process(proc, signal.SIGTERM, 20)


def _switches(pid: int) -> dict[int, int]:
    """Context switches so far of each thread of `pid`, by thread id."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue  # a thread that just ended
        out[int(task.name)] = sum(int(line.split()[1]) for line in text.splitlines()
                                  if line.endswith("ctxt_switches") or "ctxt_switches:" in line)
    return out


def test_an_idle_server_wakes_up_seldom(tmp_path: Path) -> None:
    # Every wake-up of the master or of a worker's helper thread takes a core from
    # the requests (in a benchmark pinned to one core, the only one). The master
    # sleeps until something happens (a signal, a worker's message or exit) or the
    # clock's next business; the worker's loop watch until the loop's beat is old.
    with master(tmp_path, 1) as (proc, _):
        ready(proc)
        [worker] = children(proc.pid)
        time.sleep(1.0)
        before_master, before_worker = _switches(proc.pid), _switches(worker)
        time.sleep(4.0)
        after_master, after_worker = _switches(proc.pid), _switches(worker)
    master_woke = sum(after_master.values()) - sum(before_master.values())
    helpers_woke = sum(n - before_worker.get(tid, 0) for tid, n in after_worker.items()
                       if tid != worker)
    loop_woke = after_worker[worker] - before_worker[worker]
    # (20 a second each before: the master polled, the watch looked every 0.1 s)
    assert master_woke <= 12, master_woke
    assert helpers_woke <= 8, (helpers_woke, before_worker, after_worker)
    # the loop's own timers: the beat, the sweeper, the master's presence
    assert loop_woke <= 40, loop_woke
