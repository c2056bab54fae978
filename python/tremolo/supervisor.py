"""The master process: binds the listeners, starts and watches the workers, and
stops them all on SIGINT or SIGTERM. It knows processes and sockets, not HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import faulthandler
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import logs
from ._core import __version__
from .config import ConfigError, Options
from .server import (
    AdapterFactory,
    Listener,
    StartupFailed,
    Worker,
    adopt,
    bind,
    bind_unix,
    new_event_loop,
    ssl_context,
)

logger = logging.getLogger(logs.SERVER)
#: a worker's exit code when the application's startup failed: never restarted
STARTUP_FAILED = 3
#: the wait before restarting a worker that died: doubling from the first to the
#: cap while deaths follow each other, back to the first once a worker has served
#: for RESET_AFTER seconds
BACKOFF_FIRST = 0.1
BACKOFF_CAP = 10.0
RESET_AFTER = 30.0
PR_SET_PDEATHSIG = 1


def listeners(options: Options, extra: list[tuple[str | None, int | str, dict[str, Any]]],
              primary: bool = True) -> list[Listener]:
    out = [Listener(options.host, options.port, None, options)] if primary else []
    for host, port, opts in extra:
        base = {k: v for k, v in vars(options).items() if k != "extra"}
        merged = Options.from_kwargs({**base, **options.extra, **opts,
                                      "host": host or options.host})
        if isinstance(port, int):
            out.append(Listener(merged.host, port, None, merged))
        elif port.startswith("fd:"):
            out.append(Listener(None, None, None, merged, fd=int(port[3:])))
        else:
            out.append(Listener(None, None, port, merged))
    return out


def open_sockets(specs: list[Listener], worker_num: int) -> list[tuple[socket.socket, Listener]]:
    """Binds every listener once here. With SO_REUSEPORT and worker processes, the
    master's TCP socket only reserves the address (it never listens, so the kernel
    sends it no connection); each worker binds its own. Otherwise the master
    listens and the workers share its socket."""
    out = []
    try:
        for spec in specs:
            opts = spec.options
            if spec.fd is not None:
                out.append((adopt(spec.fd), spec))  # shared by the workers as it is
                continue
            if spec.path is not None:
                out.append((bind_unix(spec.path, opts.backlog, opts.uds_mode), spec))
                continue
            per_worker = worker_num > 0 and opts.reuse_port
            if spec.port and opts.reuse_port and not opts.share_port:
                # SO_REUSEPORT is for our own workers: a bind without it fails when
                # anyone (another tremolo included) listens there already
                bind(spec.host, spec.port, reuse_port=False, backlog=None).close()
            sock = bind(spec.host, spec.port or 0, reuse_port=opts.reuse_port,
                        backlog=None if per_worker else opts.backlog)
            spec.port = sock.getsockname()[1]
            out.append((sock, spec))
    except OSError as exc:
        for sock, _ in out:
            sock.close()
        why = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            why = "address already in use (by another program, or another tremolo"
            why += ")" if spec.path is not None else \
                "; --share-port shares it with another tremolo on purpose)"
        raise ConfigError(f"cannot listen on {spec.display}: {why}") from exc
    return out


def worker_sockets(opened: list[tuple[socket.socket, Listener]], worker_num: int
                   ) -> list[tuple[socket.socket, Options]]:
    """The listening sockets one worker serves."""
    out = []
    for sock, spec in opened:
        if spec.path is None and spec.fd is None and worker_num > 0 \
                and spec.options.reuse_port:
            own = bind(spec.host, spec.port or 0, reuse_port=True, backlog=spec.options.backlog)
            out.append((own, spec.options))
        else:
            out.append((sock, spec.options))
    return out


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

    def on_signal() -> None:
        if master is not None and os.getppid() != master:
            logger.warning("the master process is gone: stopping now")
            worker.stop()
        worker.stop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
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
    for _ in early or ():
        worker.stop()  # a signal that came during the start: not swallowed
    try:
        loop.run_until_complete(worker.serve(sockets, ready))
    except StartupFailed as exc:
        logger.error("application startup failed: %s", exc)
        raise SystemExit(STARTUP_FAILED) from None
    finally:
        loop.close()


def _child(factory: AdapterFactory, options: Options,
           opened: list[tuple[socket.socket, Listener]], lock: Any, ready: Any,
           beat: Any = None) -> None:
    # First of all: a signal that comes while the worker starts is kept for it (the
    # master's own handlers, inherited by the fork, must never run here).
    master = os.getppid()
    early: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: early.append(signum))
    for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)  # the master's business
    _die_with(master)
    sockets = worker_sockets(opened, options.worker_num)
    for sock, spec in opened:
        if spec.path is None and spec.fd is None and options.reuse_port:
            sock.close()  # the master's reservation is not ours to keep
    pid = os.getpid()
    run_worker(factory, options, sockets, lock, lambda: ready.put(("ready", pid, "")),
               early=early, master=master,
               recycle=lambda why: ready.put(("recycle", pid, why)), beat=beat)


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


def serve(factory: AdapterFactory, options: Options,
          extra: list[tuple[str | None, int | str, dict[str, Any]]], lock: Any,
          primary: bool = True, what: str = "") -> None:
    """Serves until SIGINT or SIGTERM. `what` names the application for the message
    that says the server is ready."""
    try:
        logs.configure("DEBUG" if options.debug else options.log_level, options.log_fmt,
                       options.log_config)
    except ValueError as exc:
        raise ConfigError(f"log_config: {exc}") from None
    if options.access_log:
        try:
            logs.check_format(options.access_log_format)
        except ValueError as exc:
            raise ConfigError(f"access_log_format: {exc}") from None
    new_event_loop(options.loop).close()  # a loop that cannot load fails here, not in workers
    specs = listeners(options, extra, primary)
    for spec in specs:
        ssl_context(spec.options)  # certificates that do not load fail here too
    opened = open_sockets(specs, options.worker_num)
    where = ", ".join(spec.display for _, spec in opened)

    def announce(pids: list[int]) -> None:
        workers = (f"in this process (pid {pids[0]})" if options.worker_num == 0 else
                   f"{len(pids)} worker{'s' if len(pids) > 1 else ''} (pid "
                   f"{', '.join(map(str, sorted(pids)))})")
        logger.info("tremolo %s serving %son %s, %s loop, %s; press CTRL+C to quit",
                    __version__, f"{what} " if what else "", where, options.loop, workers)
    try:
        if options.worker_num == 0:
            run_worker(factory, options, [(s, spec.options) for s, spec in opened], lock,
                       lambda: announce([os.getpid()]))
            return
        code = Supervisor(factory, options, opened, lock, announce).run()
        if code:
            sys.exit(code)
    finally:
        for sock, spec in opened:
            sock.close()
            if spec.path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(spec.path)


class Supervisor:
    def __init__(self, factory: AdapterFactory, options: Options,
                 opened: list[tuple[socket.socket, Listener]], lock: Any,
                 announce: Callable[[list[int]], None] = lambda pids: None) -> None:
        self.factory = factory
        self.announce = announce
        #: workers put their pid here once they serve
        self.ready = multiprocessing.get_context("fork").SimpleQueue()
        self.serving: set[int] = set()
        self.announced = False
        self.options = replace(options)
        self.opened = opened
        self.lock = lock
        self.ctx = multiprocessing.get_context("fork")
        self.workers: dict[int, tuple[Any, float]] = {}
        self.stopping = False
        #: slot -> when a worker that died is started again (backoff)
        self.restart_at: dict[int, float] = {}
        #: slot -> deaths in a row (reset once a worker served for RESET_AFTER)
        self.deaths: dict[int, int] = {}
        #: slots stopped on purpose (SIGTTOU, replaced): not restarted
        self.retired: set[int] = set()
        #: new slot -> pid of the worker it replaces once it serves (max_requests...)
        self.successors: dict[int, int] = {}
        #: pid -> when its event loop last ticked (time.monotonic, shared memory)
        self.beats: dict[int, Any] = {}
        self.failed = 0

    def spawn(self, slot: int) -> None:
        beat = self.ctx.Value("d", 0.0, lock=False)
        proc = self.ctx.Process(target=_child, name=f"tremolo-worker-{slot}",
                                args=(self.factory, self.options, self.opened, self.lock,
                                      self.ready, beat))
        proc.start()
        assert proc.pid is not None
        self.workers[slot] = (proc, time.monotonic())
        self.beats[proc.pid] = beat

    def check_beats(self) -> None:
        """A worker that serves and whose loop has not ticked for worker_timeout is
        stuck (a handler blocking the loop): it is killed, and restarted as any
        worker that died. It wrote the stack of the stuck code to stderr itself."""
        limit = self.options.worker_timeout
        if not limit or self.stopping:
            return
        now = time.monotonic()
        for proc, _ in list(self.workers.values()):
            beat = self.beats.get(proc.pid)
            if beat is None or proc.pid not in self.serving or not beat.value:
                continue
            if now - beat.value > limit and proc.is_alive():
                logger.error("worker %d has not answered for %.0fs (worker_timeout): a "
                             "handler blocks its event loop (the stack is above); "
                             "replacing it", proc.pid, now - beat.value)
                proc.kill()

    def stop(self, signum: int, _frame: Any) -> None:
        if not self.stopping:
            self.stopping = True
            logger.info("stopping %d worker(s)", len(self.workers))
        elif signum == signal.SIGINT:
            logger.info("forcing the workers to stop")
        for proc, _ in self.workers.values():
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)  # a second one forces

    def more(self, _signum: int, _frame: Any) -> None:
        """SIGTTIN: one worker more."""
        if self.stopping:
            return
        self.options.worker_num += 1
        logger.info("adding a worker (SIGTTIN): %d now", self.options.worker_num)
        self.spawn(max([*self.workers, *self.restart_at, -1]) + 1)

    def fewer(self, _signum: int, _frame: Any) -> None:
        """SIGTTOU: one worker fewer (never none); it stops gracefully."""
        if self.stopping or self.options.worker_num <= 1:
            return  # never none
        self.options.worker_num -= 1
        slot = max([*(s for s in self.workers if s not in self.retired), *self.restart_at])
        logger.info("removing a worker (SIGTTOU): %d now", self.options.worker_num)
        self.restart_at.pop(slot, None)
        if slot in self.workers:
            self.retired.add(slot)
            proc = self.workers[slot][0]
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    def run(self) -> int:
        handlers = {signal.SIGINT: self.stop, signal.SIGTERM: self.stop,
                    signal.SIGTTIN: self.more, signal.SIGTTOU: self.fewer}
        previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
        try:
            for slot in range(self.options.worker_num):
                self.spawn(slot)
            return self.watch()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def watch(self) -> int:
        deadline = None
        while self.workers or (self.restart_at and not self.stopping):
            time.sleep(0.05)
            self._collect_ready()
            self.check_beats()
            if self.stopping and deadline is None:
                deadline = time.monotonic() + self.options.shutdown_timeout + 5
            now = time.monotonic()
            for slot, due in list(self.restart_at.items()):
                if now >= due and not self.stopping:
                    del self.restart_at[slot]
                    self.spawn(slot)
            for slot, (proc, started) in list(self.workers.items()):
                if proc.is_alive():
                    if deadline is not None and time.monotonic() > deadline:
                        proc.kill()
                    continue
                proc.join()
                del self.workers[slot]
                self.beats.pop(proc.pid, None)
                if self.stopping:
                    continue
                if slot in self.retired:
                    self.retired.discard(slot)
                    continue
                if proc.exitcode == STARTUP_FAILED or proc.pid not in self.serving:
                    # the application cannot start: restarting would not help
                    logger.error("worker %d %s before it served: stopping", proc.pid,
                                 _death(proc.exitcode))
                    self.failed = STARTUP_FAILED if proc.exitcode == STARTUP_FAILED else 1
                    self.stop(signal.SIGTERM, None)
                    continue
                self.serving.discard(proc.pid)
                ran = time.monotonic() - started
                deaths = 1 if ran >= RESET_AFTER else self.deaths.get(slot, 0) + 1
                self.deaths[slot] = deaths
                delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (deaths - 1))
                logger.warning("worker %d %s after %.1fs; starting another in %gs", proc.pid,
                               _death(proc.exitcode), ran, delay)
                self.restart_at[slot] = time.monotonic() + delay
        return self.failed

    def _collect_ready(self) -> None:
        while not self.ready.empty():
            kind, pid, why = self.ready.get()
            slots = {proc.pid: slot for slot, (proc, _) in self.workers.items()}
            if pid not in slots:
                continue  # gone already
            if kind == "recycle":
                if slots[pid] in self.retired or pid in self.successors.values():
                    continue
                logger.info("replacing worker %d: it %s", pid, why)
                slot = max([*self.workers, *self.restart_at]) + 1
                self.successors[slot] = pid
                self.spawn(slot)
                continue
            self.serving = {p for p in self.serving if p in slots} | {pid}
            old = self.successors.pop(slots[pid], None)
            if old is not None and old in slots:
                # the successor serves: the old worker stops accepting and drains
                self.retired.add(slots[old])
                os.kill(old, signal.SIGTERM)
            if self.announced:
                logger.info("worker %d serves", pid)
            elif len(self.serving) >= self.options.worker_num:
                self.announced = True
                self.announce(sorted(self.serving))

def _death(code: int | None) -> str:
    """How a worker ended, for the log: its exit code or the signal that killed it."""
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"
