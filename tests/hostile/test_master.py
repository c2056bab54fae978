"""The process master under storms: every signal it handles, sent as fast as a loop
can, during metrics scrapes, during recycles (max_requests) and to the whole process
group; and a flood of idle clients on its metrics endpoint under a low RLIMIT_NOFILE.
After each, the master must still supervise: it answers, it runs the number of
workers the signals asked for, no child is a zombie or a stray grandchild, and a
final stop signal ends everything within STOP_BOUND seconds."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import free_port
from tremolo.metrics import MAX_CLIENTS

from .server import Server, serve, wait_for

APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})
"""
#: how long a storm lasts
STORM = 4.0
#: a storm adds no worker past this many
MOST_WORKERS = 6
#: a stop signal must end the master and every worker within this many seconds
STOP_BOUND = 10.0
#: the master's fds may grow by this much past its cap of metrics clients
FD_SLACK = 6
#: CPU seconds the master may use per second while idle clients flood its endpoint
#: (it spun at ~1.0 when its descriptors ran out)
CPU_PER_SECOND = 0.15


def children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        kids = children(todo.pop())
        out |= kids
        todo += kids
    return out


def state(pid: int) -> str:
    """A process's State from /proc/<pid>/status (R, S, Z...); 'gone' if none."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except OSError:
        pass
    return "gone"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(port: int, path: str = "/", timeout: float = 3) -> bytes | None:
    """One request on a new connection; the whole answer, or None if there was none."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                      % path.encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            return data
    except OSError:
        return None


def workers_gauge(metrics: int) -> int | None:
    answer = get(metrics, "/metrics")
    found = re.search(rb"\ntremolo_workers (\d+)\n", answer or b"")
    return int(found[1]) if found else None


def stated(server: Server, initial: int) -> int:
    """The worker count the master last said it runs (SIGTTIN, SIGTTOU)."""
    counts = re.findall(r"workers? \(SIGTT(?:IN|OU)\): (\d+) now", server.text())
    return int(counts[-1]) if counts else initial


def supervising(server: Server, metrics: int | None, want: Callable[[], int]) -> None:
    """Waits until the master runs `want()` workers, every one a direct child that
    is alive (no zombie, no grandchild), the metrics say as much, and they serve."""
    def settled() -> bool:
        assert server.proc.poll() is None, f"the master died: {server.text()[-3000:]}"
        kids = children(server.pid)
        if len(kids) != want() or descendants(server.pid) != kids:
            return False
        if any(state(k) not in ("S", "R") for k in kids):
            return False
        if metrics is not None and workers_gauge(metrics) != want():
            return False
        answer = get(server.port)
        return answer is not None and answer.startswith(b"HTTP/1.1 200")
    try:
        wait_for(settled, "the master supervising its workers", timeout=25, step=0.2)
    except AssertionError:
        kids = {k: state(k) for k in descendants(server.pid)}
        raise AssertionError(f"not supervising: want {want()} workers, have {kids} "
                             f"(direct: {children(server.pid)}); master "
                             f"{state(server.pid)}; log:\n{server.text()[-3000:]}") from None


def exact_counts(server: Server, metrics: int | None) -> None:
    """Paced signals (one, then its effect) give exactly the count asked for: down
    to one worker (never none), then two more."""
    pid = server.pid
    deadline = time.monotonic() + 20
    while len(children(pid)) > 1 or stated(server, 0) != 1:
        assert time.monotonic() < deadline, f"not down to one worker: {server.text()[-2000:]}"
        os.kill(pid, signal.SIGTTOU)
        time.sleep(0.05)
    for _ in range(10):
        os.kill(pid, signal.SIGTTOU)  # never fewer than one
    supervising(server, metrics, lambda: 1)
    for count in (2, 3):
        os.kill(pid, signal.SIGTTIN)
        wait_for(lambda c=count: stated(server, 0) == c, f"SIGTTIN to {count}")
    supervising(server, metrics, lambda: 3)


