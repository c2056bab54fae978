"""One worker: listening sockets, an event loop, connections, and a graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import socket
import ssl
import sys
from collections.abc import Callable
from typing import Any

from . import logs, tls
from .config import ConfigError, Options
from .locks import ServerLock
from .protocols import Adapter, HTTPProtocol, ServerState
from .protocols.counters import Counters
from .protocols.state import Clocked

AdapterFactory = Callable[[ServerState], Adapter]


class StartupFailed(Exception):
    """The application's startup (worker_start hooks, ASGI lifespan) failed."""
logger = logging.getLogger(logs.SERVER)


#: glibc's mallopt parameter, and the size from which a buffer is mapped apart
M_MMAP_THRESHOLD = -3
LARGE_BUFFER = 4 << 20


def map_large_buffers() -> None:
    """Keeps buffers of LARGE_BUFFER or more mapped apart, so that their memory goes
    back to the system when they are freed. glibc raises its threshold each time
    such a buffer is freed (up to 32 MiB); then large buffers come from the heap of
    the thread that made them and stay in the process once freed: twenty 8 MiB
    answers made in a WSGI application's threads left 20-50 MiB behind after their
    clients were dropped. Setting the threshold fixes it (mallopt; glibc only)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, LARGE_BUFFER)


def new_event_loop(name: str) -> asyncio.AbstractEventLoop:
    """'uvloop' (the default; plain asyncio when uvloop is missing), 'asyncio', or a
    dotted path to an event loop class."""
    if name in ("uvloop", "uvloop.Loop"):
        try:
            import uvloop
        except ImportError:
            logger.warning("uvloop is not installed; using the asyncio event loop")
            return asyncio.new_event_loop()
        return uvloop.new_event_loop()
    if name in ("asyncio", "asyncio."):
        return asyncio.new_event_loop()
    module, _, attr = name.rpartition(".")
    if not module:
        raise ConfigError(f"loop must be uvloop, asyncio, or a dotted path to an event loop "
                          f"class (module.Class), not {name!r}", "loop")
    try:
        cls = getattr(importlib.import_module(module), attr)
        loop = cls()
    except Exception as exc:
        raise ConfigError(f"loop: cannot load {name!r}: {type(exc).__name__}: {exc}",
                          "loop") from exc
    if not isinstance(loop, asyncio.AbstractEventLoop):
        raise ConfigError(f"loop: {name!r} did not make an event loop", "loop")
    return loop


def ssl_context(options: Options) -> ssl.SSLContext | None:
    if not options.ssl:
        return None
    return tls.context(tls.check(options.ssl))


#: see settle_heap()
HEAP_SLACK = 4 << 20
#: see Worker.shutdown()
SETTLE = 0.1


def settle_heap() -> None:
    """glibc gives the free memory at the top of its heap back to the system as soon
    as 128 KiB are free there, and takes it back (a page fault per 4 KiB) on the next
    allocation. A worker that allocates and frees 64 KiB buffers for every message or
    body falls into that cycle: measured on a 64 KiB WebSocket echo, 15 page faults
    per message and 13k instead of 36k messages/s. glibc raises its thresholds by
    itself after freeing a large block (mallopt(3): the mmap threshold follows the
    size of a freed mmapped block, the trim threshold twice that); freeing one
    HEAP_SLACK block at start does it at once. The cost is bounded: at most
    2 x HEAP_SLACK of freed heap stays with the worker. Elsewhere it is a no-op."""
    block = bytearray(HEAP_SLACK)
    del block


class Worker:
    """Serves connections on the given sockets until `stop()`."""

    def __init__(self, factory: AdapterFactory, options: Options,
                 loop: asyncio.AbstractEventLoop, lock: ServerLock | None = None) -> None:
        settle_heap()
        self.options = options
        self.loop = loop
        self.lock = lock
        self.state = ServerState(options, loop, lock=lock)
        self.adapter = factory(self.state)
        self.states = [self.state]
        #: what the metrics endpoint reads (--metrics); None when it is off
        self.counters = Counters(getattr(self.adapter, "interface", "tremolo")) \
            if options.metrics else None
        self.state.counters = self.counters
        self.servers: list[asyncio.Server] = []
        self.stopping = loop.create_future()
        self.forced = False
        self.interrupted = False

    async def start(self, sockets: list[tuple[socket.socket, Options]]) -> None:
        try:
            await self.adapter.startup()
        except Exception as exc:
            raise StartupFailed(str(exc) or type(exc).__name__) from exc
        for sock, opts in sockets:
            state = self.state
            if opts != self.options:  # a listener with options of its own
                state = ServerState(opts, self.loop, lock=self.lock)
                state.recycle = self.state.recycle
                state.counters = self.counters
                self.states.append(state)

            def protocol(state: ServerState = state) -> HTTPProtocol:
                return HTTPProtocol(state, self.adapter)

            # TLS is started by each connection (after a PROXY header, if any), so
            # that its handshake is a phase the worker bounds and counts
            state.ssl = ssl_context(opts)
            server = await self.loop.create_server(protocol, sock=sock, backlog=opts.backlog)
            self.servers.append(server)

    def stop(self, restarting: bool = False, interrupted: bool = False) -> None:
        """The first call stops gracefully; a second one (CTRL+C again) closes every
        connection at once. `restarting`: this worker is being replaced (its
        WebSockets are closed with 1012, service restart, instead of 1001);
        `interrupted`: by CTRL+C (SIGINT), which may come again to force it."""
        if not self.stopping.done():
            self.interrupted = interrupted
            for state in self.states:
                state.restarting = restarting
            self.stopping.set_result(None)
        elif not self.forced:
            self.forced = True
            logger.warning("forced to stop: closing %d connection(s) now",
                           len(self.connections()))

    async def serve(self, sockets: list[tuple[socket.socket, Options]],
                    ready: Callable[[], None] | None = None) -> None:
        await self.start(sockets)
        # What the application and its startup made lives as long as the worker:
        # frozen, the collector no longer walks it (a young collection that walked
        # it took 1.4 ms under load, three turns of the loop's 64 requests), and the
        # pages a forked worker shares with its master are not written by it.
        # (No collection first: it would write to every object once.)
        gc.freeze()
        map_large_buffers()
        if ready is not None:
            ready()  # after the application's startup (ASGI lifespan included)
        await self.stopping
        await self.shutdown()

    def snapshot(self) -> dict[str, Any]:
        """The counters now, for the metrics endpoint (empty when it is off)."""
        if self.counters is None:
            return {}
        self.counters.open = sum(len(state.connections) for state in self.states)
        return self.counters.snapshot()

    def connections(self) -> list[Clocked]:
        return [c for state in self.states for c in state.connections]

    async def shutdown(self) -> None:
        """Stops accepting, closes idle connections, lets busy ones finish their
        request within shutdown_timeout, then closes whatever is left."""
        deadline = self.loop.time() + self.options.shutdown_timeout
        for server in self.servers:
            server.close()
        # The master signals every worker at once: a moment for all of them to stop
        # accepting before any client is told to come back (Connection: close), so
        # that it comes back to a closed port (refused: a clean error) rather than to
        # another worker's queue just before that closes (reset, request lost).
        await asyncio.sleep(SETTLE)
        for state in self.states:
            state.stopping = True  # requests from now on are answered with a close
        for conn in self.connections():
            conn.close_when_idle()
        busy = len(self.connections())
        if busy:
            logger.info("waiting up to %gs for %d connection(s) to finish%s",
                        self.options.shutdown_timeout, busy,
                        " (CTRL+C again to force)" if self.interrupted else "")
        while self.connections() and self.loop.time() < deadline and not self.forced:
            for conn in self.connections():
                conn.close_when_idle()
            await asyncio.sleep(0.05)
        left = self.connections()
        if left and not self.forced:
            logger.warning("closing %d connection(s) still busy after shutdown_timeout "
                           "(%gs)", len(left), self.options.shutdown_timeout)
        tasks = [c.task for c in self.connections() if c.task is not None and not c.task.done()]
        for conn in self.connections():
            conn.abort()
        for task in tasks:
            task.cancel()
        # let them unwind before the loop closes
        deadline = self.loop.time() + self.options.app_close_timeout
        while any(not task.done() for task in tasks) and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        await self.adapter.shutdown()
