"""HTTP/1.1 over an asyncio transport: bytes in, core events, responses out.

One `HTTPProtocol` per connection. It feeds every read to the Rust parser once and
acts on the events: each request becomes an `Exchange` handed to the application
adapter (a coroutine function). Responses go out in request order; a pipelined
request waits until the one before it is answered. Reading pauses while too much
is queued or buffered; writing waits while the client does not read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, cast

from .. import _core
from ..config import Options
from ..exceptions import HTTPException, RequestTimeout
from .task import RequestTask

Header = tuple[bytes, bytes]
Handler = Callable[["Exchange"], Coroutine[Any, Any, None]]


class Adapter:
    """What a protocol needs of an application: `handle` each exchange, and hear
    of connections opening and closing. Subclasses override what they use."""

    #: start each handler as soon as its request is read (see protocols/task.py);
    #: False starts it at the loop's next turn, after every read of this one
    eager = True

    async def handle(self, ex: Exchange) -> None:
        raise NotImplementedError

    def connection_made(self, protocol: HTTPProtocol) -> None:
        pass

    def connection_lost(self, protocol: HTTPProtocol) -> None:
        pass

    async def startup(self) -> None:
        """Runs in the worker before it accepts connections."""

    async def shutdown(self) -> None:
        """Runs in the worker after its connections are closed."""


class FunctionAdapter(Adapter):
    """An adapter that is just a coroutine function taking an Exchange."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle  # type: ignore[method-assign,assignment]

_RequestHead = _core.RequestHead
_ParseError = _core.HTTPParseError
_encode_response = _core.encode_response
_encode_head = _core.encode_head
_encode_chunk = _core.encode_chunk
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Bodies this size or larger are written beside the head (writev), not copied into it.
_COPY_LIMIT = 16384


class ClientDisconnected(ConnectionError):
    """The client went away before the exchange was over."""


