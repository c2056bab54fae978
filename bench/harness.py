"""What every benchmark scenario uses: start a server, load it (wrk or bench/wsload.py),
sample its memory, and describe the machine and the versions.

A server runs pinned to CPU 0 and its load client to CPU 1 unless told otherwise (the
`scaling` scenario leaves both to the scheduler).
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
VENV053 = ROOT / ".venv-tremolo053"  # made by tools/original_env.py, shared with the tests
PY = sys.executable
SERVER_CPU = "0"
CLIENT_CPU = "1"


class Run(NamedTuple):
    """One measurement: requests (or messages) per second, latency percentiles, errors,
    and the load client's CPU time over the run as a fraction of one core."""

    rate: float
    p50: float
    p99: float
    errors: int
    client_cpu: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """pid and every process below it (workers of workers included)."""
    return list(family(pid))


def family(pid: int) -> dict[int, list[int]]:
    """pid and every process below it, each with its children."""
    found: dict[int, list[int]] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        found[p] = []
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                children = Path(f"/proc/{p}/task/{task}/children").read_text()
                found[p] += [int(c) for c in children.split()]
        todo += found[p]
    return found


def rss(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


class Peak:
    """The highest RSS of a process tree (`value`) and of its largest process that
    has no children (`worker`: a server's worker, or the server itself when it is one
    process; a supervising master is left out, whatever its size: tremolo's, which
    imported the application before forking, is the larger at rest), sampled every
    100 ms; and the CPU time the tree used while it was watched (`cpu`, seconds)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.value, self.worker = pid, 0, 0
        self.cpu = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def tree_rss(self) -> int:
        return sum(rss(p) for p in descendants(self.pid))

    def sample(self) -> None:
        tree = family(self.pid)
        sizes = {p: rss(p) for p in tree}
        self.value = max(self.value, sum(sizes.values()))
        self.worker = max(self.worker, *(sizes[p] for p, children in tree.items()
                                         if not children))

    def run(self) -> None:
        while not self.done.wait(0.1):
            self.sample()

    def tree_cpu(self) -> float:
        return sum(cpu_seconds(p) for p in descendants(self.pid))

    def __enter__(self) -> Peak:
        self.sample()
        self.cpu = -self.tree_cpu()
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.cpu += self.tree_cpu()
        self.done.set()
        self.thread.join(5)


def pinned(argv: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *argv] if cpus else argv


@contextlib.contextmanager
def running(argv: list[str], port: int, name: str, cpus: str | None = SERVER_CPU,
            env: dict[str, str] | None = None) -> Iterator[int]:
    # cwd outside the repository, so the original Tremolo does not import ours
    proc = subprocess.Popen(pinned(argv, cpus), cwd="/tmp",
                            env={**os.environ, **env} if env else None,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"{name} did not start: {err[-2000:]}") from None
                time.sleep(0.05)
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def wrk(url: str, duration: int, connections: int, script: str | None = None,
        cpus: str | None = CLIENT_CPU, threads: int = 1) -> Run:
    """wrk's requests/s, p50 and p99 in ms, non-2xx + socket errors, and its CPU."""
    extra = ["-s", script] if script else []
    for attempt in range(3):
        cpu0, t0 = children_cpu(), time.monotonic()
        run = subprocess.run(pinned(["wrk", f"-t{threads}", f"-c{connections}",
                                     f"-d{duration}s", "--latency", *extra, url], cpus),
                             capture_output=True, text=True)
        cpu = (children_cpu() - cpu0) / (time.monotonic() - t0)
        out = run.stdout
        if "Requests/sec" in out:
            break
        # a server still starting its worker (gunicorn) refuses the first connections
        time.sleep(1 + attempt)
    else:
        raise RuntimeError(f"wrk failed on {url}: {run.stdout}{run.stderr}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")

    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      out):
        errors += sum(map(int, m.groups()))
    return Run(rps, pct("50"), pct("99"), errors, cpu)


def wsload(port: int, size: int, duration: int, connections: int,
           cpus: str | None = CLIENT_CPU, processes: int = 1) -> Run:
    """bench/wsload.py's messages/s, round-trip p50 and p99 in ms, and its CPU (measured
    by the client over its timed window only)."""
    for attempt in range(3):
        out = subprocess.run(pinned([PY, str(BENCH / "wsload.py"), str(port),
                                     "--size", str(size), "--duration", str(duration),
                                     "--connections", str(connections),
                                     "--processes", str(processes)], cpus),
                             capture_output=True, text=True, timeout=duration + 60)
        m = re.search(r"([\d.]+) messages/s(?:, p50 ([\d.]+) ms, p99 ([\d.]+) ms, "
                      r"cpu ([\d.]+))?", out.stdout)
        if m is not None:
            p50, p99, cpu = (float(g) if g else float("nan") for g in m.groups()[1:])
            return Run(float(m.group(1)), p50, p99, 0, cpu)
        # a server still starting its worker refuses the first connections
        time.sleep(1 + attempt)
    raise RuntimeError(f"wsload failed: {out.stdout}{out.stderr[-2000:]}")


def versions() -> dict[str, str]:
    def pkg(name: str, python: str = PY) -> str:
        code = f"import importlib.metadata as m; print(m.version({name!r}))"
        r = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd="/tmp")
        return r.stdout.strip() or "?"

    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    nginx_v = (subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
               if shutil.which("nginx") else "?")
    return {
        "python": platform.python_version(), "uvloop": pkg("uvloop"),
        "uvicorn": pkg("uvicorn"), "httptools": pkg("httptools"), "h11": pkg("h11"),
        "granian": pkg("granian"), "websockets": pkg("websockets"),
        "socketify": pkg("socketify"),
        "tremolo (this)": pkg("tremolo"),
        "tremolo (original)": pkg("tremolo", str(VENV053 / "bin" / "python")),
        "wrk": wrk_v.strip(), "nginx": nginx_v.split("/")[-1] or "?",
    }


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def machine() -> str:
    return (f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}; "
            "shared and noisy, so compare ratios from the same run.")
