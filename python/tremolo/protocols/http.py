"""HTTP/1.1 over an asyncio transport: bytes in, core events, responses out.

One `HTTPProtocol` per connection. It feeds every read to the Rust parser once and
acts on the events: each request becomes an `Exchange` handed to the application
adapter. Responses go out in request order; a pipelined request waits until the one
before it is answered. Flow control (flow.py) pauses reading while too much is queued
or buffered, or while the client does not read; writing waits while the client does
not read. After a 101 the connection is handed over (`take_over`) to another protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any, cast

from .. import _core
from ..exceptions import HTTPException
from .adapter import Adapter
from .answers import answer_parts, refusal, too_large
from .bodyreads import BodyReads
from .connection import ConnectionInfo, fit_send_buffer
from .exchange import Exchange, burst
from .flow import LINGER_BYTES, LINGER_SECONDS, ClientDisconnected, Flow
from .lifecycle import CLOSED, DONE, HANDSHAKE, HTTP, LINGER, PROXY, REFUSED, TAKEN
from .state import ServerState
from .takeover import Takeover
from .task import RUNNING, RequestTask, cancel_later

if TYPE_CHECKING:
    import logging

    from ..config import Options
    from .lending import LentBody

_RequestHead = _core.RequestHead
_encode_response = _core.encode_response
#: in a graceful stop, how long a connection idle since its last answer may still
#: bring a request (see close_when_idle)
STOP_GRACE = 0.5
#: the most one read of a transport brings (asyncio's and uvloop's read 256 KiB)
EARLY_READ = 256 << 10


class HTTPProtocol(_core.ProtocolCore, asyncio.Protocol):
    """HTTP/1.1 on one connection. Its phase (lifecycle.py) says what the
    connection is doing; each method below acts by phase, and the transitions are
    made here: connection_made, read_proxy_header, close_gently, take_over and
    connection_lost.

    The usual request (a read that is one whole request without a body, on an idle
    connection in its HTTP phase) goes through ProtocolCore (rust/src/py/
    connection.rs): `data_received`, its exchange and task, and `exchange_finished`,
    with the fields they read (`phase`, `state`, `flow`, `loop`, `handler`, `eager`,
    `parser`, `current`, `reading`, `pending`, `task`, `eof`, `reused`,
    `idle_since`, `upload_rate`); everything else is here, and those call back the
    methods named in it (`_data_received`, `_queue_events`, `_start_task`,
    `_waiting`, `_close_behind`)."""

    if TYPE_CHECKING:
        state: ServerState
        flow: Flow
        loop: asyncio.AbstractEventLoop
        current: Exchange | None
        reading: Exchange | None
        pending: deque[object]
        task: RequestTask | None

    #: what was read before HTTP: the PROXY protocol header until it is whole
    #: (PROXY), or what the TLS layer decrypted before the handshake's end reached
    #: this protocol (HANDSHAKE)
    preamble: bytearray | None = None
    #: bytes still to drop before closing (LINGER; see close_gently)
    lingering = 0
    #: who reads the rest of the body being received instead of this protocol,
    #: which does not read while it is set (a WSGI application's thread reading from
    #: the socket: lending.py)
    reads_lent: LentBody | None = None
    #: the handler whose cancel is planned already (see _cancel_later)
    _cancel_planned: Any = None

    def __init__(self, state: ServerState, adapter: Adapter) -> None:
        self.state = state
        #: see lifecycle.py (an attribute of each connection: read on every request,
        #: where CPython 3.11 reads a class attribute by its slow path)
        self.phase = HTTP
        self.loop = state.loop
        self.adapter = adapter
        self.handler = adapter.handle
        self.eager = adapter.eager
        self.exchange_class = Exchange
        self.on_done = self.handler_done
        opts = state.options
        #: both directions' flow control and the transport (handed over after a 101)
        self.flow = Flow(self.loop, opts.buffer_size, opts.request_timeout)
        # (the counters are read from the state: one attribute more here would make
        # CPython give up its fast attribute access on every connection)
        self.flow.counters = state.counters
        if state.counters is not None:
            self.data_received = self._counted_data_received  # type: ignore[method-assign]
        #: the connection's facts (peer, trusted proxy, TLS, server address)
        self.info: ConnectionInfo | None = None
        #: per-connection storage for the application adapter
        self.context: dict[str, Any] = {}
        #: when the connection last became idle (opened, or a response ended)
        self.idle_since = self.loop.time()
        #: whether it served a request already (then idling is keep-alive)
        self.reused = False
        #: bytes per second a request body is read at (0: no limit)
        self.upload_rate = opts.upload_rate
        self.upload_bucket: _core.TokenBucket | None = None
        self.rate_paused = False
        self._close_watchers: list[asyncio.Future[None]] = []
        self.parser = _core.RequestParser(**state.parser_limits)
        self.transport: asyncio.Transport | None = None
        self.current: Exchange | None = None  # being answered
        self.reading: Exchange | None = None  # receiving body events
        self.pending: deque[object] = deque()  # events behind a request being answered
        #: bytes of body data in `pending` (reading pauses past a bound, as for events)
        self.pending_bytes = 0
        #: the handler task started last, while it runs on after its first step
        self.task: RequestTask | None = None
        self.processing = False
        self.eof = False
        self._max_queue = opts.max_queue_size
        #: body bytes that may wait for the handler before reading pauses: the
        #: kernel's receive buffer holds the rest, without costing the worker
        self._max_buffered = min(opts.buffer_size * 4, state.body_piece)

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        state = self.state
        counters = state.counters
        if counters is not None:
            counters.connections += 1
        self.flow.attach(transport)
        self.info = ConnectionInfo(transport, state.trust)
        fit_send_buffer(transport, self.info.peer)
        limit = state.options.limit_concurrency
        over = limit and state.serving() >= limit
        # every open socket is a connection of the worker, refused or not: the
        # sweeper bounds them all, and the gauge counts what is really open
        state.connections.add(self)
        if over:
            # over the worker's limit: a short answer, not a connection left waiting
            # (over TLS, closed at once: a handshake is what the limit saves)
            self.phase = REFUSED
            state.refused += 1
            if state.ssl is None:
                self.refused(503, self.answer(refusal(
                    503, f"the server is at its limit of connections ({limit})"),
                    (b"Retry-After", b"1")))
            if counters is not None:
                counters.reject(503, "limit_concurrency")
            self.close()
            return
        if state.options.proxy_protocol != "off" and self.info.trusted:
            # the application hears of the connection once the header named its client
            self.phase = PROXY
            self.preamble = bytearray()
            return
        if state.ssl is not None:
            self.start_tls(b"")
            return
        self.adapter.connection_made(self)

    def start_tls(self, early: bytes) -> None:
        """Starts the TLS handshake (HANDSHAKE). `early` is what the client sent
        that was read already (after its PROXY header): the start of its
        ClientHello, which the TLS layer is given before anything read later."""
        self.phase = HANDSHAKE
        self.preamble = bytearray(early)
        handshakes = self.state.handshakes
        task = self.loop.create_task(self._handshake())
        handshakes.add(task)
        task.add_done_callback(handshakes.discard)
        # start_tls pauses reading, puts the TLS layer in place, and schedules its
        # connection_made and resume_reading, in the task's first step; going round
        # the loop once more comes right after them, before anything is read again
        self.loop.call_soon(self.loop.call_soon, self._early_tls)

    def _early_tls(self) -> None:
        """Hands the TLS layer what the client sent before it was in place."""
        t = self.transport
        early, self.preamble = self.preamble, None
        if self.phase is not HANDSHAKE or t is None or not early:
            return
        # the TLS layer of asyncio and of uvloop both read into buffers they give
        # (uvloop's is not an asyncio.BufferedProtocol subclass, but behaves as one)
        tls = cast(asyncio.BufferedProtocol, t.get_protocol())
        view = memoryview(early)
        while view:
            buf = memoryview(tls.get_buffer(len(view)))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            tls.buffer_updated(n)
            view = view[n:]

    async def _handshake(self) -> None:
        state = self.state
        assert self.transport is not None and state.ssl is not None
        try:
            tls = await self.loop.start_tls(
                self.transport, self, state.ssl, server_side=True,
                ssl_handshake_timeout=state.options.request_timeout)
        except Exception as exc:  # a failed handshake is the client's: it is closed
            peer = self.peer
            state.logger.info("TLS handshake with %s failed: %s",
                              f"{peer[0]}:{peer[1]}" if peer else "a UNIX socket peer",
                              exc or type(exc).__name__)
            if self.phase is HANDSHAKE:
                self.flow.abort()
            return
        if self.phase is not HANDSHAKE or tls is None:
            return  # lost meanwhile
        self.transport = tls
        self.flow.attach(tls)
        assert self.info is not None
        self.info.secure = True
        self.phase = HTTP
        self.adapter.connection_made(self)
        early, self.preamble = self.preamble, None
        if early:
            self.data_received(bytes(early))
        if self.eof and not self.closed:
            self.eof_received()

    def _data_received(self, data: bytes) -> None:
        """A read ProtocolCore.data_received does not take the short way with: in
        another phase than HTTP, or with an upload speed limit to count it against."""
        if self.phase is not HTTP:
            data = self._outside_http(data)
            if not data:
                return
        if self.reading is not None and self.upload_rate:
            self.limit_upload(len(data))
        events = self.parser.feed_request(data)
        if isinstance(events, _RequestHead) and self.current is None and not self.pending:
            self.start_exchange(events)
            return
        self._queue_events(events)

    def _queue_events(self, events: _core.RequestHead | list[object]) -> None:
        """Parser events behind a request being answered, or more than one request
        (or a body): queued, and acted on in order."""
        if isinstance(events, _RequestHead):
            self._queue((events, None))
        elif self.reading is not None and not self.pending and not self.processing \
                and all(type(ev) is bytes for ev in events):
            # the usual read of a body being streamed: its pieces go straight to
            # the request reading it (more body waiting can only pause reading)
            reading = self.reading
            for ev in events:
                reading._feed(ev)  # type: ignore[arg-type]
            if reading._body_size > self._max_buffered:
                self.update_reading()
            return
        else:
            self._queue(events)
        self.process()

    def _counted_data_received(self, data: bytes) -> None:
        # data_received when the metrics are on (see __init__)
        assert self.state.counters is not None
        self.state.counters.bytes_in += len(data)
        _core.ProtocolCore.data_received(self, data)

    def _outside_http(self, data: bytes) -> bytes:
        """What a read means in a phase other than HTTP; returns what is left to
        parse as HTTP."""
        if self.phase is PROXY:
            return self.read_proxy_header(data)
        if self.phase is HANDSHAKE:
            # before the TLS layer is in place: the client's first TLS bytes; after
            # it, decrypted data, once the handshake is over but before the task
            # that saw it end has run (what the read that ended the handshake
            # brought: a head and the start of a body): either way kept, within
            # one read of the transport and a head
            if self.preamble is None:
                self.preamble = bytearray()
            self.preamble += data
            if len(self.preamble) > EARLY_READ + self.state.options.client_max_header_size:
                self.abort()
        if self.phase is LINGER:
            self.lingering -= len(data)  # dropped: the answer was given
            if self.lingering < 0:
                self.close()
        return b""  # refused: nothing is read any more

    def read_proxy_header(self, data: bytes) -> bytes:
        """Reads the PROXY protocol header a trusted load balancer sends first; from
        then on the client it names is the peer (and, untrusted, its own proxy
        fields are not believed). What follows the header is returned; a malformed
        header closes the connection without an answer (it is not HTTP)."""
        assert self.preamble is not None and self.info is not None
        buf = self.preamble
        buf += data
        try:
            found = _core.proxy_header(bytes(buf), self.state.options.proxy_protocol)
        except ValueError as exc:
            peer = self.info.peer
            self.state.logger.info("refused a connection from %s: %s",
                                   f"{peer[0]}:{peer[1]}" if peer else "a UNIX socket peer",
                                   exc)
            self.preamble = None
            self.close()
            return b""
        if found is None:
            return b""
        used, addresses = found
        self.preamble = None
        if addresses is not None:
            self.info.proxied(*addresses)
        if self.state.ssl is not None:
            self.start_tls(bytes(buf[used:]))
            return b""
        self.phase = HTTP
        self.adapter.connection_made(self)
        return bytes(buf[used:])

    def eof_received(self) -> bool | None:
        # A half-closed client still gets its answers; then the connection closes.
        self.eof = True
        # Keeping the write side open is what True asks for; a TLS transport closes
        # anyway and would warn about it on every connection.
        half_open = self.info is None or not self.info.secure
        if self.phase is HANDSHAKE:
            return False  # seen by the task that ends the handshake (_handshake)
        if self.phase is not HTTP:
            self.close()  # lingering: the client has read the answer and is done
            return half_open
        if self.reading is not None and not self.reading.body_complete:
            # the rest of that body can never come
            self.reading._end(ClientDisconnected("client closed before the body ended"))
            self.reading = None
        task = self.task
        if task is not None and not task.done():
            # a closed client and a half-closed one look the same: the answer may
            # still be wanted, but not for longer than app_close_timeout
            self._cancel_later(task)
        if self.current is None and not self.pending:
            self.close()
        return half_open

    def _cancel_later(self, task: Any, told: bool = False) -> None:
        """Cancels the handler once its grace is over, and once: the EOF and then the
        connection's loss must not cancel it twice. A handler `told` already (a
        write or a read of it raised ClientDisconnected) is unwinding: a cancel now
        would land in its cleanup (a generator's `finally` that awaits), so it gets
        app_close_timeout to finish, as any handler whose client left."""
        if self._cancel_planned is not task:
            self._cancel_planned = task
            if told:
                cancel_later(self.loop, self.state.options.app_close_timeout, task)
            else:
                self.loop.call_later(self._grace(), self._cancel_unless_told,
                                     weakref.ref(task))

    def _cancel_unless_told(self, ref: weakref.ref[Any]) -> None:
        """The grace is over: the handler is cancelled, unless a write told it the
        client is gone meanwhile (it is unwinding: app_close_timeout more)."""
        task = ref()
        if task is None or task.done():
            return
        if self.flow.told:
            cancel_later(self.loop, self.state.options.app_close_timeout, task)
        else:
            task.cancel()

    def _grace(self) -> float:
        """How long the handler may go on once its client left: app_close_timeout,
        none for one that only streams to it (Exchange.cancel_when_gone)."""
        ex = self.current
        if ex is not None and ex.cancel_when_gone:
            return 0.0
        return self.state.options.app_close_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        phase = self.phase
        if phase is CLOSED:
            return  # told twice when a TLS handshake fails
        self.phase = CLOSED
        # (the bound handler_done refers to this protocol: let go of it, so the
        # protocol goes when its last reference does, not at a collection)
        self.on_done = None
        told = self.flow.lost()
        self.state.connections.discard(self)
        if phase is REFUSED:
            self.state.refused -= 1
        gone = ClientDisconnected("client disconnected")
        self._closed_now()
        if self.reading is not None and not self.reading.body_complete:
            self.reading._end(gone)
            told = True
        if self.reads_lent is not None:
            self.reads_lent.cut()  # a thread reading the body from the socket stops now
        task = self.task
        if task is not None and not task.done():
            self._cancel_later(task, told)
        if phase is HTTP or phase is LINGER:  # else the application never saw it
            self.adapter.connection_lost(self)

    def limit_upload(self, size: int) -> None:
        """Counts body bytes against upload_rate; past it, reading pauses (the
        client's data waits in the kernel and then in the client) until it may go on."""
        now = self.loop.time()
        bucket = self.upload_bucket
        if bucket is None:
            opts = self.state.options
            bucket = self.upload_bucket = _core.TokenBucket(
                self.upload_rate, burst(self.upload_rate, opts.buffer_size), now)
        allowed, _ = bucket.take(size, now)
        if allowed < size:
            # what arrived past the budget is owed: reading pauses until the bucket
            # has refilled that much, and it is taken then (the pause's tokens must
            # not go to the next read as well: with reads smaller than the burst, as
            # a long body's pieces of 64 KiB are under a rate above 640 KiB/s, that
            # let uploads through at ~1.5x the rate; protocols/test_rates.py measures it)
            self.rate_paused = True
            self._owe(size - allowed)
            self.update_reading()

    def _owe(self, owed: int) -> None:
        bucket = self.upload_bucket
        assert bucket is not None
        # at most a burst is waited for at once: the bucket holds no more
        self.loop.call_later(min(owed, bucket.burst) / bucket.rate, self.resume_upload, owed)

    def resume_upload(self, owed: int) -> None:
        bucket = self.upload_bucket
        assert bucket is not None
        allowed, _ = bucket.take(owed, self.loop.time())
        if allowed < owed:
            self._owe(owed - allowed)
            return
        self.rate_paused = False
        self.update_reading()

    def _closed_now(self) -> None:
        for w in self._close_watchers:
            if not w.done():
                w.set_result(None)
        self._close_watchers.clear()

    def _lost_after_takeover(self) -> None:
        """The protocol that took the connection over lost it: what waits for the
        close hears of it, and the application adapter."""
        self._closed_now()
        self.adapter.connection_lost(self)

    def set_queue_limit(self, events: int) -> None:
        """max_queue_size for this connection from now on (a handler's write to
        `request.protocol.options`)."""
        self._max_queue = events
        self.update_reading()

    def set_upload_rate(self, rate: int) -> None:
        """upload_rate for this connection from now on (a handler's write to
        `request.protocol.options`): a new rate starts a new bucket."""
        self.upload_rate = rate
        self.upload_bucket = None

    def watch_close(self, future: asyncio.Future[None]) -> None:
        """Resolves `future` when the connection closes."""
        if self.closed:
            if not future.done():
                future.set_result(None)
        else:
            self._close_watchers.append(future)

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()
        if self.pending and self.current is None:
            self.process()  # requests wait while the client does not read the answers

    # -- events --------------------------------------------------------------

    def process(self) -> None:
        """Acts on parser events in order. A request head waits while the request
        before it is being answered, and while the client is not reading the answers
        (flow.write_paused); body events go to the request they belong to.
        A handler that answers at once finishes inside this loop, so the loop (not
        recursion) carries on with the next pipelined request."""
        if self.processing:
            return
        self.processing = True
        pending = self.pending
        try:
            while pending or self._declined_upgrade():
                ev = pending[0]
                kind = type(ev)
                if kind is _RequestHead:
                    if self.current is not None or self.flow.write_paused:
                        break
                    pending.popleft()
                    if pending and pending[0] is None and not ev.has_body:  # type: ignore[attr-defined]
                        # its end, taken now: a handler that answers in its first
                        # step (a 101, say) finds nothing of its own still queued
                        pending.popleft()
                    self.start_exchange(ev, False)  # type: ignore[arg-type]
                elif kind is bytes:
                    pending.popleft()
                    self.pending_bytes -= len(ev)  # type: ignore[arg-type]
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
                    self.pending_bytes = 0
        finally:
            self.processing = False
        if self.eof and self.current is None and not pending:
            self.close()
        self.update_reading()

    def _declined_upgrade(self) -> bool:
        """After an upgrade request the parser holds what follows. Once that request
        is answered without a takeover (and its body, if any, consumed), what the
        client sent after it is HTTP again: it is parsed now. True if that gave
        events."""
        if self.current is None and not self.pending and self.parser.paused \
                and self.phase is HTTP:
            self._queue(self.parser.resume())
        return bool(self.pending)

    def _queue(self, events: Sequence[object]) -> None:
        self.pending.extend(events)
        self.pending_bytes += sum(len(ev) for ev in events if isinstance(ev, bytes))

    def start_exchange(self, head: _core.RequestHead, whole: bool = True) -> None:
        """Starts answering the request `head`; `whole`: it was read whole, without a
        body, an expected 100-continue or an upgrade (else those are taken from it)."""
        state = self.state
        state.requests += 1
        if state.requests == state.max_requests and state.recycle is not None:
            state.recycle(f"served max_requests ({state.max_requests})")
        ex = Exchange(self, head)
        if not whole:
            _, _, _, has_body, ex._expect, ex.upgrade = head.info()
            if has_body:
                ex._ended = False
                self.reading = ex
                length = head.content_length
                if (length is None or length > state.body_piece) and not ex.upgrade:
                    self.read_in_pieces()
        if state.stopping or not state.keepalive:
            ex.keep_alive = False
        if state.access is not None or state.counters is not None:
            ex.t0 = perf_counter()
        self.current = ex
        if not self.eager:
            self._start_task(ex)
            return
        task = RequestTask(self.loop, self.handler(ex), self.handler_done, ex)
        outcome = task.run_first()
        if outcome is None:
            if ex.phase != DONE:
                self.handler_done(ex, None)
            return  # ended at once: no clock needed
        if outcome is not RUNNING:
            self.handler_done(ex, outcome)  # type: ignore[arg-type]
            return
        self._waiting(ex, task)

    def read_in_pieces(self) -> None:
        """Reads the body now streaming in pieces of state.body_piece (bodyreads.py)."""
        if self.transport is None:
            return
        # (a transport that cannot change protocols reads as it always did)
        with contextlib.suppress(NotImplementedError):
            self.transport.set_protocol(BodyReads(self, self.state.body_buffer()))

    def _start_task(self, ex: Exchange) -> None:
        """Starts the handler of `ex` from the loop (an adapter that is not eager)."""
        task = RequestTask(self.loop, self.handler(ex), self.handler_done, ex)
        self.loop.call_soon(task.start)
        self._waiting(ex, task)

    # _waiting(ex, task) and handler_done(ex, exc) are ProtocolCore's: a handler
    # that goes on after its first step has its task kept and its clock started
    # (ex.handler_deadline, checked by check_clocks); when it ends they go, and this
    # finishes what it left:

    def _handler_ended(self, ex: Exchange, exc: BaseException | None) -> None:
        """A handler ended with an error, with a body clock running, or without
        finishing its exchange (its task is let go already)."""
        if ex._clock is not None:
            ex.stop_clock()  # a handler that stopped reading a body waits no more
        if exc is not None and not isinstance(exc, asyncio.CancelledError | ClientDisconnected):
            self.state.logger.error("unhandled error in handler", exc_info=exc)
        if ex.phase == DONE:
            return
        if ex.detached:
            self.idle_since = self.loop.time()  # see check_clocks
        elif ex.ending and ex.started:
            ex.end()  # an event stream ended for a stop: a clean end, not a cut
        else:
            ex.fail()

    def handler_timed_out(self, task: RequestTask) -> None:
        self.state.logger.error("handler cancelled after app_handler_timeout (%ss)",
                                self.state.options.app_handler_timeout)
        task.cancel()

    # exchange_finished(ex) is ProtocolCore's: the connection goes on to what
    # follows, or (the exchange not keeping it) this:

    def _close_behind(self, ex: Exchange) -> None:
        """Closes after `ex`, gently when its body was not all received."""
        if ex.body_complete:
            self.close()
        else:
            self.close_gently()  # answered before its body was read

    def answer(self, error: HTTPException, *fields: tuple[bytes, bytes]) -> int:
        """Writes the server's own answer to `error` (see answers.py); the connection
        then closes. Returns how many bytes it was."""
        headers, body, reason = answer_parts(error)
        data = _encode_response(error.code, [*headers, *fields], body, False, False,
                                self.state.date, self.state.server_name, reason)[0]
        self.write(data)
        return len(data)

    def refused(self, status: int, sent: int) -> None:
        """The access log's line for a request refused before any handler."""
        access = self.state.access
        if access is not None:
            try:
                access.refused(self, status, sent)
            except Exception:
                self.state.logger.exception("logging a refused request failed")

    def parse_error_status(self, status: int, reason: str, answer: str) -> None:
        """Refuses the request: answers `status` with the text `answer`, logs
        `reason`, and closes the connection (gently after a 413: the client may be
        sending a body nobody will read)."""
        counters = self.state.counters
        if counters is not None:
            counters.reject(status, reason)
        reason = self._explained(status, reason)
        info = self.info
        peer = info.peer if info is not None else None
        self.state.logger.info("refused a request from %s: %d %s: %s",
                               f"{peer[0]}:{peer[1]}" if peer else "a UNIX socket peer",
                               status, _core.reason_phrase(status), reason)
        self.refused(status, self.answer(refusal(status, answer)))
        if status == 413:
            self.close_gently()  # the client may be sending the body it announced
        else:
            self.close()

    def close_gently(self) -> None:
        """Closes after an answer given before the request's body was read. Closing
        with unread data makes the kernel reset the connection, and a client still
        sending its body may then never read the answer; so the server ends its side
        (FIN) and reads on, dropping what comes, until the client closes, or for at
        most LINGER_BYTES or LINGER_SECONDS."""
        t = self.transport
        if t is None or self.closed or self.phase is not HTTP:
            return
        self.phase = LINGER
        self.lingering = LINGER_BYTES
        self.current = self.reading = None
        self.pending.clear()
        self.pending_bytes = 0
        try:
            if t.can_write_eof():
                t.write_eof()
        except (NotImplementedError, RuntimeError, OSError):
            pass  # no half-close here (TLS): reading on and closing later still helps
        self.flow.hold(False)
        self.loop.call_later(LINGER_SECONDS, self.close)

    def _explained(self, status: int, reason: str) -> str:
        """A parse error's reason, naming the option behind a limit (for the log: the
        client gets the original's words)."""
        if status == 413:
            return too_large(self.parser.max_body_size)
        return reason

    def parse_error(self, err: _core.HTTPParseError) -> None:
        reading = self.reading
        if reading is not None:
            # the handler reading the body learns why, as the error that answers it
            self.state.logger.info("request body refused: %s",
                                   self._explained(err.status, err.reason))
            refused = refusal(err.status, err.answer)
            refused.__cause__ = err
            reading._end(refused)
            self.reading = None
            if reading.finished:
                # that request was answered already: a second answer would answer
                # nothing, so the connection just closes
                self.close()
                return
        if self.current is not None:
            self.current.keep_alive = False  # answer it, then close
            return
        self.parse_error_status(err.status, err.reason, err.answer)

    # -- the connection ------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.flow.closed

    @property
    def peer(self) -> tuple[str, int] | None:
        """The peer (host, port); None on a UNIX socket."""
        return self.info.peer if self.info is not None else None

    @property
    def options(self) -> Options:
        """The listener's options."""
        return self.state.options

    @property
    def logger(self) -> logging.Logger:
        """The worker's error logger (tremolo.error)."""
        return self.state.logger

    def write(self, data: bytes) -> None:
        self.flow.write(data)

    def check_clocks(self, now: float) -> bool:
        """Closes a connection idle too long, or answers 408 to one whose request
        head is not complete within request_timeout of the connection opening (the
        PROXY header counts as part of the head); one whose next head is not complete
        within request_timeout of the previous response ending is closed unanswered.
        Requests being answered have their own clocks; one whose handler is over
        and that nothing finishes is closed. True if it is left open as an idle
        keep-alive connection. (A closing connection, lingering or refused one is
        bounded by its timer and by the sweeper's write-buffer clock.)"""
        if self.closed:
            return False
        opts = self.state.options
        waited = now - self.idle_since
        phase = self.phase
        if phase is not HTTP:
            if phase is PROXY and waited > opts.request_timeout:
                self.close()
            elif phase is HANDSHAKE and waited > opts.request_timeout + 1:
                self.abort()  # start_tls's own timeout did not end it
            return False
        ex = self.current
        if ex is not None:
            task = ex.task
            if ex.detached:
                # left to the application's own code: bounded like an idle connection
                if waited > opts.keepalive_timeout:
                    self.close()
            elif ex.phase == DONE or task is None or task.done():
                # the handler is over and the exchange was not finished (an error
                # in what finishes it): nothing else would ever end this connection
                self.state.logger.error("closed a connection whose exchange was left "
                                        "unfinished")
                self.close()
            elif 0 < ex.handler_deadline <= now:
                ex.handler_deadline = 0.0  # (once: a handler may swallow its cancellation)
                self.handler_timed_out(task)
            return False
        if self.parser.idle:
            if waited > (opts.keepalive_timeout if self.reused else opts.request_timeout):
                self.close()
                return False
            return self.reused
        if waited > opts.request_timeout:
            if self.reused:
                # the next request on a kept-alive connection: closed without an
                # answer, as the original's keep-alive clock does
                self.state.logger.info("closed a kept-alive connection whose next request "
                                       "head did not come in time")
                self.close()
            else:
                self.parse_error_status(408, "request head not received in time",
                                        f"request timeout after {opts.request_timeout:g}s")
        return False

    def abort(self) -> None:
        self.flow.abort()

    def update_reading(self) -> None:
        """Pauses reading while too much waits in memory; resumes once it drained."""
        buffered = self.reading._body_size if self.reading is not None else 0
        # While the parser holds bytes after an upgrade request, nothing is read
        # until the response decides what they are.
        self.flow.hold(len(self.pending) > self._max_queue or buffered > self._max_buffered
                       or self.pending_bytes > self._max_buffered
                       or self.parser.paused or self.rate_paused
                       or self.reads_lent is not None)

    def close_when_idle(self) -> None:
        """Closes once no request is being answered, else right after its response
        (which then says Connection: close). A connection that answered a moment ago
        is given STOP_GRACE for its next request (answered with a close) rather than
        being closed while that request may be on its way: a client that sends
        request after request (a load generator, a proxy's pool) sees every one
        answered. An event stream never ends by itself: its handler is cancelled and
        the stream ended cleanly (the client's EventSource reconnects, to a server
        that is still up)."""
        ex = self.current
        if ex is None:
            if self.parser.idle and self.loop.time() - self.idle_since >= STOP_GRACE:
                self.close()
            return
        ex.keep_alive = False
        if ex.started and not ex.finished and not ex.ending and ex.event_stream \
                and self.task is not None and not self.task.done():
            ex.ending = True
            self.task.cancel()

    def close(self) -> None:
        self.flow.close()

    # -- the takeover seam ---------------------------------------------------

    def take_over(self, ex: Exchange, make: Callable[[Takeover], asyncio.Protocol]
                  ) -> asyncio.Protocol:
        """Hands the connection to another protocol after `ex` was answered with a
        101: the transport, the bytes read after the request, flow control, the
        handler's task and the connection's facts go to `make(takeover)`, and
        this protocol lets go of the connection."""
        if ex is not self.current or not ex.started or self.pending or self.closed \
                or self.phase is not HTTP:
            raise RuntimeError("only the exchange being answered, after its 101, can hand "
                               "the connection over")
        assert self.transport is not None and self.info is not None
        self.phase = TAKEN
        self.on_done = None  # (see connection_lost)
        ex.phase = DONE
        ex.handler_deadline = 0.0  # app_handler_timeout is for HTTP answers
        self.current = self.reading = None
        self.state.connections.discard(self)
        task = ex.task
        if task is None:
            # taken over in the handler's first step: its task is the running one
            running = asyncio.current_task(self.loop)
            task = running if isinstance(running, RequestTask) else None
        takeover = Takeover(transport=self.transport, flow=self.flow, state=self.state,
                            info=self.info, buffered=self.parser.take_buffered(),
                            task=task, eof=self.eof,
                            lost=self._lost_after_takeover, exchange=ex)
        self.task = None
        if self.state.access is not None:
            self.state.access.log(ex)  # the 101
        counters = self.state.counters
        if counters is not None:
            counters.request(ex.status, perf_counter() - ex.t0)
        protocol = make(takeover)
        self.transport.set_protocol(protocol)
        return protocol
