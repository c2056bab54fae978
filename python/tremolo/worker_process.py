"""A worker process's life: its signals first, then its event loop and sockets until
it is told to stop, replaced, or finds its master gone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from . import logs, watchers
from .config import Options
from .locks import ServerLock
from .metrics import Board, published
from .server import AdapterFactory, StartupFailed, Worker, new_event_loop
from .signals import FORK_BLOCKED, REOPEN, REPLACED
from .watchers import STOPS

logger = logging.getLogger(logs.SERVER)
#: a worker's exit code when the application's startup failed: never restarted
STARTUP_FAILED = 3
#: what only the master acts on (a worker ignores them)
MASTERS = tuple(sig for sig in FORK_BLOCKED if sig not in (*STOPS, REOPEN))
PR_SET_PDEATHSIG = 1
__all__ = ["REPLACED", "STARTUP_FAILED", "Message", "Recycle", "Serving", "child",
           "run_worker"]


def run_worker(factory: AdapterFactory, options: Options,
               sockets: list[tuple[socket.socket, Options]], lock: ServerLock | None,
               ready: Callable[[], None] | None = None, *, master: int | None = None,
               recycle: watchers.ReplaceMe | None = None,
               beat: watchers.Heartbeat | None = None, board: Board | None = None) -> None:
    """A worker's whole life: its loop, its sockets and its watchers (watchers.py),
    until it is told to stop. With a `master`, the worker stops at once (not draining
    for shutdown_timeout) when the master is gone, so that nothing of an old server
    keeps serving. Its counters go to `board` for the master's metrics endpoint;
    without a master, this process serves the endpoint itself."""
    # The signals wait (blocked) until the loop runs and has its handlers (see
    # WorkerSignals). In a worker they are blocked since the fork (signals.blocked):
    # one sent while it started is acted on then.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, watchers.WorkerSignals.WAITING)
    loop = new_event_loop(options.loop)
    asyncio.set_event_loop(loop)
    worker = Worker(factory, options, loop, lock)
    endpoint = watchers.serve_metrics(loop, worker, options.metrics_address) \
        if options.metrics and board is None else None
    watchers.publish_counters(loop, worker, board)
    if recycle is not None:
        replace_me = watchers.ask_once(worker, recycle)
        if options.limit_memory:
            watchers.watch_memory(loop, options.limit_memory, replace_me)
    signals = watchers.WorkerSignals(loop, worker, master)
    loop.call_soon(signals.install)  # the loop's first callback
    if master is not None:
        watchers.watch_parent(loop, master, signals.stop)
    if beat is not None and options.worker_timeout:
        watchers.heartbeat(loop, beat, options.worker_timeout)
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
          foreign: list[Closeable], lock: ServerLock | None, messages: Outbox,
          beat: watchers.Heartbeat | None = None, board: Board | None = None) -> None:
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
    run_worker(factory, options, sockets, lock, lambda: messages.put(Serving(pid)),
               master=master,
               recycle=lambda cause, why: messages.put(Recycle(pid, cause, why)),
               beat=beat, board=board)


@dataclass(frozen=True)
class Serving:
    """A worker's word to the master: it serves."""

    pid: int


@dataclass(frozen=True)
class Recycle:
    """A worker's word to the master: replace me (start a successor, then stop me),
    because of `cause` (max_requests, limit_memory: the metrics' restart cause),
    `why` saying it for the log."""

    pid: int
    cause: str
    why: str


#: what workers tell the master
Message = Serving | Recycle


class Closeable(Protocol):
    """What a new worker closes of the master's (other slots' sockets, the master's
    selector, its metrics endpoint's sockets)."""

    def close(self) -> None: ...


class Outbox(Protocol):
    """Where a worker's messages go (the master's multiprocessing queue)."""

    def put(self, message: Message) -> None: ...


def _die_with(master: int) -> None:
    """Asks Linux for a SIGTERM when the master dies (elsewhere the worker checks
    its parent: watchers.watch_parent)."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != master:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
