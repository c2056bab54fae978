"""This process's figures as Prometheus's process collectors report them (the
process_* series): CPU time, memory, descriptors, start time. A worker reads them
with each snapshot it publishes (twice a second), the master when it is scraped;
one read costs about 14 µs (one read of /proc/self/stat, one stat of
/proc/self/fd, getrlimit). From /proc on Linux; where it is missing, only what the
portable calls give: CPU time and the descriptor limit."""

from __future__ import annotations

import contextlib
import os
import resource
import time
from typing import Any

PROC = "/proc/self/"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGESIZE")
#: before Linux 6.2, descriptors are counted by listing them (about 0.7 µs each: 7 ms
#: at 10,000 connections, on the worker's loop); such a count serves this long
LISTING_KEPT = 15.0

# Worked out once per process (a forked worker finds its master's: hence the pid)
#: (pid, start time)
_start: tuple[int, float] | None = None
#: (pid, when, descriptors) of the last listing
_listed: tuple[int, float, int] | None = None


def figures() -> dict[str, Any]:
    """pid, cpu (seconds), rss and vms (bytes), fds, max_fds, start (seconds since
    the epoch): those that can be read here."""
    out: dict[str, Any] = {"pid": os.getpid()}
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY:
        out["max_fds"] = soft
    try:
        fd = os.open(PROC + "stat", os.O_RDONLY)
        try:
            stat = os.read(fd, 4096)
        finally:
            os.close(fd)
        # past the command's name, which may hold spaces and parentheses itself
        fields = stat[stat.rindex(b")") + 2:].split()
        out["cpu"] = (int(fields[11]) + int(fields[12])) / TICKS
        out["vms"] = int(fields[20])
        out["rss"] = int(fields[21]) * PAGE
        out["start"] = _started(int(fields[19]))
    except (OSError, ValueError, IndexError):
        times = os.times()
        out["cpu"] = times.user + times.system
    with contextlib.suppress(OSError):
        out["fds"] = _open_fds()
    return out


def _started(ticks: int) -> float:
    """When this process started, from its start in clock ticks since boot: the
    clock's time less the time since then, exact to a tick (/proc/stat's btime is
    whole seconds), and worked out once, so that it holds still should the clock be
    set."""
    global _start
    pid = os.getpid()
    if _start is None or _start[0] != pid:
        since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        _start = (pid, round(time.time() - since_boot + ticks / TICKS, 2))
    return _start[1]


def _open_fds() -> int:
    # Linux 6.2 and later tell the count as the directory's size, at no cost
    size = os.stat(PROC + "fd").st_size
    if size:
        return size
    global _listed
    pid, now = os.getpid(), time.monotonic()
    if _listed is None or _listed[0] != pid or now - _listed[1] > LISTING_KEPT:
        # the listing holds a descriptor of its own, which is in it
        _listed = (pid, now, len(os.listdir(PROC + "fd")) - 1)
    return _listed[2]