def burst(rate: int, buffer_size: int) -> int:
    """What a token bucket lets through at once: a tenth of a second's worth, at
    least one buffer, so measured rates stay close to the limit."""
    return max(buffer_size, rate // 10)


def _time_out(waiter: asyncio.Future[None], what: str) -> None:
    if not waiter.done():
        waiter.set_exception(RequestTimeout(f"timed out waiting for {what}"))


def _idle_since(conn: HTTPProtocol) -> float:
    return conn.idle_since


class ServerState:
    """What every connection of one worker shares."""

    def __init__(self, options: Options, loop: asyncio.AbstractEventLoop,
                 logger: logging.Logger | None = None, lock: Any = None) -> None:
        self.options = options
        #: locks shared by the workers (the handlers' `lock`)
        self.lock = lock
        self.loop = loop
        self.logger = logger or logging.getLogger("tremolo")
        self.server_name = options.server_name_bytes
        self.trusted_proxies = frozenset(options.trusted_proxies)
        self.connections: set[HTTPProtocol] = set()
        self.parser_limits = {
            "max_request_line": min(options.max_request_line, options.client_max_header_size),
            "max_header_size": options.client_max_header_size,
            "max_headers": options.max_headers,
            "max_body_size": options.client_max_body_size,
            "max_chunk_line": options.max_chunk_line,
        }
        self.date = b""
        self._refresh_date()
        # how often idle and header-reading connections are checked against their clocks
        self.tick = min(1.0, options.request_timeout / 4, options.keepalive_timeout / 4)
        self.loop.call_later(self.tick, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        idle = []
        for conn in list(self.connections):
            if conn.check_clocks(now):
                idle.append(conn)
        # Idle keep-alive connections are bounded here, once a tick, rather than
        # by bookkeeping on every request: past the bound, the oldest ones go.
        excess = len(idle) - self.options.keepalive_connections
        if excess > 0:
            idle.sort(key=_idle_since)
            for conn in idle[:excess]:
                conn.close()
        self.loop.call_later(self.tick, self._sweep)

    def _refresh_date(self) -> None:
        # Formatted once a second by a timer, not per response.
        now = time.time()
        self.date = _core.http_date(now)
        self.loop.call_later(1.0 - now % 1.0, self._refresh_date)


class Exchange:
    """One request and its response, as an application adapter sees them."""

    # What an exchange starts with, as class attributes: the usual request sets
    # only what __init__ does.
    started = False
    finished = False
    #: the application took the connection over: the protocol leaves it alone
    detached = False
    chunked = False
    #: what a streamed body with a Content-Length still owes
    _left: int | None = None
    _body: deque[bytes] | None = None
    _body_size = 0
    _error: BaseException | None = None
    _waiter: asyncio.Future[None] | None = None
    _bucket: _core.TokenBucket | None = None
    #: the handler's task and its app_handler_timeout clock, while it waits
    task: RequestTask | None = None
    timer: asyncio.TimerHandle | None = None

    def __init__(self, protocol: HTTPProtocol, head: _core.RequestHead) -> None:
        self.protocol = protocol
        self.head = head
        method, self.http10, self.keep_alive, has_body, expect, self.upgrade = head.info()
        self.method = method
        self.head_only = method == b"HEAD"
        self._ended = not has_body
        self._expect = expect
        #: bytes per second this response may be sent at (download_rate, or a route's)
        self.rate: int = protocol.state.options.download_rate

    # -- request body --------------------------------------------------------

    @property
    def body_complete(self) -> bool:
        """The whole body has arrived (some may still wait to be read)."""
        return self._ended

    @property
    def body_exhausted(self) -> bool:
        """The whole body has arrived and been read."""
        return self._ended and not self._body

    def _feed(self, data: bytes) -> None:
        if self.finished:
            return  # answered without reading: the rest of the body is dropped
        if self._body is None:
            self._body = deque()
        self._body.append(data)
        self._body_size += len(data)
        self._wake()
        self.protocol.update_reading()

    def _end(self, error: BaseException | None = None) -> None:
        self._ended = True
        self._error = error
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def receive(self) -> bytes:
        """The next piece of the request body; b"" once it has all been read."""
        while not self._body:
            if self._ended:
                if self._error is not None:
                    raise self._error
                return b""
            if self._expect:
                self._expect = False
                if not self.started:
                    self.protocol.write(_CONTINUE)
            p = self.protocol
            waiter = self._waiter = p.loop.create_future()
            timer = p.loop.call_later(p.state.options.request_timeout, _time_out, waiter,
                                      "the request body")
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        assert self._body is not None
        data = self._body.popleft()
        self._body_size -= len(data)
        self.protocol.update_reading()
        return data

    # -- response ------------------------------------------------------------

    def _close_after(self) -> bool:
        # A client that was never told to send its announced body may still send
        # it: the connection cannot be reused safely. (respond() inlines this.)
        return not self.keep_alive or (self._expect and not self._ended)

    def respond(self, status: int, headers: Iterable[Header], body: bytes,
                reason: bytes | None = None) -> None:
        """Sends a whole response with Content-Length and finishes the exchange."""
        if self.started:
            raise RuntimeError("response already started")
        keep = self.keep_alive
        if self._expect and not self._ended:
            keep = False  # see _close_after()
        p = self.protocol
        state = p.state
        # encoded before anything changes: a refused header leaves room for a 500
        if len(body) < _COPY_LIMIT or self.head_only:
            data, self.keep_alive = _encode_response(status, headers, body, keep, self.http10,
                                                     state.date, state.server_name, reason,
                                                     self.head_only)
            self.started = True
            if not p.closed:
                p.transport.write(data)  # type: ignore[union-attr]
        else:
            # a large body is not copied next to the head: both go out in one writev
            head, keep = _encode_head(status, headers, len(body), False, keep, self.http10,
                                      state.date, state.server_name, reason)
            self.started = True
            self.keep_alive = keep
            p.writelines(head, body)
        self._finish()

    def start(self, status: int, headers: Iterable[Header], *,
              content_length: int | None = None, reason: bytes | None = None,
              chunked: bool = True) -> None:
        """Sends the head of a streamed response: chunked on HTTP/1.1 unless a
        length is given (or `chunked` is False), else delimited by closing."""
        if self.started:
            raise RuntimeError("response already started")
        keep = not self._close_after()
        no_body = self.head_only or status in (204, 304) or status < 200
        use_chunks = False
        if content_length is None and not no_body:
            if self.http10 or not chunked:
                keep = False
            else:
                use_chunks = True
        chunked = use_chunks
        p = self.protocol
        data, keep = _encode_head(status, headers, content_length, chunked, keep, self.http10,
                                  p.state.date, p.state.server_name, reason)
        self.started = True
        self.chunked = chunked
        self.keep_alive = keep
        if content_length is not None and not no_body:
            self._left = content_length
        p.write(data)

    def limited(self, size: int) -> bool:
        """Whether sending `size` bytes now would go past the speed limit."""
        return size > burst(self.rate, self.protocol.state.options.buffer_size) or (
            self._bucket is not None and size > self._bucket.available(
                self.protocol.loop.time()))

    async def respond_limited(self, status: int, headers: Iterable[Header], body: bytes,
                              reason: bytes | None = None) -> None:
        """respond() at the speed limit: the head, then the body piece by piece."""
        self.start(status, headers, content_length=len(body), reason=reason)
        await self.write(body)
        self.end()

    async def write(self, data: bytes) -> None:
        """Sends part of a started response body, at most at `rate` bytes per second,
        waiting while the client is slow."""
        if not self.started or self.finished:
            raise RuntimeError("write() needs a started, unfinished response")
        if not data or self.head_only:
            return
        if self._left is not None:
            if len(data) > self._left:
                raise RuntimeError(f"the body is longer than its Content-Length "
                                   f"({len(data) - self._left} bytes too many)")
            self._left -= len(data)
        p = self.protocol
        loop = p.loop
        bucket = self._bucket
        if bucket is None:
            # every write of a streamed body counts against the speed limit
            size = burst(self.rate, p.state.options.buffer_size)
            bucket = self._bucket = _core.TokenBucket(self.rate, size, loop.time())
        allowed, _ = bucket.take(len(data), loop.time())
        if allowed == len(data):
            await self._write(data)
            return
        if allowed:
            await self._write(data[:allowed])
        await self._write_limited(data[allowed:])

    def wrote(self, size: int) -> None:
        """Counts body bytes that went out past write() (a zero-copy sendfile)."""
        if self._left is not None:
            self._left -= size

    async def _write_limited(self, data: bytes) -> None:
        p = self.protocol
        loop = p.loop
        assert self._bucket is not None
        view = memoryview(data)
        while view:
            allowed, wait = self._bucket.take(len(view), loop.time())
            if allowed:
                await self._write(bytes(view[:allowed]))
                view = view[allowed:]
            if view:
                await asyncio.sleep(wait)
                if p.closed:
                    raise ClientDisconnected("client disconnected")

    async def _write(self, data: bytes) -> None:
        p = self.protocol
        if not self.chunked:
            p.write(data)
        elif len(data) < _COPY_LIMIT:
            p.write(_encode_chunk(data))
        else:
            p.writelines(b"%x\r\n" % len(data), data, b"\r\n")
        if p.write_paused:
            await p.drain()

    async def send_raw(self, data: bytes) -> None:
        """Writes bytes as they are, after the head (the caller frames them)."""
        if not self.started:
            raise RuntimeError("send() needs a started response")
        self.chunked = False  # the caller frames the body now: end() adds nothing
        self._left = None
        p = self.protocol
        p.write(data)
        if p.write_paused:
            await p.drain()

    def fail(self) -> None:
        """The application failed: a 500 if nothing was sent yet, else the body is
        cut short and the connection closed (which is how the client learns it)."""
        if self.finished or self.protocol.closed:
            return
        if not self.started:
            self.keep_alive = False
            self.respond(500, [(b"Content-Type", b"text/plain; charset=utf-8")],
                         b"Internal Server Error")
        else:
            self.abort()

    def abort(self) -> None:
        """Finishes without a response: the connection is closed."""
        if not self.finished:
            self.keep_alive = False
            self.started = True
            self._finish()

    def end(self, trailers: list[Header] | None = None) -> None:
        """Finishes a started response."""
        if self.finished:
            return
        if self._left:
            # shorter than announced: only closing can tell the client
            self.protocol.state.logger.error("the body ended %d bytes short of its Content-Length",
                                      self._left)
            self.abort()
            return
        if self.chunked and not self.head_only:
            self.protocol.write(_core.last_chunk(trailers))
        self._finish()

    def _finish(self) -> None:
        self.finished = True
        if self._body:
            self._body.clear()
            self._body_size = 0
        self.protocol.exchange_finished(self)


class HTTPProtocol(asyncio.Protocol):
    """HTTP/1.1 on one connection."""

    def __init__(self, state: ServerState, adapter: Adapter) -> None:
        self.state = state
        self.loop = state.loop
        self.adapter = adapter
        self.handler = adapter.handle
        self.eager = adapter.eager
        #: the peer (host, port); None on a UNIX socket
        self.peer: tuple[str, int] | None = None
        #: per-connection storage for the application adapter
        self.context: dict[str, Any] = {}
        #: when the connection last became idle (opened, or a response ended)
        self.idle_since = self.loop.time()
        #: whether it served a request already (then idling is keep-alive)
        self.reused = False
        self.upload_bucket: _core.TokenBucket | None = None
        self.rate_paused = False
        self._close_watchers: list[asyncio.Future[None]] = []
        self.parser = _core.RequestParser(**state.parser_limits)
        self.transport: asyncio.Transport | None = None
        self.current: Exchange | None = None  # being answered
        self.reading: Exchange | None = None  # receiving body events
        self.pending: deque[object] = deque()  # events behind a request being answered
        #: the handler task started last, while it runs on after its first step
        self.task: RequestTask | None = None
        self.write_paused = False
        self.read_paused = False
        self.processing = False
        self.eof = False
        self.closed = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        opts = state.options
        self._max_queue = opts.max_queue_size
        self._max_buffered = opts.buffer_size * 4

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        size = self.state.options.buffer_size
        transport.set_write_buffer_limits(high=size * 4, low=size // 2)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = (peer[0], peer[1])
        self.state.connections.add(self)
        self.adapter.connection_made(self)

    def data_received(self, data: bytes) -> None:
        if self.reading is not None:
            self.limit_upload(len(data))
        events = self.parser.feed_request(data)
        if isinstance(events, _RequestHead):
            if self.current is None and not self.pending:
                # the usual read: one whole request without body, nothing queued
                if self.start_exchange(events).upgrade:
                    self.update_reading()  # the parser holds what follows
                if self.eof and self.current is None:
                    self.close()
                return
            events = [events, None]
        self.pending.extend(events)
        self.process()

    def eof_received(self) -> bool | None:
        # A half-closed client still gets its answers; then the connection closes.
        self.eof = True
        if self.reading is not None and not self.reading.body_complete:
            # the rest of that body can never come
            self.reading._end(ClientDisconnected("client closed before the body ended"))
            self.reading = None
        task = self.task
        if task is not None and not task.done():
            # a closed client and a half-closed one look the same: the answer may
            # still be wanted, but not for longer than app_close_timeout
            self.loop.call_later(self.state.options.app_close_timeout, task.cancel)
        if self.current is None and not self.pending:
            self.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connections.discard(self)
        gone = ClientDisconnected("client disconnected")
        for w in self._close_watchers:
            if not w.done():
                w.set_result(None)
        self._close_watchers.clear()
        for w in self._drain_waiters:
            if not w.done():
                w.set_exception(gone)
        self._drain_waiters.clear()
        if self.reading is not None and not self.reading.body_complete:
            self.reading._end(gone)
        task = self.task
        if task is not None and not task.done():
            self.loop.call_later(self.state.options.app_close_timeout, task.cancel)
        self.adapter.connection_lost(self)

    def limit_upload(self, size: int) -> None:
        """Counts body bytes against upload_rate; past it, reading pauses (the
        client's data waits in the kernel and then in the client) until it may go on."""
        now = self.loop.time()
        bucket = self.upload_bucket
        if bucket is None:
            opts = self.state.options
            bucket = self.upload_bucket = _core.TokenBucket(
                opts.upload_rate, burst(opts.upload_rate, opts.buffer_size), now)
        allowed, wait = bucket.take(size, now)
        if allowed < size:
            # what arrived is over budget: it is owed, so the bucket waits for it
            owed = size - allowed
            self.rate_paused = True
            self.loop.call_later(wait + owed / bucket.rate, self.resume_upload)
            self.update_reading()

    def resume_upload(self) -> None:
        self.rate_paused = False
        self.update_reading()

    def watch_close(self, future: asyncio.Future[None]) -> None:
        """Resolves `future` when the connection closes."""
        if self.closed:
            if not future.done():
                future.set_result(None)
        else:
            self._close_watchers.append(future)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        for w in self._drain_waiters:
            if not w.done():
                w.set_result(None)
        self._drain_waiters.clear()

    # -- events --------------------------------------------------------------

    def process(self) -> None:
        """Acts on parser events in order. A request head waits while the request
        before it is being answered; body events go to the request they belong to.
        A handler that answers at once finishes inside this loop, so the loop (not
        recursion) carries on with the next pipelined request."""
        if self.processing:
            return
        self.processing = True
        pending = self.pending
        try:
            while pending:
                ev = pending[0]
                kind = type(ev)
                if kind is _RequestHead:
                    if self.current is not None:
                        break
                    pending.popleft()
                    self.start_exchange(ev)  # type: ignore[arg-type]
                elif kind is bytes:
                    pending.popleft()
                    if self.reading is not None:
                        self.reading._feed(ev)  # type: ignore[arg-type]
                elif ev is None or kind is list:
                    pending.popleft()
                    if self.reading is not None:
                        self.reading._end()
                        self.reading = None
                else:
                    pending.popleft()
                    self.parse_error(ev)  # type: ignore[arg-type]
                    pending.clear()
        finally:
            self.processing = False
        if self.eof and self.current is None and not pending:
            self.close()
        self.update_reading()

    def start_exchange(self, head: _core.RequestHead) -> Exchange:
        ex = Exchange(self, head)
        self.current = ex
        self.reading = None if ex._ended else ex
        task = RequestTask(self.loop, self.handler(ex), self.handler_done, ex)
        if self.eager:
            if task.start():
                return ex  # answered at once: no clock needed
        else:
            self.loop.call_soon(task.start)
        ex.task = self.task = task
        ex.timer = self.loop.call_later(self.state.options.app_handler_timeout,
                                        self.handler_timed_out, task)
        return ex

    def handler_timed_out(self, task: RequestTask) -> None:
        self.state.logger.error("handler cancelled after app_handler_timeout (%ss)",
                                self.state.options.app_handler_timeout)
        task.cancel()

    def handler_done(self, ex: Exchange, exc: BaseException | None) -> None:
        if ex.task is not None:
            if ex.timer is not None:
                ex.timer.cancel()
                ex.timer = None
            if self.task is ex.task:
                self.task = None
        if exc is not None and not isinstance(exc, asyncio.CancelledError | ClientDisconnected):
            self.state.logger.error("unhandled error in handler", exc_info=exc)
        if not (ex.finished or ex.detached):
            ex.fail()

    def exchange_finished(self, ex: Exchange) -> None:
        if ex is not self.current:
            return
        self.current = None
        if not ex.keep_alive:
            self.close()
            return
        self.idle_since = self.loop.time()
        self.reused = True
        if ex.upgrade and not self.pending and self.parser.paused:
            # The request asked for an upgrade and was answered without one: what
            # the client sent after it is HTTP again.
            self.pending.extend(self.parser.resume())
        if self.pending:
            self.process()
        elif self.read_paused:
            self.update_reading()

    def parse_error_status(self, status: int, reason: str) -> None:
        """Answers `status` with a short text and closes the connection."""
        body = f"{status} {_core.reason_phrase(status)}: {reason}\n".encode()
        self.write(_encode_response(status, [(b"Content-Type", b"text/plain; charset=utf-8")],
                                    body, False, False, self.state.date,
                                    self.state.server_name)[0])
        self.close()

    def parse_error(self, err: _core.HTTPParseError) -> None:
        if self.reading is not None:
            # the handler reading the body learns why, as an error with its status
            refused = HTTPException(err.reason, code=err.status,
                                    message=_core.reason_phrase(err.status))
            refused.__cause__ = err
            self.reading._end(refused)
            self.reading = None
        if self.current is not None:
            self.current.keep_alive = False  # answer it, then close
            return
        self.parse_error_status(err.status, err.reason)

    # -- transport helpers ---------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def writelines(self, *data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.writelines(data)

    async def drain(self) -> None:
        """Waits while the client is not reading; one that reads nothing for
        request_timeout is dropped."""
        if self.closed:
            raise ClientDisconnected("client disconnected")
        if self.write_paused:
            w = self.loop.create_future()
            self._drain_waiters.append(w)
            timer = self.loop.call_later(self.state.options.request_timeout, _time_out, w,
                                         "the client reading the response")
            try:
                await w
            except RequestTimeout:
                self.abort()
                raise ClientDisconnected("the client stopped reading") from None
            finally:
                timer.cancel()

    async def drain_all(self) -> None:
        """Waits until the transport's write buffer is empty (bounded by
        request_timeout, like every drain), so the socket can be written directly."""
        t = self.transport
        if t is None or not t.get_write_buffer_size():
            return
        size = self.state.options.buffer_size
        t.set_write_buffer_limits(high=0, low=0)  # paused until the buffer is empty
        try:
            await self.drain()
        finally:
            if not self.closed:
                t.set_write_buffer_limits(high=size * 4, low=size // 2)

    def check_clocks(self, now: float) -> bool:
        """Closes a connection idle too long, or answers 408 to one whose request
        head is not complete within request_timeout of the connection opening or of
        the previous response ending. Requests being answered have their own clocks.
        True if it is left open as an idle keep-alive connection."""
        if self.closed or self.current is not None:
            return False
        opts = self.state.options
        waited = now - self.idle_since
        if self.parser.idle:
            if waited > (opts.keepalive_timeout if self.reused else opts.request_timeout):
                self.close()
                return False
            return self.reused
        if waited > opts.request_timeout:
            self.parse_error_status(408, "request head not received in time")
        return False

    def abort(self) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    def update_reading(self) -> None:
        """Pauses reading while too much waits in memory; resumes once it drained."""
        if self.transport is None or self.closed:
            return
        buffered = self.reading._body_size if self.reading is not None else 0
        # While the parser holds bytes after an upgrade request, nothing is read
        # until the response decides what they are.
        full = (len(self.pending) > self._max_queue or buffered > self._max_buffered
                or self.parser.paused or self.rate_paused)
        if full and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()
        elif not full and self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    def close_when_idle(self) -> None:
        """Closes now if no request is being answered, else right after its response
        (which then says Connection: close)."""
        if self.current is None:
            self.close()
        else:
            self.current.keep_alive = False

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()
