"""The hostile-client suite's harness: a real tremolo server in its own process (the
command line, as users run it), and what the suite measures of it from outside: open
file descriptors, resident memory, TCP sockets by state. Every wait is bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port, stop_process

#: TCP states as /proc/net/tcp writes them
TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
              "0B": "CLOSING"}


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        """The process that serves (with --workers 0, the one started)."""
        return self.proc.pid

    def fds(self, pid: int | None = None) -> int:
        return len(os.listdir(f"/proc/{pid or self.pid}/fd"))

    def steady_fds(self) -> int:
        """The fds once their count stops changing: a server opens a few (its signal
        inbox's socket pair) after it starts listening, so no baseline may be taken
        before."""
        counts = [self.fds()]

        def steady() -> bool:
            time.sleep(0.3)
            counts.append(self.fds())
            return counts[-1] == counts[-2]
        wait_for(steady, "the server's fds steady", timeout=10, step=0)
        return counts[-1]

    def rss_kib(self, pid: int | None = None) -> int:
        with open(f"/proc/{pid or self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def sockets(self, state: str | None = None, pid: int | None = None) -> int:
        """TCP sockets of the server process on its port (in `state`, if given),
        counted from the kernel's table of the inodes the process holds."""
        pid = pid or self.pid
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local_port = int(parts[1].rsplit(":", 1)[1], 16)
                    if parts[9] in inodes and local_port == self.port \
                            and TCP_STATES.get(parts[3]) != "LISTEN" \
                            and (state is None or TCP_STATES.get(parts[3]) == state):
                        count += 1
        return count

    def text(self) -> str:
        return self.log.read_text(errors="replace")


class PeakRSS(threading.Thread):
    """Samples a server's RSS (KiB) every 10 ms while a `with` block runs: `.peak`."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server, self.peak, self.running = server, 0, True

    def run(self) -> None:
        while self.running:
            try:
                self.peak = max(self.peak, self.server.rss_kib())
            except (OSError, AssertionError):
                return  # the server is gone: the test says so
            time.sleep(0.01)

    def __enter__(self) -> PeakRSS:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.running = False
        self.join(5)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15,
             step: float = 0.05) -> float:
    """Waits until `check()` holds; returns the seconds it took. Fails with `what`
    after `timeout`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start


def _ready(port: int, proc: subprocess.Popen[str], log: Path, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"the server exited: {log.read_text()[-3000:]}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline, f"the server never listened: {log.read_text()}"
            time.sleep(0.05)


@contextmanager
def serve(tmp_path: Path, source: str, *args: str, app: str = "app:app",
          env: dict[str, str] | None = None, port: int | None = None,
          cwd: Path | None = None, session: bool = False) -> Iterator[Server]:
    """Runs `python -m tremolo [args] app:app` with `source` as app.py in `tmp_path`,
    one process unless args say otherwise (--workers 0), on a free port; stops it
    (SIGTERM, then SIGKILL) whatever the test did. `session`: in a session (and
    process group) of its own, so that a test can signal the whole group."""
    (tmp_path / "app.py").write_text(source)
    port = port or free_port()
    log = tmp_path / "server.log"
    argv = [sys.executable, "-m", "tremolo", "--port", str(port), "--no-access-log"]
    if "--workers" not in args:
        argv += ["--workers", "0"]
    out = open(log, "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([*argv, *args, app], cwd=cwd or tmp_path, stdout=out,
                            stderr=subprocess.STDOUT, text=True, start_new_session=session,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    try:
        _ready(port, proc, log)
        yield Server(proc, port, log)
    finally:
        stop_process(proc, signal.SIGTERM, 20)
        out.close()
