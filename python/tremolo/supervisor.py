"""The process master: binds the listeners, starts and watches the workers, replaces
them (SIGHUP, recycling), adds and removes them (SIGTTIN, SIGTTOU), and stops them
all on SIGINT or SIGTERM. Its signal handlers only record (signals.py): the watch
loop does the work. It knows processes and sockets, not HTTP."""

from __future__ import annotations

import contextlib
import enum
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.process import BaseProcess
from typing import Any

from . import installed, logs
from ._core import __version__
from .config import ConfigError, Options
from .listening import listeners, open_sockets, per_worker, slot_sockets
from .locks import ServerLock
from .metrics import Board, Endpoint, Totals, render
from .server import AdapterFactory, new_event_loop, ssl_context
from .signals import REOPEN, REPLACED, STOP, Inbox, blocked
from .sockets import Address, ListenerSpec
from .watchers import Heartbeat
from .worker_process import STARTUP_FAILED, Closeable, Message, Recycle, child, run_worker

logger = logging.getLogger(logs.SERVER)
#: the wait before restarting a worker that died: doubling from the first to the
#: cap while deaths follow each other, back to the first once a worker has served
#: for RESET_AFTER seconds
BACKOFF_FIRST = 0.1
BACKOFF_CAP = 10.0
RESET_AFTER = 30.0
#: a slot whose worker died keeps its socket (what is queued there waits for the
#: next worker) when that worker starts within this many seconds; past it, the
#: socket is closed (the queued connections are refused rather than left waiting)
KEEP_QUEUE_FOR = 1.0
#: the longest the watch sleeps: what wakes it (a signal, a worker's message or
#: exit, a scrape) does so at once; the clock's business (worker_timeout's beats,
#: restarts due, a stop's deadline) sets shorter waits. A master that woke often
#: would take the core from the workers it shares it with.
WATCH_WAIT = 1.0

Renew = Callable[[], AdapterFactory]


def supervise(factory: AdapterFactory, options: Options,
              extra: list[tuple[Address, dict[str, Any]]], lock: ServerLock,
              primary: bool = True, what: str = "", renew: Renew | None = None) -> None:
    """Serves until SIGINT or SIGTERM. `what` names the application for the message
    that says the server is ready; `renew` imports the application's code again (in
    a new worker, on SIGHUP) and makes the factory from it."""
    try:
        logs.configure("DEBUG" if options.debug else options.log_level, options.log_fmt,
                       options.log_config, options.error_log_file, options.access_log_file)
    except logs.LogFileError as exc:
        raise ConfigError(f"{exc.which}_log_file: {exc}", f"{exc.which}_log_file") from None
    except ValueError as exc:
        raise ConfigError(f"log_config: {exc}", "log_config") from None
    warning = installed.clash()
    if warning:
        logger.warning("%s", warning)
    if options.access_log:
        try:
            logs.check_format(options.access_log_format)
        except ValueError as exc:
            raise ConfigError(f"access_log_format: {exc}", "access_log_format") from None
    new_event_loop(options.loop).close()  # a loop that cannot load fails here, not in workers
    specs = listeners(options, extra, primary)
    if options.metrics:
        host, port = options.metrics_address
        for spec in specs:
            at = spec.address
            if port and at.kind == "tcp" and at.port == port and (
                    at.host == host or at.host in ("", "0.0.0.0", "::", None)
                    or host in ("0.0.0.0", "::")):
                raise ConfigError(f"metrics: {options.metrics} is where the application "
                                  f"is served ({spec.display}): give it a port of its own",
                                  "metrics")
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
            logger.info("stopped")
            return
        supervisor = Supervisor(factory, options, opened, lock, announce, renew)
        if options.metrics:
            supervisor.endpoint = Endpoint(options.metrics_address, supervisor.render)
            logger.info("metrics on http://%s/metrics", supervisor.endpoint.url)
        code = supervisor.run()
        logger.info("stopped%s", f" (exit status {code})" if code else "")
        if code:
            sys.exit(code)
    finally:
        for sock, spec in opened:
            sock.close()
            if spec.kind == "unix":
                with contextlib.suppress(OSError):
                    os.unlink(spec.address.path)


class Phase(enum.Enum):
    """Where a worker is in its life, as the master sees it."""

    #: forked; not serving yet (its application starting)
    STARTING = "starting"
    SERVING = "serving"
    #: stopped on purpose (replaced, SIGTTOU): not restarted when it ends
    LEAVING = "leaving"