def stop_storm(server: Server, sig: int, group: bool = False) -> None:
    """A storm of `sig` (to the master, or its whole process group) ends the master
    and every worker within STOP_BOUND seconds, the master exiting by itself."""
    everyone = descendants(server.pid) | {server.pid}
    started = time.monotonic()
    for _ in range(30):
        try:
            os.killpg(server.pid, sig) if group else os.kill(server.pid, sig)
        except ProcessLookupError:
            break
        time.sleep(0.002)
    code = server.proc.wait(STOP_BOUND)
    wait_for(lambda: all(state(p) == "gone" for p in everyone), "every worker gone",
             timeout=max(STOP_BOUND - (time.monotonic() - started), 0.5))
    took = time.monotonic() - started
    assert code == 0, f"exit code {code}: {server.text()[-2000:]}"
    assert took < STOP_BOUND


@contextmanager
def running(tmp_path: Path, *args: str, session: bool = False
            ) -> Iterator[tuple[Server, int]]:
    """A master with `args` and a metrics endpoint; whatever happens, nothing of it
    (grandchildren included, which a broken master leaves behind) outlives the
    test."""
    metrics, port = free_port(), free_port()
    seen: set[int] = set()
    done = threading.Event()
    try:
        with serve(tmp_path, APP, *args, "--metrics", f"127.0.0.1:{metrics}",
                   session=session, port=port) as server:
            def record() -> None:
                while not done.wait(0.2):
                    seen.update(descendants(server.pid))
            threading.Thread(target=record, daemon=True).start()
            wait_for(lambda: workers_gauge(metrics) is not None, "the metrics endpoint")
            try:
                yield server, metrics
            finally:
                done.set()
                seen.update(descendants(server.pid))
                if session and server.proc.poll() is None:
                    os.killpg(server.pid, signal.SIGKILL)
    finally:
        done.set()
        for pid in seen:
            with contextlib.suppress(OSError):  # only ours: pids are reused
                if f"--port\0{port}\0" in Path(f"/proc/{pid}/cmdline").read_text():
                    os.kill(pid, signal.SIGKILL)


@contextmanager
def background(work: Callable[[], object], threads: int = 2) -> Iterator[list[int]]:
    """Runs `work` in a loop in `threads` threads while the block runs; yields the
    count of calls that returned something."""
    done = threading.Event()
    counts = [0]

    def loop() -> None:
        while not done.is_set():
            if work() is not None:
                counts[0] += 1
    pool = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    try:
        yield counts
    finally:
        done.set()
        for t in pool:
            t.join(10)


def storm(master: int, signals: list[int], seconds: float = STORM, group: bool = False,
          hup_every: float = 0.0) -> int:
    """Sends `signals` round and round to `master` (or its process group), as fast
    as a loop can, for `seconds`; leaves SIGTTIN out of the rounds while the master
    has MOST_WORKERS children (the kernel merges pending signals, and the floor of
    one worker makes the count drift up), and SIGHUP out of rounds less than
    `hup_every` seconds after the last one. Returns the signals sent."""
    sent = 0
    now = time.monotonic()
    end, hup = now + seconds, now - hup_every
    while (now := time.monotonic()) < end:
        crowded = len(children(master)) >= MOST_WORKERS
        for sig in signals:
            if sig == signal.SIGTTIN and crowded:
                continue
            if sig == signal.SIGHUP:
                if now - hup < hup_every:
                    continue
                hup = now
            try:
                os.killpg(master, sig) if group else os.kill(master, sig)
                sent += 1
            except ProcessLookupError:
                pass
        time.sleep(0.001)
    return sent


MANAGEMENT = [signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGTTIN,
              signal.SIGTTOU, signal.SIGTTOU]


