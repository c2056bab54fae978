"""One worker: sockets, an event loop, connections, and a graceful stop."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from .config import ConfigError, Options
from .protocols.http import Exchange, HTTPProtocol, ServerState

HandlerFactory = Callable[[ServerState], Callable[[Exchange], Any]]
logger = logging.getLogger("tremolo")


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
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"loop: cannot load {name!r}: {exc}") from exc
    loop = cls()
    if not isinstance(loop, asyncio.AbstractEventLoop):
        raise ConfigError(f"loop: {name!r} did not make an event loop")
    return loop


def bind(host: str | None, port: int, *, reuse_port: bool, backlog: int) -> socket.socket:
    """A listening TCP socket; '::' listens on IPv6 and IPv4 alike."""
    host = host or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Worker:
    """Serves connections on given sockets until `stop()`."""

    def __init__(self, factory: HandlerFactory, options: Options,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.options = options
        self.loop = loop
        self.state = ServerState(options, loop)
        self.handler = factory(self.state)
        self.servers: list[asyncio.base_events.Server] = []
        self.stopping = loop.create_future()

    async def start(self, sockets: list[socket.socket]) -> None:
        def protocol() -> HTTPProtocol:
            return HTTPProtocol(self.state, self.handler)

        for sock in sockets:
            server = await self.loop.create_server(protocol, sock=sock,
                                                   backlog=self.options.backlog)
            self.servers.append(server)

    def stop(self) -> None:
        if not self.stopping.done():
            self.stopping.set_result(None)

    async def serve(self, sockets: list[socket.socket]) -> None:
        await self.start(sockets)
        await self.stopping
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stops accepting, closes idle connections, lets busy ones finish their
        request within shutdown_timeout, then closes whatever is left."""
        for server in self.servers:
            server.close()
        deadline = self.loop.time() + self.options.shutdown_timeout
        while self.state.connections and self.loop.time() < deadline:
            for conn in list(self.state.connections):
                conn.close_when_idle()
            await asyncio.sleep(0.05)
        for conn in list(self.state.connections):
            conn.close()
            if conn.transport is not None:
                conn.transport.abort()


def run_server(factory: HandlerFactory, options: Options) -> None:
    """Runs one worker in this process until SIGINT or SIGTERM."""
    logging.basicConfig(level=options.log_level.upper(), format=options.log_fmt)
    sock = bind(options.host, options.port, reuse_port=options.reuse_port,
                backlog=options.backlog)
    loop = new_event_loop(options.loop)
    asyncio.set_event_loop(loop)
    worker = Worker(factory, options, loop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stop)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logger.info("tremolo listening on http://%s:%d (%s, Python %s)", shown, port,
                type(loop).__module__.split(".")[0], sys.version.split()[0])
    try:
        loop.run_until_complete(worker.serve([sock]))
    finally:
        sock.close()
        loop.close()
