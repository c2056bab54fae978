"""The Prometheus endpoint (--metrics HOST:PORT): every worker's counters added up,
with what the master counts itself (worker restarts by cause).

Workers count in plain attributes (protocols/counters.py) and publish a snapshot to a
Board, a piece of shared memory, twice a second; the master reads the boards when it
is scraped. Nothing is sent between processes on the hot path, and a master that is
slow to scrape never holds up a worker. A worker that goes has its counters kept, so
that no counter goes backwards; what a worker killed outright counted in its last
half second is lost.

With the counters goes what Prometheus's process collectors report (process_*, read
from /proc): per process, labelled with the worker's slot (or "master"), and
unlabelled for the server as a whole."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import Any

from .. import logs
from .._core import __version__
from ..protocols.counters import DURATION_BUCKETS
from .endpoint import MAX_CLIENTS, Endpoint
from .process import figures

__all__ = ["MAX_CLIENTS", "Board", "Endpoint", "Totals", "published", "render"]

#: the bytes a worker's snapshot may take
BOARD_SIZE = 1 << 16
#: counters that add up across workers, dead ones included
SUMMED = ("connections", "bytes_in", "bytes_out", "duration_sum", "ws_opened", "ws_closed",
          "ws_in", "ws_out")
#: the process series: snapshot key, name, type, help (the names and meanings of
#: Prometheus's process collectors, so that dashboards made for them work)
PROCESS = (
    ("cpu", "process_cpu_seconds_total", "counter", "CPU time used, user and system, in "
     "seconds; unlabelled: every process's, workers gone included."),
    ("rss", "process_resident_memory_bytes", "gauge", "Resident memory in bytes; "
     "unlabelled: every process's added up (pages they share counted in each)."),
    ("vms", "process_virtual_memory_bytes", "gauge", "Virtual memory in bytes; "
     "unlabelled: every process's added up."),
    ("fds", "process_open_fds", "gauge", "File descriptors open; unlabelled: every "
     "process's added up."),
    ("max_fds", "process_max_fds", "gauge", "The limit of open file descriptors (soft "
     "RLIMIT_NOFILE); unlabelled: every process's added up."),
    ("start", "process_start_time_seconds", "gauge", "When the process started, in "
     "seconds since the epoch; unlabelled: the server's first process."),
)
#: platform.python_implementation()'s names (read from sys: platform is a MiB of
#: every process, workers included, for two strings)
_IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalVM",
                    "ironpython": "IronPython", "jython": "Jython"}
_PYTHON = ".".join(map(str, sys.version_info[:3]))
_IMPLEMENTATION = _IMPLEMENTATIONS.get(sys.implementation.name, sys.implementation.name)
BUILD_LABELS = (f'{{version="{__version__}",python="{_PYTHON}",'
                f'implementation="{_IMPLEMENTATION}"}}')

logger = logging.getLogger(logs.SERVER)


class Board:
    """One worker's latest snapshot, in memory the master shares (made before the
    fork). A sequence number, odd while a write is under way, lets the reader tell a
    whole snapshot from a torn one."""

    def __init__(self, ctx: Any) -> None:
        self.seq = ctx.RawValue("Q", 0)
        self.data = ctx.RawArray("c", BOARD_SIZE)

    def write(self, snapshot: dict[str, Any]) -> bool:
        blob = json.dumps(snapshot, separators=(",", ":")).encode()
        if len(blob) + 4 > BOARD_SIZE:
            return False
        self.seq.value += 1
        self.data[0:4] = len(blob).to_bytes(4, "little")
        self.data[4:4 + len(blob)] = blob
        self.seq.value += 1
        return True

    def read(self) -> dict[str, Any] | None:
        for _ in range(100):
            before = self.seq.value
            if before % 2:
                continue
            size = int.from_bytes(self.data[0:4], "little")
            blob = self.data[4:4 + size]
            if self.seq.value == before:
                return json.loads(blob) if size else None
        return None


class Totals:
    """Counters added up over workers; `gone` keeps those of workers that ended."""

    def __init__(self) -> None:
        self.gone = empty()
        #: cause -> workers started to replace another (died, worker_timeout,
        #: max_requests, limit_memory, reload)
        self.restarts: dict[str, int] = {}

    def keep(self, snapshot: dict[str, Any] | None) -> None:
        if snapshot is not None:
            add(self.gone, snapshot)

    def restarted(self, cause: str) -> None:
        self.restarts[cause] = self.restarts.get(cause, 0) + 1


def empty() -> dict[str, Any]:
    out: dict[str, Any] = {name: 0 for name in SUMMED}
    out.update(requests={}, durations=[0] * (len(DURATION_BUCKETS) + 1), rejected={},
               cpu=0.0)
    return out


def add(total: dict[str, Any], snap: dict[str, Any]) -> None:
    for name in SUMMED:
        total[name] += snap.get(name, 0)
    requests = total["requests"]
    for cls, count in enumerate(snap.get("requests", ())):
        if count:
            key = (snap.get("interface", ""), f"{cls}xx")
            requests[key] = requests.get(key, 0) + count
    total["durations"] = [a + b for a, b in zip(total["durations"],
                                                  snap.get("durations", ()), strict=False)]
    for reason, count in snap.get("rejected", {}).items():
        total["rejected"][reason] = total["rejected"].get(reason, 0) + count
    total["cpu"] += snap.get("process", {}).get("cpu", 0.0)


def published(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A worker's snapshot with its process's figures, as it publishes it."""
    snapshot["process"] = figures()
    return snapshot


