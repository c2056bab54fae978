"""One request and its response, as an application adapter sees them.

An Exchange reads the request body as the parser delivers it (reading pauses while
too much waits), and writes the response: whole with Content-Length, or streamed
(chunked on HTTP/1.1, else delimited by closing), at the speed limit, waiting while
the client does not read. The core encodes every head, chunk and interim answer, so
framing is decided in one place.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from time import perf_counter
from typing import TYPE_CHECKING

from .. import _core
from ..exceptions import RequestTimeout
from .answers import answer_parts, refusal
from .flow import ClientDisconnected, time_out
from .lifecycle import DETACHED, DONE, RECEIVED, SENDING

if TYPE_CHECKING:
    from ..config import Options
    from ..exceptions import HTTPException
    from .adapter import Connection
    from .connection import ConnectionInfo
    from .http import HTTPProtocol
    from .state import ServerState
    from .task import RequestTask

Header = tuple[bytes, bytes]
_encode_response = _core.encode_response
_encode_head = _core.encode_head
_encode_chunk = _core.encode_chunk
_chunk_head = _core.chunk_head
_CHUNK_END = _core.CHUNK_END
_CONTINUE = _core.interim(100)
# Bodies this size or larger are written beside the head (writev), not copied into it.
_COPY_LIMIT = 16384


def burst(rate: int, buffer_size: int) -> int:
    """What a token bucket lets through at once: a tenth of a second's worth, at
    least one buffer, so measured rates stay close to the limit."""
    return max(buffer_size, rate // 10)


class Exchange(_core.ExchangeCore):
    """One request and its response, as an application adapter sees them.

    Built on ExchangeCore (rust/src/py/exchange.rs): what every request uses is
    there (`protocol`, `flow`, `head`, `phase`, `keep_alive`, the request's facts
    `_ended`, `_expect`, `upgrade`, the body queue `_body`, its `_body_size`, the
    `_received` count, the `_waiter` of a handler waiting for it and its `_error`,
    what the access log reads: `status`, `fields`, `sent`, `t0`; the handler's
    `task` and `handler_deadline`) and so are `respond()` and the body's `_feed()`;
    the rest is here."""

    # What an exchange starts with, as class attributes: most requests never set them
    chunked = False
    #: what a streamed body with a Content-Length still owes
    _left: int | None = None
    #: seconds a handler spent waiting for body bytes (`_received` counts them)
    _waited = 0.0
    #: the timer of the body's waits; the wait at hand times out at `_deadline`
    #: (see `_body_clock`)
    _clock: asyncio.TimerHandle | None = None
    _deadline = 0.0
    _bucket: _core.TokenBucket | None = None
    #: a stop ends this response (an event stream) rather than waiting for it
    ending = False
    #: its handler only streams to the client: once the client left (or half-closed)
    #: it is cancelled at once, not after app_close_timeout (set by the adapter)
    cancel_when_gone = False
    #: a route's own speed limit (see `rate`)
    _rate: int | None = None
    if TYPE_CHECKING:
        protocol: HTTPProtocol
        _body: deque[bytes] | None
        _error: BaseException | None
        fields: Iterable[Header]
        task: RequestTask | None
        timer: asyncio.TimerHandle | None

    # The request's facts most requests never ask for: read from the head when asked
    # (a class with __getattr__ would lose CPython's fast attribute access).

    @property
    def method(self) -> bytes:
        return self.head.method

    @property
    def http10(self) -> bool:
        return self.head.version == "1.0"

    @property
    def head_only(self) -> bool:
        """A HEAD request: the body of its response is left out."""
        return self.head.method == b"HEAD"

    @property
    def rate(self) -> int:
        """Bytes per second this response may be sent at (download_rate, or a
        route's; 0: no limit)."""
        rate = self._rate
        return self.protocol.state.options.download_rate if rate is None else rate

    @rate.setter
    def rate(self, value: int) -> None:
        self._rate = value

    @property
    def started(self) -> bool:
        """The response's head was sent (or the exchange ended without one)."""
        return self.phase >= SENDING

    @property
    def finished(self) -> bool:
        """The response was sent whole, or cut short."""
        return self.phase == DONE

    @property
    def detached(self) -> bool:
        """Its handler returned, leaving the unfinished response to code of its own."""
        return self.phase == DETACHED

    def detach(self) -> None:
        """The handler returns, and other code of the application goes on with the
        started response; the connection is closed if nothing finishes it within
        keepalive_timeout."""
        if self.phase == SENDING:
            self.phase = DETACHED

    # -- what an adapter uses of the connection --------------------------------

    @property
    def connection(self) -> Connection:
        """The connection, as much of it as an adapter may use (see Connection)."""
        return self.protocol

    @property
    def options(self) -> Options:
        """The listener's options."""
        return self.protocol.state.options

    @property
    def info(self) -> ConnectionInfo | None:
        """The connection's facts: its ends, TLS, whether its peer is trusted."""
        return self.protocol.info

    @property
    def closed(self) -> bool:
        """The connection is closed: nothing written reaches the client."""
        return bool(self.flow.closed)

    def gone(self, why: str = "client disconnected") -> ClientDisconnected:
        """What tells a writer that the client is gone (raise it): its handler is
        then unwinding, and is not cancelled in its cleanup (see Flow.gone)."""
        gone: ClientDisconnected = self.flow.gone(why)
        return gone

    @property
    def buffer_size(self) -> int:
        """The connection's buffer_size: what a write may hold at once."""
        return int(self.flow.buffer_size)

    def watch_close(self, future: asyncio.Future[None]) -> None:
        """Resolves `future` when the connection closes."""
        self.protocol.watch_close(future)

    # -- request body --------------------------------------------------------

    @property
    def has_unread_body(self) -> bool:
        """Body bytes have arrived that the handler has not read yet."""
        return bool(self._body)

    @property
    def body_complete(self) -> bool:
        """The whole body has arrived (some may still wait to be read)."""
        return self._ended

    @property
    def body_exhausted(self) -> bool:
        """The whole body has arrived and been read (a body that failed never has:
        its error is still to be read)."""
        return self._read_to_end()

    # _feed(data) (a piece read: queued, the handler woken), _wake() and
    # take_body(most) are ExchangeCore's

    def _end(self, error: BaseException | None = None) -> None:
        self._ended = True
        self._error = error
        self._wake()
        self.stop_clock()

    async def receive(self) -> bytes:
        """The next piece of the request body; b"" once it has all been read."""
        while not self._body:
            if self._ended:
                if self._error is not None:
                    raise self._error
                return b""
            if self._expect:
                self.send_continue()
            p = self.protocol
            loop = p.loop
            timeout, what = self._body_wait()
            waiter = self._waiter = loop.create_future()
            start = loop.time()
            deadline = self._deadline = start + timeout
            if self._clock is None or self._clock.when() > deadline:
                if self._clock is not None:
                    self._clock.cancel()
                self._clock = loop.call_at(deadline, self._body_clock)
            try:
                await waiter
            except BaseException as exc:
                self.stop_clock()
                if isinstance(exc, RequestTimeout):
                    p.state.logger.info("timed out waiting for %s", what)
                raise
            finally:
                self._waiter = None
                self._waited += loop.time() - start
        # (the next piece, counted off, and a paused read let go on: the core's)
        return self.take_body(1)[0]

    def inform(self, status: int, fields: list[Header]) -> None:
        """An interim response (103 Early Hints) before the answer: none once the
        answer started, nor to HTTP/1.0 (which has none)."""
        if self.phase == RECEIVED and not self.http10:
            self.flow.write(_core.interim(status, fields))

    def send_continue(self) -> None:
        """Tells a client waiting for it (Expect: 100-continue) to send the body:
        once, and only before the response starts."""
        if self._expect:
            self._expect = False
            if self.phase == RECEIVED:
                self.flow.write(_CONTINUE)

    def _body_clock(self) -> None:
        """The body's timer: one for all its waits, moved on when it finds the wait
        at hand due later, rather than one made and cancelled for each piece (a
        streamed upload waits once per read)."""
        self._clock = None
        w = self._waiter
        if w is None or w.done():
            return  # between waits: the next one arms it again
        loop = self.protocol.loop
        if loop.time() < self._deadline:
            self._clock = loop.call_at(self._deadline, self._body_clock)
            return
        time_out(w)

    def stop_clock(self) -> None:
        """No more waits for the body: its timer (and the exchange it holds) goes."""
        if self._clock is not None:
            self._clock.cancel()
            self._clock = None

    def _body_wait(self) -> tuple[float, str]:
        """How long the next wait for the body may last: request_timeout, and less
        when the client is behind body_min_rate. Only time a handler spends waiting
        counts (a handler that reads slowly is not the client's fault); the
        allowance is a grace of request_timeout plus 1/rate seconds per byte
        received, so a body trickled to stay just inside each wait still ends."""
        opts = self.protocol.state.options
        rate = opts.body_min_rate
        if opts.upload_rate:  # the server's own pacing must not count against it
            rate = min(rate, opts.upload_rate // 2)
        if rate <= 0:
            return opts.request_timeout, "the request body"
        allowance = opts.request_timeout + self._received / rate - self._waited
        if allowance >= opts.request_timeout:
            return opts.request_timeout, "the request body"
        return max(allowance, 0.0), (f"the request body (arriving slower than "
                                     f"body_min_rate, {rate} bytes/s)")

    # -- response ------------------------------------------------------------

    @property
    def event_stream(self) -> bool:
        """The response is Server-Sent Events (it never ends by itself)."""
        return any(name.lower() == b"content-type" and value.startswith(b"text/event-stream")
                   for name, value in self.fields)

    def _close_after(self) -> bool:
        # A client that was never told to send its announced body may still send
        # it: the connection cannot be reused safely. (respond() inlines this.)
        # (and a body left unread, where the adapter's rule is to close then)
        return not self.keep_alive or (self._expect and not self._ended) or (
            self.protocol.state.close_unread and not self._read_to_end())

    def _read_to_end(self) -> bool:
        return self._ended and not self._body and self._error is None

    # respond() is ExchangeCore's: encoded, written and finished in one call; a
    # large body goes on here

    def _respond_writev(self, status: int, headers: Iterable[Header], body: bytes,
                        reason: bytes | None, keep: bool) -> None:
        """respond() for a large body: not copied next to the head, both go out in
        one writev. `keep`: the server's keep-alive as respond() worked it out."""
        state = self.protocol.state
        head, keep = _encode_head(status, headers, len(body), False,
                                  keep and self.head.keep_alive, self.http10,
                                  state.date, state.server_name, reason)
        self.status = status
        self.fields = headers
        self.sent = len(body)
        self.phase = SENDING
        self.keep_alive = keep
        self.flow.writelines(head, body)
        self._finish()

    def start(self, status: int, headers: Iterable[Header], *,
              content_length: int | None = None, reason: bytes | None = None,
              chunked: bool = True) -> None:
        """Sends the head of a streamed response: chunked on HTTP/1.1 unless a
        length is given (or `chunked` is False), else delimited by closing."""
        if self.phase != RECEIVED:
            raise RuntimeError("response already started")
        self.status = status
        self.fields = headers
        keep = self.head.keep_alive and not self._close_after()
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
        self.phase = SENDING
        self.chunked = chunked
        self.keep_alive = keep
        if content_length is not None and not no_body:
            self._left = content_length
        self.flow.write(data)

    def limited(self, size: int) -> bool:
        """Whether sending `size` bytes now would go past the speed limit (0: none)."""
        if not self.rate:
            return False
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
        if not SENDING <= self.phase < DONE:
            raise RuntimeError("write() needs a started, unfinished response")
        if not data or self.head_only:
            return
        if self._left is not None:
            if len(data) > self._left:
                raise RuntimeError(f"the body is longer than its Content-Length "
                                   f"({len(data) - self._left} bytes too many)")
            self._left -= len(data)
        self.sent += len(data)
        if not self.rate:
            await self._write(data)
            return
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
        self.sent += size
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
                if self.flow.closed:
                    raise self.flow.gone()

    async def _write(self, data: bytes) -> None:
        f = self.flow
        if not self.chunked:
            f.write(data)
        elif len(data) < _COPY_LIMIT:
            f.write(_encode_chunk(data))
        else:
            f.writelines(_chunk_head(len(data)), data, _CHUNK_END)
        if f.write_paused:
            await f.drain()

    async def send_raw(self, data: bytes) -> None:
        """Writes bytes as they are (the caller frames them). Before anything was
        sent, the caller writes the whole response itself, status line included, and
        the connection closes after it: the server cannot know where it ends."""
        if self.phase == RECEIVED:
            self.phase = SENDING
            self.keep_alive = False
        self.chunked = False  # the caller frames the body now: end() adds nothing
        self._left = None
        self.sent += len(data)
        f = self.flow
        f.write(data)
        if f.write_paused:
            await f.drain()

    def fail(self, text: str = "") -> None:
        """The application failed: a 500 if nothing was sent yet (its body `text`,
        or the reason phrase; never what the application's exception says), else
        the body is cut short and the connection closed (which is how the client
        learns it)."""
        if self.phase == DONE or self.flow.closed:
            return
        if self.phase == RECEIVED:
            self.refuse(refusal(500, text))
        else:
            self.abort()

    def refuse(self, error: HTTPException) -> None:
        """Answers with the server's own answer to `error` (a failed body read: 408,
        400, 413; see answers.py), whatever the application made of it; the
        connection closes."""
        if self.phase == DONE or self.flow.closed:
            return
        if self.phase != RECEIVED:
            self.abort()
            return
        self.keep_alive = False
        headers, body, reason = answer_parts(error)
        self.respond(error.code, headers, body, reason)

    def abort(self) -> None:
        """Finishes without a response: the connection is closed."""
        if self.phase != DONE:
            self.keep_alive = False
            self._finish()

    def end(self, trailers: list[Header] | None = None) -> None:
        """Finishes a started response."""
        if self.phase == DONE:
            return
        if self._left:
            # shorter than announced: only closing can tell the client
            self.protocol.state.logger.error(
                "the body ended %d bytes short of its Content-Length", self._left)
            self.abort()
            return
        if self.chunked and not self.head_only:
            self.flow.write(_core.last_chunk(trailers))
        self._finish()

    def _finish(self) -> None:
        self.phase = DONE
        if self._body:
            self._body.clear()
            self._body_size = 0
        p = self.protocol
        state = p.state
        if state.access is not None or state.counters is not None:
            self._account(state)
        p.exchange_finished(self)

    def _account(self, state: ServerState) -> None:
        """Logs and counts the finished request."""
        try:
            if state.access is not None:
                state.access.log(self)
            if state.counters is not None:
                state.counters.request(self.status, perf_counter() - self.t0)
        except Exception:
            # what is counted and logged never costs the connection its next request
            state.logger.exception("logging or counting a request failed")
