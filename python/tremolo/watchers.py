"""What watches a worker while it serves, each on its own timer of the worker's loop:
its counters published for the master's metrics (or served by itself, with one
process), its memory against limit_memory, its parent, its heartbeat for
worker_timeout, and the signals it obeys. worker_process.run_worker starts those that
apply."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Protocol

from . import logs
from .metrics import Board, Endpoint, Totals, published, render
from .protocols.exchange import Exchange
from .server import Worker
from .signals import REOPEN, REPLACED

logger = logging.getLogger(logs.SERVER)
#: what stops a worker: SIGTERM, SIGINT and REPLACED gracefully, SIGQUIT at once
STOPS = (signal.SIGINT, signal.SIGTERM, REPLACED, signal.SIGQUIT)
#: how often a worker publishes its counters (and measures its loop's lag)
PUBLISH_EVERY = 0.5
#: how often a single-process server's metrics endpoint looks at its clocks
ENDPOINT_TICK = 0.25


class Heartbeat(Protocol):
    """The time of the worker loop's last tick (monotonic), in memory the master
    reads (a multiprocessing Value)."""

    value: float


def publish_counters(loop: asyncio.AbstractEventLoop, worker: Worker,
                     board: Board | None) -> None:
    """Twice a second: how late the timer ran (the loop's lag), and the counters
    written to the master's `board`."""
    counters = worker.counters
    if counters is None:
        return
    expected = loop.time() + PUBLISH_EVERY

    def publish() -> None:
        nonlocal expected
        # how late this timer runs is how long the loop was busy elsewhere
        counters.loop_lag = max(loop.time() - expected, 0.0)
        if board is not None:
            board.write(published(worker.snapshot()))
        expected = loop.time() + PUBLISH_EVERY
        loop.call_later(PUBLISH_EVERY, publish)
    loop.call_later(PUBLISH_EVERY, publish)


def serve_metrics(loop: asyncio.AbstractEventLoop, worker: Worker,
                  address: tuple[str, int]) -> Endpoint:
    """A server of one process serves its own metrics endpoint, on its loop."""
    endpoint = Endpoint(address, lambda: render([(0, published(worker.snapshot()))],
                                                Totals(), 1, master=False))
    loop.add_reader(endpoint.fileno(), endpoint.poll, 0)
    logger.info("metrics on http://%s/metrics", endpoint.url)

    def tick() -> None:
        # its clocks, and accepting again after a pause, need no event to come
        endpoint.poll(0)
        loop.call_later(ENDPOINT_TICK, tick)
    loop.call_later(ENDPOINT_TICK, tick)
    return endpoint


#: asks the master to replace this worker: (cause, why for the log)
ReplaceMe = Callable[[str, str], None]


def ask_once(worker: Worker, recycle: ReplaceMe) -> ReplaceMe:
    """What asks the master, once, for this worker to be replaced: it starts a
    successor, then stops this one. The listeners' states ask when max_requests is
    served."""
    asked = False

    def replace_me(cause: str, why: str) -> None:
        nonlocal asked
        if not asked:
            asked = True
            recycle(cause, why)
    for state in worker.states:
        state.recycle = lambda why: replace_me("max_requests", why)
    return replace_me


def watch_memory(loop: asyncio.AbstractEventLoop, limit_kib: int, replace_me: ReplaceMe
                 ) -> None:
    """Once a second: past `limit_kib` of resident memory, asks to be replaced."""
    def check() -> None:
        rss = memory_kib()
        if rss > limit_kib:
            replace_me("limit_memory", f"uses {rss} KiB, over limit_memory ({limit_kib})")
        else:
            loop.call_later(1.0, check)
    loop.call_later(1.0, check)


def watch_parent(loop: asyncio.AbstractEventLoop, master: int,
                 orphaned: Callable[[], None]) -> None:
    """Once a second: a master gone (elsewhere than Linux, where the kernel says so
    with SIGTERM) calls `orphaned`."""
    def check() -> None:
        if os.getppid() != master:
            orphaned()
        else:
            loop.call_later(1.0, check)
    loop.call_later(1.0, check)


def heartbeat(loop: asyncio.AbstractEventLoop, beat: Heartbeat, worker_timeout: float
              ) -> None:
    """Twice a second the loop writes `beat`, which the master reads; should the loop
    stop ticking, a thread of this worker logs the request whose handler blocks it,
    with its stack, before the master kills the worker. faulthandler is the fallback
    for code that holds the GIL all along (the thread cannot run then): it writes
    every thread's stack to stderr."""
    stuck = max(worker_timeout - 0.5, 0.5)
    # Arming faulthandler starts a thread (on the worker's core, in the way of
    # requests), so it is armed again only every `rearm` seconds: it then fires
    # after a stall of at least three quarters of its time, still before the
    # master's deadline.
    rearm = max(stuck / 4, 0.5)
    armed = -rearm

    def tick() -> None:
        nonlocal armed
        now = beat.value = time.monotonic()
        if now - armed >= rearm:
            faulthandler.dump_traceback_later(stuck, exit=False)
            armed = now
        loop.call_later(0.5, tick)
    tick()
    threading.Thread(target=_watch_loop, name="tremolo-loop-watch", daemon=True,
                     args=(beat, max(worker_timeout - 1.0, 0.25),
                           threading.get_ident())).start()


class WorkerSignals:
    """The signals a worker obeys, handled on its loop: the stops (SIGTERM and,
    from its master, REPLACED gracefully however often they come, a second SIGINT or
    SIGQUIT at once) and REOPEN (the log files). A server of one process has no
    master to replace it: SIGHUP and SIGUSR2 are said to do nothing there (their
    default actions would end it). They wait, blocked, until the loop runs
    (`install`, its first callback): uvloop acts on a signal that came between
    add_signal_handler() and the loop's start only once another one comes."""

    #: what is blocked from the start until `install`
    WAITING = (*STOPS, signal.SIGHUP, REOPEN)

    def __init__(self, loop: asyncio.AbstractEventLoop, worker: Worker,
                 master: int | None) -> None:
        self.loop = loop
        self.worker = worker
        self.master = master
        self.interrupts = 0

    def install(self) -> None:
        loop = self.loop
        for sig in STOPS:
            if sig != REPLACED or self.master is not None:
                loop.add_signal_handler(sig, self.stop, sig)
        # (a worker says nothing when all went well: the master said it for all)
        loop.add_signal_handler(REOPEN, logs.reopen_said, self.master is None)
        if self.master is None:
            # one process, no master to start a successor: SIGHUP (systemctl
            # reload) must not end the server, as its default action would
            loop.add_signal_handler(signal.SIGHUP, logger.warning,
                                    "SIGHUP: nothing reloaded: a server of one process "
                                    "(workers 0) cannot replace itself; run it with "
                                    "workers (--workers 1 or more) to reload on SIGHUP")
            loop.add_signal_handler(REPLACED, logger.warning,
                                    "SIGUSR2: nothing done: it is what a master sends a "
                                    "worker it replaces, and this server has none")
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self.WAITING)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        # SIGTERM and REPLACED stop gracefully however often they come (systemd
        # signals every process of a unit, and the master forwards its own): only
        # a second SIGINT (CTRL+C again) or SIGQUIT forces the stop
        worker, master = self.worker, self.master
        self.interrupts += signum == signal.SIGINT
        if master is not None and os.getppid() != master:
            logger.warning("the master process is gone: stopping now")
        elif signum != signal.SIGQUIT and self.interrupts < 2:
            if not worker.stopping.done():
                # (under a master, the master says that CTRL+C again forces)
                worker.stop(restarting=signum == REPLACED,
                            interrupted=signum == signal.SIGINT and master is None)
            return
        while not worker.forced:
            worker.stop()


