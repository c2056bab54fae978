"""A worker process's life: its signals first, then its event loop and sockets until
it is told to stop, replaced, or finds its master gone."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from . import logs
from .config import Options
from .metrics import Board, Endpoint, Totals, published, render
from .protocols.exchange import Exchange
from .server import AdapterFactory, StartupFailed, Worker, new_event_loop
from .signals import FORK_BLOCKED, REOPEN, REOPEN_WORKER

logger = logging.getLogger(logs.SERVER)
#: a worker's exit code when the application's startup failed: never restarted
STARTUP_FAILED = 3
#: what the master sends a worker it replaces (a reload, recycling): stop accepting,
#: drain, and close WebSockets with 1012 (service restart) rather than 1001
REPLACED = signal.SIGUSR1
#: what stops a worker: SIGTERM, SIGINT and REPLACED gracefully, SIGQUIT at once
STOPS = (signal.SIGINT, signal.SIGTERM, REPLACED, signal.SIGQUIT)
#: what only the master acts on (a worker ignores them)
MASTERS = tuple(sig for sig in FORK_BLOCKED if sig not in (*STOPS, REOPEN_WORKER))
PR_SET_PDEATHSIG = 1
#: how often a worker publishes its counters (and measures its loop's lag)
PUBLISH_EVERY = 0.5
#: how often a single-process server's metrics endpoint looks at its clocks
ENDPOINT_TICK = 0.25


def run_worker(factory: AdapterFactory, options: Options,
               sockets: list[tuple[socket.socket, Options]], lock: Any,
               ready: Callable[[], None] | None = None, *, master: int | None = None,
               recycle: Callable[[str], None] | None = None, beat: Any = None,
               board: Board | None = None) -> None:
    """A worker's whole life: its loop, its sockets, until SIGINT or SIGTERM. With a
    `master`, the worker stops at once (not draining for shutdown_timeout) when the
    master is gone, so that nothing of an old server keeps serving. Its counters go
    to `board` for the master's metrics endpoint; without a master, this process
    serves the endpoint itself."""
    # The stop signals wait (blocked) until the loop runs and has its handlers:
    # uvloop acts on a signal that came between add_signal_handler() and the
    # loop's start only once another one comes. In a worker they are blocked since
    # the fork (signals.blocked): one sent while it started is acted on then.
    waiting = (*STOPS, signal.SIGHUP, REOPEN_WORKER)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, waiting)
    loop = new_event_loop(options.loop)
    asyncio.set_event_loop(loop)
    worker = Worker(factory, options, loop, lock)
    endpoint = None
    if options.metrics and board is None:
        endpoint = Endpoint(options.metrics_address,
                            lambda: render([(0, published(worker.snapshot()))], Totals(), 1,
                                           master=False))
        loop.add_reader(endpoint.fileno(), endpoint.poll, 0)
        logger.info("metrics on http://%s/metrics", endpoint.url)
        ticking = endpoint

        def tick_endpoint() -> None:
            # its clocks, and accepting again after a pause, need no event to come
            ticking.poll(0)
            loop.call_later(ENDPOINT_TICK, tick_endpoint)
        loop.call_later(ENDPOINT_TICK, tick_endpoint)
    if worker.counters is not None:
        counters = worker.counters
        expected = [loop.time() + PUBLISH_EVERY]

        def publish() -> None:
            # how late this timer runs is how long the loop was busy elsewhere
            counters.loop_lag = max(loop.time() - expected[0], 0.0)
            if board is not None:
                board.write(published(worker.snapshot()))
            expected[0] = loop.time() + PUBLISH_EVERY
            loop.call_later(PUBLISH_EVERY, publish)
        loop.call_later(PUBLISH_EVERY, publish)
    if recycle is not None:
        asked: list[str] = []

        def replace_me(why: str) -> None:
            if not asked:  # once: the master starts a successor, then stops this one
                asked.append(why)
                recycle(why)
        for state in worker.states:
            state.recycle = replace_me
        if options.limit_memory:
            def check_memory() -> None:
                rss = memory_kib()
                if rss > options.limit_memory:
                    replace_me(f"uses {rss} KiB, over limit_memory ({options.limit_memory})")
                else:
                    loop.call_later(1.0, check_memory)
            loop.call_later(1.0, check_memory)

    interrupts: list[int] = []

    def reopen_alone() -> None:
        logs.reopen()
        logger.info("log files reopened (SIGUSR1)")

    def on_signal(signum: int = signal.SIGTERM) -> None:
        # SIGTERM and SIGUSR1 stop gracefully however often they come (systemd
        # signals every process of a unit, and the master forwards its own): only
        # a second SIGINT (CTRL+C again) or SIGQUIT forces the stop
        if signum == signal.SIGINT:
            interrupts.append(signum)
        if master is not None and os.getppid() != master:
            logger.warning("the master process is gone: stopping now")
        elif signum != signal.SIGQUIT and len(interrupts) < 2:
            if not worker.stopping.done():
                # (under a master, the master says that CTRL+C again forces)
                worker.stop(restarting=signum == REPLACED,
                            interrupted=signum == signal.SIGINT and master is None)
            return
        while not worker.forced:
            worker.stop()

    def listen() -> None:  # the loop's first callback
        for sig in STOPS:
            loop.add_signal_handler(sig, on_signal, sig)
        loop.add_signal_handler(REOPEN_WORKER, logs.reopen)
        if master is None:
            # one process: SIGUSR1 is the user's, to reopen the log files (as the
            # master's; "replaced" comes only from a master)
            loop.add_signal_handler(REOPEN, reopen_alone)
            # one process, no master to start a successor: SIGHUP (systemctl
            # reload) must not end the server, as its default action would
            loop.add_signal_handler(signal.SIGHUP, logger.warning,
                                    "SIGHUP: nothing reloaded: a server of one process "
                                    "(workers 0) cannot replace itself; run it with "
                                    "workers (--workers 1 or more) to reload on SIGHUP")
        signal.pthread_sigmask(signal.SIG_UNBLOCK, waiting)
    loop.call_soon(listen)
    if master is not None:
        def check_parent() -> None:
            if os.getppid() != master:
                on_signal()
            else:
                loop.call_later(1.0, check_parent)
        loop.call_later(1.0, check_parent)
    if beat is not None and options.worker_timeout:
        # The master reads the beat; should the loop stop ticking, a thread of this
        # worker logs the request whose handler blocks it, with its stack, before the
        # master kills the worker. faulthandler is the fallback for code that holds
        # the GIL all along (the thread cannot run then): it writes every thread's
        # stack to stderr.
        stuck = max(options.worker_timeout - 0.5, 0.5)
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
                         args=(beat, max(options.worker_timeout - 1.0, 0.25),
                               threading.get_ident())).start()
    try:
        loop.run_until_complete(worker.serve(sockets, ready))
    except StartupFailed as exc:
        logger.error("application startup failed: %s", exc)
        raise SystemExit(STARTUP_FAILED) from None
    finally:
        if board is not None and worker.counters is not None:
            board.write(published(worker.snapshot()))  # the last word: what a stop counted
        if endpoint is not None:
            loop.remove_reader(endpoint.fileno())
            endpoint.close()
        loop.close()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def child(factory: AdapterFactory, renew: Callable[[], AdapterFactory] | None,
          options: Options, sockets: list[tuple[socket.socket, Options]],
          foreign: list[Any], lock: Any, messages: Any, beat: Any = None,
          board: Board | None = None) -> None:
    """A forked worker. `renew`, after a reload, imports the application's code again
    and makes the factory from it; `foreign` are the sockets of other slots and the
    master's (its metrics endpoint's too), which this worker must not keep open."""
    # First of all, while the master's signals are still blocked (signals.blocked):
    # the master's inbox is no longer written to, and its handlers, inherited by
    # the fork, never run here. Those of its business are ignored; the stop
    # signals stay blocked until the worker's loop runs (run_worker), so that one
    # sent while the worker starts is acted on then.
    signal.set_wakeup_fd(-1)
    master = os.getppid()
    for sig in MASTERS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTERS)
    _die_with(master)
    for sock in foreign:
        sock.close()
    if renew is not None:
        try:
            factory = renew()
        except Exception as exc:
            logger.error("reloading the application failed: %s", exc)
            raise SystemExit(STARTUP_FAILED) from None
    pid = os.getpid()
    run_worker(factory, options, sockets, lock, lambda: messages.put(("ready", pid, "")),
               master=master,
               recycle=lambda why: messages.put(("recycle", pid, why)), beat=beat,
               board=board)


def _watch_loop(beat: Any, after: float, main: int) -> None:
    """Logs, once per stall, what blocks the worker's event loop (see run_worker).
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


def blocking_request(frame: Any) -> tuple[str, list[traceback.FrameSummary]]:
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


def _task_request(frames: list[Any]) -> tuple[Any, int] | None:
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


def _die_with(master: int) -> None:
    """Asks Linux for a SIGTERM when the master dies (elsewhere the worker checks
    its parent; see run_worker)."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != master:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
