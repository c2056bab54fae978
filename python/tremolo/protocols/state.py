"""What every connection of one worker shares, and the clock that sweeps them."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .. import _core, logs
from ..config import Options
from .bodyreads import piece_size
from .connection import Trust

if TYPE_CHECKING:
    from .counters import Counters
    from .flow import Flow
    from .task import RequestTask


class Clocked(Protocol):
    """A connection of the worker (HTTP or WebSocket): the sweeper checks its
    clocks, and a graceful stop closes it when idle, then at the deadline."""

    idle_since: float
    #: the handler still running on it, if any
    task: RequestTask | None
    flow: Flow

    def check_clocks(self, now: float) -> bool: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def close_when_idle(self) -> None: ...


def _idle_since(conn: Clocked) -> float:
    return conn.idle_since



class ServerState(_core.StateCore):
    """The options, the connections and the clocks of one worker's listener. What
    every request reads (`date`, `server_name`, `requests`, `max_requests`,
    `recycle`, `stopping`, `keepalive`, `close_unread`, `access`, `counters`,
    `handler_timeout`) is
    StateCore's (rust/src/py/connection.rs)."""

    if TYPE_CHECKING:
        access: logs.AccessLog | None
        counters: Counters | None
        recycle: Callable[[str], None] | None

    def __init__(self, options: Options, loop: asyncio.AbstractEventLoop,
                 logger: logging.Logger | None = None, lock: Any = None) -> None:
        self.options = options
        #: locks shared by the workers (the handlers' `lock`)
        self.lock = lock
        self.loop = loop
        self.logger = logger or logging.getLogger(logs.ERROR)
        #: the access log, when it is on
        self.access = logs.AccessLog(options.access_log_format, loop) \
            if options.access_log else None
        #: what the metrics endpoint counts, when it is on (--metrics; see Worker)
        self.counters = None
        self.server_name = options.server_name_bytes
        #: which peers are trusted proxies, and which of their fields are believed
        self.trust = Trust(options.trusted_proxies, options.proxy_headers)
        #: every connection whose socket is open, whatever its phase, until the
        #: transport reports it lost (what the open-connections gauge counts)
        self.connections: set[Clocked] = set()
        #: those of them answered 503 on arrival: limit_concurrency counts the others
        self.refused = 0
        #: the TLS context of a TLS listener: each connection's handshake is its own
        #: phase (after a PROXY header, if any), bounded by request_timeout
        self.ssl: ssl.SSLContext | None = None
        #: the handshakes under way (their tasks, kept until they end)
        self.handshakes: set[asyncio.Task[None]] = set()
        self.parser_limits = {
            "max_request_line": min(options.max_request_line, options.client_max_header_size),
            "max_header_size": options.client_max_header_size,
            "max_headers": options.max_headers,
            "max_body_size": options.client_max_body_size,
            "max_chunk_line": options.max_chunk_line,
        }
        #: requests started, and what to call once (see Worker) when the worker should
        #: be replaced: after max_requests (+ jitter)
        self.requests = 0
        self.max_requests = options.max_requests + (
            random.randint(0, options.max_requests_jitter) if options.max_requests else 0)
        self.recycle = None
        #: a graceful stop is under way (see Worker.shutdown); `restarting` when the
        #: worker is replaced rather than the server stopped
        self.stopping = False
        self.restarting = False
        #: a body longer than this is read in pieces of it (bodyreads.py), into
        #: `body_buffer`, made at the first such body
        self.body_piece = piece_size(options.buffer_size)
        self._body_buffer: memoryview | None = None
        self.date = b""
        self._refresh_date()
        # how often every connection is checked against its clocks
        self.tick = min(1.0, options.request_timeout / 4, options.keepalive_timeout / 4 or 1.0,
                        options.app_handler_timeout / 4)
        #: app_handler_timeout, checked once a tick (see check_clocks)
        self.handler_timeout = options.app_handler_timeout
        #: keepalive_timeout 0: every connection closes after its response (as the original)
        self.keepalive = options.keepalive_timeout > 0
        #: close the connection after a response sent before its request's body was
        #: all read (the Tremolo framework's rule, as the original's; set by its
        #: adapter); otherwise the rest of the body is dropped and the next request read
        self.close_unread = False
        self.loop.call_later(self.tick, self._sweep)

    def _sweep(self) -> None:
        self.loop.call_later(self.tick, self._sweep)  # first: whatever happens below
        now = self.loop.time()
        idle = []
        for conn in list(self.connections):
            try:
                if conn.flow.write_stalled(now):
                    # a client that reads nothing: what waits for it is dropped,
                    # closing or not, rather than held for as long as it likes
                    self.logger.info("dropped a connection whose client read nothing "
                                     "for %ss", conn.flow.timeout)
                    conn.abort()
                elif conn.check_clocks(now):
                    idle.append(conn)
            except Exception:
                # the sweeper goes on whatever one connection does: that one ends
                self.logger.exception("closed a connection whose clocks failed")
                conn.abort()
        # Idle keep-alive connections are bounded here, once a tick, rather than
        # by bookkeeping on every request: past the bound, the oldest ones go.
        excess = len(idle) - self.options.keepalive_connections
        if excess > 0:
            idle.sort(key=_idle_since)
            for conn in idle[:excess]:
                conn.close()

    def body_buffer(self) -> memoryview:
        """The worker's one buffer for the reads of long bodies: each read is
        copied out of it before the next."""
        if self._body_buffer is None:
            self._body_buffer = memoryview(bytearray(self.body_piece))
        return self._body_buffer

    def serving(self) -> int:
        """Connections that count against limit_concurrency: every open one but
        those refused on arrival."""
        return len(self.connections) - self.refused

    def _refresh_date(self) -> None:
        # Formatted once a second by a timer, not per response.
        now = time.time()
        self.date = _core.http_date(now)
        self.loop.call_later(1.0 - now % 1.0, self._refresh_date)