def _watch_loop(beat: Heartbeat, after: float, main: int) -> None:
    """Logs, once per stall, what blocks the worker's event loop (see heartbeat).
    It sleeps until the loop's last beat is `after` seconds old, not in short
    steps: each wake-up takes the GIL and the core from the requests."""
    reported = 0.0
    while True:
        last = beat.value
        left = last + after - time.monotonic()
        if left > 0 or last == reported:
            time.sleep(max(left, 0.1))  # (a stall already reported: look again soon)
            continue
        reported = last
        what, stack = blocking_request(sys._current_frames().get(main))
        logger.error("the event loop has not run for %.1fs: %s blocks it (worker_timeout "
                     "replaces this worker); where it is:\n%s", time.monotonic() - last,
                     what, "".join(traceback.format_list(stack)))
        faulthandler.cancel_dump_traceback_later()


def blocking_request(frame: FrameType | None) -> tuple[str, list[traceback.FrameSummary]]:
    """What runs in `frame`: ('the handler of GET /path', the handler's frames, from
    the server's call into it), or ('code outside any request handler', every frame).
    The request is the one the outermost frame of an application adapter holding an
    exchange (`ex`) serves (the protocol's own frames, which start it, are left out),
    or, where no such frame is (a plain native route runs its handler from Rust), the
    one whose task runs the outermost frame that is a task's coroutine."""
    frames = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()  # outermost first
    stack = traceback.StackSummary.extract((f, f.f_lineno) for f in frames)
    found = next(((ex, depth) for depth, f in enumerate(frames)
                  if isinstance(ex := f.f_locals.get("ex"), Exchange)
                  and not f.f_globals.get("__name__", "").startswith("tremolo.protocols")),
                 None)
    if found is None:
        found = _task_request(frames)
    if found is None:
        return "code outside any request handler", list(stack)
    ex, depth = found
    head = ex.head
    return (f"the handler of {head.method.decode('latin-1')} "
            f"{head.target.decode('latin-1')}", list(stack[depth:]))


def _task_request(frames: list[FrameType]) -> tuple[Exchange, int] | None:
    """(the exchange, the depth of its handler's frame) for the request task whose
    coroutine runs in `frames`. The loop is blocked inside that frame, so the
    tasks read here do not change under us."""
    current = getattr(asyncio.tasks, "_current_tasks", {})
    for task in list(current.values()):
        ex = getattr(task, "arg", None)
        coro_frame = getattr(task.get_coro(), "cr_frame", None)
        if isinstance(ex, Exchange):
            for depth, f in enumerate(frames):
                if f is coro_frame:
                    return ex, depth
    return None


def memory_kib() -> int:
    """This process's resident memory in KiB (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE") // 1024
    except (OSError, ValueError, IndexError):
        return 0