def render(live: Iterable[tuple[int, dict[str, Any]]], totals: Totals, workers: int, *,
           master: bool = True) -> str:
    """The text exposition format: `live` are (slot, snapshot) of the worker processes
    now, in the order they started; `master`: this process is the master of those
    workers (its own figures are the master's), not the one worker of a server without
    a master."""
    live = list(live)
    # During a reload or recycling, the worker draining and its successor share a
    # slot: the per-worker series are the successor's (the later one), so that no
    # series is there twice; the sums count both.
    latest = dict(live)
    total: dict[str, Any] = {name: value.copy() if isinstance(value, dict | list) else value
             for name, value in totals.gone.items()}
    open_connections = 0
    for _, snap in live:
        add(total, snap)
        open_connections += snap.get("open", 0)
    out: list[str] = []

    def metric(name: str, kind: str, text: str, samples: Iterable[tuple[str, float]],
               prefix: str = "tremolo_") -> None:
        out.append(f"# HELP {prefix}{name} {text}\n# TYPE {prefix}{name} {kind}\n")
        out.extend(f"{prefix}{name}{labels} {_number(value)}\n" for labels, value in samples)

    metric("build_info", "gauge", "The version of tremolo serving, and of the Python that "
           "runs it.", [(BUILD_LABELS, 1)])
    metric("workers", "gauge", "Worker processes serving.", [("", workers)])
    metric("connections_open", "gauge", "Connections open (HTTP and WebSocket).",
           [("", open_connections)])
    metric("connections_total", "counter", "Connections accepted.",
           [("", total["connections"])])
    metric("requests_total", "counter", "Requests answered, by interface and status class.",
           [(f'{{interface="{i}",status="{s}"}}', n)
            for (i, s), n in sorted(total["requests"].items())])
    buckets, running = [], 0
    for bound, count in zip([*DURATION_BUCKETS, float("inf")], total["durations"],
                            strict=False):
        running += count
        buckets.append((f'_bucket{{le="{_bound(bound)}"}}', running))
    metric("request_duration_seconds", "histogram",
           "Time from a request's head to the end of its answer.",
           [*buckets, ("_sum", total["duration_sum"]), ("_count", running)])
    metric("received_bytes_total", "counter", "Bytes received from clients.",
           [("", total["bytes_in"])])
    metric("sent_bytes_total", "counter", "Bytes sent to clients.", [("", total["bytes_out"])])
    metric("websocket_connections_open", "gauge", "WebSocket connections open.",
           [("", total["ws_opened"] - total["ws_closed"])])
    metric("websocket_connections_total", "counter", "WebSocket connections accepted.",
           [("", total["ws_opened"])])
    metric("websocket_messages_total", "counter", "WebSocket messages, by direction.",
           [('{direction="received"}', total["ws_in"]), ('{direction="sent"}',
                                                         total["ws_out"])])
    rejected = []
    for key, count in sorted(total["rejected"].items()):
        status, _, reason = key.partition(" ")
        rejected.append((f'{{status="{status}",reason="{_label(reason)}"}}', count))
    metric("rejected_requests_total", "counter",
           "Requests the server refused itself (malformed, too large, too slow, over "
           "limit_concurrency), by status and reason.", rejected)
    metric("worker_restarts_total", "counter", "Workers started to replace another, by "
           "cause.", [(f'{{cause="{c}"}}', n) for c, n in sorted(totals.restarts.items())])
    metric("event_loop_lag_seconds", "gauge", "How late a worker's event loop last ran a "
           "timer.", [(f'{{worker="{slot}"}}', snap.get("loop_lag", 0.0))
                      for slot, snap in sorted(latest.items())])

    # per process: each slot's worker, then the master (the unlabelled series are
    # the server's: every process, including a worker draining beside its successor)
    own = figures() if master else None
    each = [(f'{{worker="{slot}"}}', snap.get("process", {}))
            for slot, snap in sorted(latest.items())]
    every = [snap.get("process", {}) for _, snap in live]
    if own is not None:
        each.append(('{worker="master"}', own))
        every.append(own)
    metric("process_id", "gauge", "The process id of each worker and of the master.",
           [(labels, figures["pid"]) for labels, figures in each if "pid" in figures])
    for key, name, kind, text in PROCESS:
        samples = [(labels, figures[key]) for labels, figures in each if key in figures]
        if not samples:
            continue  # not measured here (no /proc)
        if key == "cpu":
            whole: float = total["cpu"] + (own or {}).get("cpu", 0.0)
        elif key == "start":
            whole = min(figures[key] for figures in every if key in figures)
        else:
            whole = sum(figures[key] for figures in every if key in figures)
        metric(name, kind, text, [("", whole), *samples], prefix="")
    return "".join(out)


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if value == float("inf"):
        return "+Inf"
    # a microsecond is finer than anything measured here, and this drops the noise
    # of float sums (0.30000000000000004)
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _bound(value: float) -> str:
    # a bucket's bound is a label: written as before, so that the series stay the same
    return "+Inf" if value == float("inf") else repr(value)


def _label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