@dataclass
class Child:
    """A worker process, and what the master knows of it."""

    proc: BaseProcess
    slot: int
    started: float
    #: when its event loop last ticked (time.monotonic, shared memory)
    beat: Heartbeat
    #: the worker it replaces once it serves (a rollout, recycling)
    replaces: int | None = None
    #: started by a rollout (SIGHUP), which goes on once it serves
    in_rollout: bool = False
    phase: Phase = Phase.STARTING
    #: when it began to serve (0: never): only then is its loop watched
    #: (worker_timeout), told to leave or not; a startup may block its loop
    served_since: float = 0.0
    #: where it publishes its counters (--metrics)
    board: Board | None = None
    #: why it will have to be replaced, should it die (the metrics' restart cause)
    cause: str = "died"
    #: the order of the starts: of two workers of a slot, the later one stays
    born: int = 0

    @property
    def pid(self) -> int:
        pid = self.proc.pid
        assert pid is not None  # (a Child is made once its process started)
        return pid


class Supervisor:
    def __init__(self, factory: AdapterFactory, options: Options,
                 opened: list[tuple[socket.socket, ListenerSpec]], lock: ServerLock,
                 announce: Callable[[list[int]], None] = lambda pids: None,
                 renew: Renew | None = None) -> None:
        self.factory = factory
        self.renew = renew
        self.announce = announce
        self.announced = False
        self.options = replace(options)
        self.opened = opened
        self.lock = lock
        self.ctx = multiprocessing.get_context("fork")
        #: workers say here when they serve, or want to be replaced
        self.messages = self.ctx.SimpleQueue()
        self.children: dict[int, Child] = {}
        #: the slots that should have a worker; each has its listening sockets
        self.slots = set(range(options.worker_num))
        self.sockets: dict[int, list[tuple[socket.socket, Options]]] = {}
        self.owned: dict[int, list[socket.socket]] = {}
        self.stopping = False
        self.interrupted = False  # a SIGINT came: a second one forces
        #: slot -> when its worker, which died, is started again (backoff), and why
        #: (the metrics' restart cause)
        self.restart_at: dict[int, tuple[float, str]] = {}
        #: slot -> deaths in a row (reset once a worker served for RESET_AFTER)
        self.deaths: dict[int, int] = {}
        #: a reload under way: the workers it has still to replace
        self.rollout: list[int] | None = None
        #: whether new workers import the application again (after a reload)
        self.fresh = False
        self.fresh_before = False
        self.failed = 0
        #: the metrics endpoint (--metrics), and the counters of workers gone
        self.endpoint: Endpoint | None = None
        self.totals = Totals()
        #: the signals that came (run() sets it up), and what the watch loop waits on
        self.inbox: Inbox | None = None
        self.selector = selectors.DefaultSelector()
        self.born = 0

    # -- workers and their sockets -------------------------------------------

    def spawn(self, slot: int, replaces: int | None = None, in_rollout: bool = False,
              cause: str = "") -> Child:
        """Starts a worker for `slot`; `cause`: it replaces another (counted for the
        metrics: died, worker_timeout, max_requests, limit_memory, reload)."""
        if slot not in self.sockets:
            self.sockets[slot], self.owned[slot] = slot_sockets(self.opened,
                                                                self.options.worker_num)
        foreign: list[Closeable] = [s for other, socks in self.owned.items() if other != slot
                              for s in socks]
        foreign += [s for s, spec in self.opened if per_worker(spec, self.options.worker_num)]
        foreign.append(self.selector)
        if self.endpoint is not None:
            foreign += self.endpoint.closeables()
        if self.inbox is not None:
            foreign += self.inbox.closeables()
        beat = self.ctx.Value("d", 0.0, lock=False)
        board = Board(self.ctx) if self.options.metrics else None
        proc = self.ctx.Process(target=child, name=f"tremolo-worker-{slot}",
                                args=(self.factory, self.renew if self.fresh else None,
                                      self.options, self.sockets[slot], foreign, self.lock,
                                      self.messages, beat, board))
        with blocked():  # the child unblocks them once its handlers are its own
            proc.start()
        self.born += 1
        new = Child(proc, slot, time.monotonic(), beat, replaces, in_rollout, board=board,
                    born=self.born)
        self.children[new.pid] = new
        self.selector.register(proc.sentinel, selectors.EVENT_READ)  # its exit wakes the watch
        if cause:
            self.totals.restarted(cause)
        return new

    def render(self) -> str:
        """The metrics: every worker's counters, those of workers gone, restarts."""
        live = [(c.slot, snap) for c in self.children.values()
                if c.board is not None and (snap := c.board.read()) is not None]
        serving = sum(c.phase is Phase.SERVING for c in self.children.values())
        return render(live, self.totals, serving)

    def close_slot(self, slot: int) -> None:
        for sock in self.owned.pop(slot, []):
            sock.close()
        self.sockets.pop(slot, None)

    def in_slot(self, slot: int) -> list[Child]:
        return [c for c in self.children.values()
                if c.slot == slot and c.phase is not Phase.LEAVING]

    def retire(self, old: Child) -> None:
        """Stops a worker gracefully because it is replaced: its slot's sockets stay
        open in the master and its successor, so nothing queued is lost."""
        old.phase = Phase.LEAVING
        if old.proc.is_alive():
            os.kill(old.pid, REPLACED)

    def keep_newest(self, c: Child) -> None:
        """`c` serves: the workers of its slot started before it drain (the one it
        replaces, and any other successor that a reload and recycling both started),
        unless one started after it serves already; then `c` is the one that goes."""
        others = self.in_slot(c.slot)
        if any(o.phase is Phase.SERVING and o.born > c.born for o in others):
            self.retire(c)
            return
        for o in others:
            if o.born < c.born:
                self.retire(o)

    def check_beats(self) -> None:
        """A worker that serves and whose loop has not ticked for worker_timeout is
        stuck (a handler blocking the loop): it is killed, and restarted as any
        worker that died. It wrote the stack of the stuck code to stderr itself."""
        limit = self.options.worker_timeout
        if not limit or self.stopping:
            return
        now = time.monotonic()
        for c in list(self.children.values()):
            if not c.served_since or not c.beat.value:
                continue
            if now - c.beat.value > limit and c.proc.is_alive():
                logger.error("worker %d has not answered for %.0fs (worker_timeout): a "
                             "handler blocks its event loop (the stack is above); "
                             "replacing it", c.pid, now - c.beat.value)
                c.cause = "worker_timeout"
                c.proc.kill()

    # -- signals -------------------------------------------------------------

    def obey(self, signals: list[int]) -> None:
        """Acts on the signals that came, in order; those read together count as one
        change of the worker count (SIGTTIN and SIGTTOU cancel out) and one reload,
        which comes first, so that workers added meanwhile run the new code."""
        target = self.options.worker_num
        for signum in signals:
            if signum in STOP:
                self.stop(signum)
            elif signum == signal.SIGTTIN:
                target += 1
            elif signum == signal.SIGTTOU:
                target = max(target - 1, 1)  # never none
        if REOPEN in signals:
            self.reopen()
        if signal.SIGHUP in signals:
            self.roll_out()
        if target > self.options.worker_num:
            self.more(target - self.options.worker_num)
        elif target < self.options.worker_num:
            self.fewer(self.options.worker_num - target)

    def reopen(self) -> None:
        """SIGUSR1: the log files reopened, here and by every worker (logrotate moved
        them; the workers' descriptors are their own, inherited at the fork)."""
        logs.reopen_said()
        for c in self.children.values():
            if c.proc.is_alive():
                os.kill(c.pid, REOPEN)

    def stop(self, signum: int) -> None:
        """SIGTERM or SIGINT: a graceful stop (SIGTERM again changes nothing); a
        second SIGINT (CTRL+C again) or SIGQUIT forces it."""
        forced = signum == signal.SIGQUIT or (signum == signal.SIGINT and self.interrupted)
        self.interrupted |= signum == signal.SIGINT
        if not self.stopping:
            self.stopping = True
            logger.info("stopping %d worker(s)%s", len(self.children),
                        " (CTRL+C again to force)" if signum == signal.SIGINT else "")
            for slot in list(self.owned):
                # the workers' copies are closed as they stop: nothing more is
                # queued for them once the last one is
                self.close_slot(slot)
        elif not forced:
            return
        if forced:
            logger.info("forcing the workers to stop")
        for c in self.children.values():
            if c.proc.is_alive():
                os.kill(c.pid, signal.SIGQUIT if forced else signal.SIGTERM)

    def more(self, count: int) -> None:
        """SIGTTIN: `count` workers more."""
        if self.stopping:
            return
        self.options.worker_num += count
        logger.info("adding %d worker%s (SIGTTIN): %d now", count, "s" * (count > 1),
                    self.options.worker_num)
        for _ in range(count):
            slot = max([*self.slots, -1]) + 1
            self.slots.add(slot)
            self.spawn(slot)

    def fewer(self, count: int) -> None:
        """SIGTTOU: `count` workers fewer (never none); they stop gracefully."""
        count = min(count, self.options.worker_num - 1)
        if self.stopping or count < 1:
            return
        self.options.worker_num -= count
        logger.info("removing %d worker%s (SIGTTOU): %d now", count, "s" * (count > 1),
                    self.options.worker_num)
        for _ in range(count):
            slot = max(self.slots)
            self.slots.discard(slot)
            self.restart_at.pop(slot, None)
            self.close_slot(slot)  # the workers' copies go as they stop
            for c in self.in_slot(slot):
                c.phase = Phase.LEAVING
                if c.proc.is_alive():
                    os.kill(c.pid, signal.SIGTERM)

    def roll_out(self) -> None:
        """SIGHUP: every worker replaced, one at a time, by one that imported the
        application's code again (a rollout); each old one stops accepting only once
        its successor serves."""
        if self.stopping:
            return
        if self.rollout is not None:
            logger.info("SIGHUP: a reload is under way already")
            return
        self.rollout = [c.pid for c in self.children.values() if c.phase is Phase.SERVING]
        self.fresh_before = self.fresh
        self.fresh = self.renew is not None
        how = "with the application's code imported again" if self.renew is not None else \
            "(the code cannot be imported again: the application was not made by a " \
            "module or script that can be run again)"
        logger.info("reloading (SIGHUP): replacing %d worker(s) one at a time %s",
                    len(self.rollout), how)
        self.next_in_rollout()

    def next_in_rollout(self) -> None:
        if self.stopping:
            self.rollout = None  # a stop ends every worker anyway
            return
        while self.rollout:
            old = self.children.get(self.rollout.pop(0))
            if old is not None and old.phase is not Phase.LEAVING and old.proc.is_alive():
                self.spawn(old.slot, replaces=old.pid, in_rollout=True, cause="reload")
                return
        if self.rollout is not None:
            logger.info("reload done: every worker runs the new code")
        self.rollout = None

    def run(self) -> int:
        try:
            with Inbox() as self.inbox:
                self.selector.register(self.inbox, selectors.EVENT_READ)
                # (SimpleQueue has no public descriptor; its reader is a pipe's end)
                self.selector.register(self.messages._reader,  # type: ignore[attr-defined]
                                       selectors.EVENT_READ)
                if self.endpoint is not None:
                    self.selector.register(self.endpoint, selectors.EVENT_READ)
                for slot in sorted(self.slots):
                    self.spawn(slot)
                return self.watch()
        finally:
            self.inbox = None
            for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
                if signal.getsignal(sig) == signal.SIG_DFL:
                    # no longer a master, nearly gone: a late one must not kill or
                    # suspend (SIGTTIN, SIGTTOU) the process before it exits
                    signal.signal(sig, signal.SIG_IGN)
            for slot in list(self.owned):
                self.close_slot(slot)
            if self.endpoint is not None:
                self.endpoint.close()
            self.selector.close()

    # -- the watch -----------------------------------------------------------

    def watch(self) -> int:
        deadline = None
        while self.children or (self.restart_at and not self.stopping):
            self.selector.select(self.wait(deadline))
            if self.endpoint is not None:
                self.endpoint.poll(0)
            if self.inbox is not None:
                self.obey(self.inbox.take())
            self.read_messages()
            self.check_beats()
            if self.stopping and deadline is None:
                deadline = time.monotonic() + self.options.shutdown_timeout + 5
            now = time.monotonic()
            for slot, (due, cause) in list(self.restart_at.items()):
                if now >= due and not self.stopping:
                    del self.restart_at[slot]
                    self.spawn(slot, cause=cause)
            for pid, c in list(self.children.items()):
                if c.proc.is_alive():
                    if deadline is not None and now > deadline:
                        c.proc.kill()
                    continue
                c.proc.join()
                self.selector.unregister(c.proc.sentinel)
                del self.children[pid]
                if c.board is not None:
                    self.totals.keep(c.board.read())  # its counters still count
                if not self.stopping:
                    self.ended(c)
        return self.failed

    def wait(self, deadline: float | None) -> float:
        """How long the watch may sleep: until the next thing it must do by the clock
        (a restart due, a stop's deadline, a look at the workers' beats)."""
        now = time.monotonic()
        waits = [WATCH_WAIT, *(due - now for due, _ in self.restart_at.values())]
        if self.options.worker_timeout:
            waits.append(self.options.worker_timeout / 4)
        if deadline is not None:
            waits.append(deadline - now)
        if self.endpoint is not None:
            waits.append(self.endpoint.due(now))
        return max(min(waits), 0.0)

    def ended(self, c: Child) -> None:
        """A worker is gone: replaced, removed, failed to start, or died."""
        if c.phase is Phase.LEAVING:
            return
        ran = time.monotonic() - c.started
        if c.phase is Phase.STARTING and c.replaces is not None:
            # a successor that cannot start: the server goes on as it was
            old = self.children.get(c.replaces)
            keeps = f"worker {old.pid} keeps serving" if old is not None else "the slot waits"
            logger.error("the new worker %d %s before it served; %s", c.pid,
                         _death(c.proc.exitcode), keeps)
            if c.in_rollout and self.rollout is not None:
                logger.error("reload abandoned: the workers not replaced yet keep the code "
                             "they run")
                self.rollout = None
                self.fresh = self.fresh_before
            if old is None and not self.in_slot(c.slot):
                self.restart(c.slot, ran, c.cause)
            return
        if c.phase is Phase.STARTING:
            # the application cannot start: restarting would not help
            logger.error("worker %d %s before it served: stopping", c.pid,
                         _death(c.proc.exitcode))
            self.failed = STARTUP_FAILED if c.proc.exitcode == STARTUP_FAILED else 1
            self.stop(signal.SIGTERM)
            return
        if c.slot not in self.slots or self.in_slot(c.slot):
            logger.warning("worker %d %s after %.1fs", c.pid, _death(c.proc.exitcode), ran)
            return  # removed meanwhile, or its successor takes the slot
        self.restart(c.slot, ran, c.cause, f"worker {c.pid} {_death(c.proc.exitcode)} "
                                           f"after {ran:.1f}s")

    def restart(self, slot: int, ran: float, cause: str, what: str = "") -> None:
        deaths = 1 if ran >= RESET_AFTER else self.deaths.get(slot, 0) + 1
        self.deaths[slot] = deaths
        delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (deaths - 1))
        if what:
            logger.warning("%s; starting another in %gs", what, delay)
        if delay > KEEP_QUEUE_FOR:
            self.close_slot(slot)
        self.restart_at[slot] = (time.monotonic() + delay, cause)

    def read_messages(self) -> None:
        while not self.messages.empty():
            message: Message = self.messages.get()
            pid = message.pid
            c = self.children.get(pid)
            if c is None:
                continue  # gone already
            if isinstance(message, Recycle):
                if c.phase is Phase.LEAVING or self.stopping or any(o.replaces == pid
                                                      for o in self.children.values()):
                    continue  # a stop ends it anyway: no successor to start then
                logger.info("replacing worker %d: it %s", pid, message.why)
                self.spawn(c.slot, replaces=pid, cause=message.cause)
                continue
            old = self.children.get(c.replaces) if c.replaces is not None else None
            c.served_since = time.monotonic()
            if c.phase is Phase.STARTING:  # (one told to leave meanwhile goes on leaving)
                c.phase = Phase.SERVING
                self.keep_newest(c)
            if self.announced:
                logger.info("worker %d serves%s", pid,
                            f" (worker {old.pid} stops)" if old is not None else "")
            else:
                serving = [o.pid for o in self.children.values()
                           if o.phase is Phase.SERVING]
                if len(serving) >= self.options.worker_num:
                    self.announced = True
                    self.announce(sorted(serving))
            if c.in_rollout:
                self.next_in_rollout()


def _death(code: int | None) -> str:
    """How a worker ended, for the log: its exit code or the signal that killed it."""
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"
