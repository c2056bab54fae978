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
import time
from collections.abc import Callable
from typing import Any

from . import logs
from .config import Options
from .server import AdapterFactory, StartupFailed, Worker, new_event_loop

logger = logging.getLogger(logs.SERVER)
#: a worker's exit code when the application's startup failed: never restarted
STARTUP_FAILED = 3
#: what the master sends a worker it replaces (a reload, recycling): stop accepting,
#: drain, and close WebSockets with 1012 (service restart) rather than 1001
REPLACED = signal.SIGUSR1
PR_SET_PDEATHSIG = 1


def run_worker(factory: AdapterFactory, options: Options,
               sockets: list[tuple[socket.socket, Options]], lock: Any,
               ready: Callable[[], None] | None = None, *, early: list[int] | None = None,
               master: int | None = None,
               recycle: Callable[[str], None] | None = None, beat: Any = None) -> None:
    """A worker's whole life: its loop, its sockets, until SIGINT or SIGTERM. With a
    `master`, the worker stops at once (not draining for shutdown_timeout) when the
    master is gone, so that nothing of an old server keeps serving."""
    loop = new_event_loop(options.loop)
    asyncio.set_event_loop(loop)
    worker = Worker(factory, options, loop, lock)
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

    def on_signal(signum: int = signal.SIGTERM) -> None:
        if master is not None and os.getppid() != master:
            logger.warning("the master process is gone: stopping now")
            worker.stop()
        worker.stop(restarting=signum == REPLACED)
    for sig in (signal.SIGINT, signal.SIGTERM, REPLACED):
        loop.add_signal_handler(sig, on_signal, sig)
    if master is not None:
        def check_parent() -> None:
            if os.getppid() != master:
                on_signal()
            else:
                loop.call_later(1.0, check_parent)
        loop.call_later(1.0, check_parent)
    if beat is not None and options.worker_timeout:
        # The master reads the beat; should the loop stop ticking, faulthandler
        # writes every thread's stack (the stuck handler's) to stderr before the
        # master kills this worker.
        stuck = max(options.worker_timeout - 0.5, 0.5)

        def tick() -> None:
            beat.value = time.monotonic()
            faulthandler.dump_traceback_later(stuck, exit=False)
            loop.call_later(0.5, tick)
        tick()
    for signum in early or ():
        on_signal(signum)  # a signal that came during the start: not swallowed
    try:
        loop.run_until_complete(worker.serve(sockets, ready))
    except StartupFailed as exc:
        logger.error("application startup failed: %s", exc)
        raise SystemExit(STARTUP_FAILED) from None
    finally:
        loop.close()


def child(factory: AdapterFactory, renew: Callable[[], AdapterFactory] | None,
          options: Options, sockets: list[tuple[socket.socket, Options]],
          foreign: list[socket.socket], lock: Any, messages: Any, beat: Any = None) -> None:
    """A forked worker. `renew`, after a reload, imports the application's code again
    and makes the factory from it; `foreign` are the sockets of other slots and the
    master's, which this worker must not keep open."""
    # First of all: a signal that comes while the worker starts is kept for it (the
    # master's own handlers, inherited by the fork, must never run here).
    master = os.getppid()
    early: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM, REPLACED):
        signal.signal(sig, lambda signum, _frame: early.append(signum))
    for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)  # the master's business
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
               early=early, master=master,
               recycle=lambda why: messages.put(("recycle", pid, why)), beat=beat)


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