def test_signal_storms_during_scrapes_leave_the_master_supervising(tmp_path: Path) -> None:
    """SIGHUP, SIGTTIN, SIGTTOU and SIGUSR1 (reopen the logs, passed on to every
    worker) storms while two clients scrape without pause (the old master died of
    `dictionary changed size during iteration`, or deadlocked in a handler nested in
    the multiprocessing heap's lock), then a SIGTERM storm."""
    with running(tmp_path, "--workers", "2") as (server, metrics):
        with background(lambda: get(metrics, "/metrics")) as scrapes:
            sent = storm(server.pid, [*MANAGEMENT, signal.SIGUSR1])
        assert sent > 1000 and scrapes[0] > 20, (sent, scrapes)
        supervising(server, metrics, lambda: stated(server, 2))
        exact_counts(server, metrics)
        stop_storm(server, signal.SIGTERM)


def test_signal_storms_during_recycles_leave_the_master_supervising(tmp_path: Path) -> None:
    """The same storms (a SIGHUP every 0.2 s: a reload under way puts recycling
    off) while max_requests replaces workers every few requests (each replacement
    forks in the watch loop, where a handler used to nest), then a SIGINT storm (the
    second forces the stop)."""
    with running(tmp_path, "--workers", "2", "--max-requests", "5") as (server, metrics):
        with background(lambda: get(server.port)) as answered:
            storm(server.pid, MANAGEMENT, hup_every=0.2)
        recycled = server.text().count("served max_requests")
        assert answered[0] > 50 and recycled >= 10, (answered, recycled)
        supervising(server, metrics, lambda: stated(server, 2))
        stop_storm(server, signal.SIGINT)


def test_signals_to_the_whole_group_never_run_the_masters_handlers_in_a_child(
        tmp_path: Path) -> None:
    """Storms to the process group (a terminal's hangup, systemd's control group)
    reach every worker at once, also one forked a moment ago, before it installed
    its own handlers: a child running the master's handlers forked grandchildren or
    signalled its siblings. Then SIGQUIT to the master, SIGTERM to the group."""
    with running(tmp_path, "--workers", "2", session=True) as (server, metrics):
        storm(server.pid, MANAGEMENT, group=True)
        supervising(server, metrics, lambda: stated(server, 2))
        exact_counts(server, metrics)
        stop_storm(server, signal.SIGTERM, group=True)
    with running(tmp_path, "--workers", "2") as (server, metrics):
        storm(server.pid, [signal.SIGTTIN, signal.SIGTTOU], seconds=1.0)
        stop_storm(server, signal.SIGQUIT)


@pytest.mark.parametrize("workers", ["1", "0"])
def test_a_flood_of_idle_metrics_clients_under_a_low_fd_limit(tmp_path: Path,
                                                              workers: str) -> None:
    """300 idle connections to the metrics endpoint of a process limited to 128
    descriptors: it keeps at most MAX_CLIENTS of them (it held every one for 5 s,
    ran out of descriptors and spun at 100% CPU), a scrape is answered while they
    are there (the oldest idle one makes way: they kept scrapes out for a minute),
    and the workers serve throughout."""
    with running(tmp_path, "--workers", workers) as (server, metrics):
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (128, 128))
        time.sleep(0.3)
        before = server.fds()
        idle = []
        try:
            for _ in range(300):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", metrics))  # past the backlog: SYNs retried
                idle.append(s)
            time.sleep(0.5)
            cpu = cpu_seconds(server.pid)
            fds = []
            for _ in range(15):
                time.sleep(0.2)
                fds.append(server.fds())
            used = (cpu_seconds(server.pid) - cpu) / 3.0
            answer = get(server.port)
            assert answer is not None and answer.startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert workers_gauge(metrics) is not None, "a scrape among idle clients"
            assert time.monotonic() - started < 2.0
        finally:
            for s in idle:
                s.close()
        assert max(fds) <= before + MAX_CLIENTS + FD_SLACK, (before, fds)
        assert used < CPU_PER_SECOND, f"{used:.2f} CPU seconds a second"
        wait_for(lambda: workers_gauge(metrics) is not None, "a scrape after the flood",
                 timeout=10)
        wait_for(lambda: server.fds() <= before + 2, "the master's fds back", timeout=10)
