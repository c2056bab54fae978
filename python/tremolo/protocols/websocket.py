"""WebSocket on a connection taken over after a 101 (see takeover.py).

Every read goes to the Rust codec once; the pongs it answers with are written at
once. Messages wait in a queue for the application; reading pauses while the queue is
full or the client does not read what is sent (the same flow control as HTTP). The
codec decodes only as much as the queue has room for (a few KiB of compressed frames
can inflate to a thousand times as much) and holds the rest of the read; reading
stays paused until the application has taken enough for the codec to go on with it.

The answer to the client's close (the echo of its code) and the close that fails a
broken connection go out once the application is done with the messages that came
before them (it asks for the next one and the queue is empty), as a strict endpoint
does, or after ws_close_timeout if it does not read. The server's close frames carry
the code alone, as the original Tremolo's do (the reason goes to the log and to the
application). After failing a connection the server closes gently: its FIN, then
reading on and dropping what comes until the client's, so that a client still
sending gets the close frame rather than a reset. The per-worker sweeper pings a
silent client, closes (1000) one that does not answer (drops it if it does not read
either), and bounds the closing handshake.
"""

from __future__ import annotations

import asyncio
from collections import deque
from time import perf_counter
from typing import Any

from .. import _core
from .flow import (
    LINGER_BYTES,
    LINGER_SECONDS,
    RELEASE_AFTER,
    ClientDisconnected,
    release_memory_soon,
)
from .takeover import Takeover
from .task import cancel_later

_Frame = _core.Frame
_Error = _core.WebSocketError
_signal = _core.signal
PING, PONG, CLOSE = 9, 10, 8
#: the close code an application sees when the connection ended without a Close
ABNORMAL = 1006
#: what a client that does not answer a ping is closed with (the original's code for
#: a receive timeout)
NORMAL = 1000
#: what a graceful stop closes with (RFC 6455 §7.4.1: going away), and a worker
#: replaced by a reload or recycling (IANA's registry: service restart)
GOING_AWAY = 1001
SERVICE_RESTART = 1012


class ConnectionClosed(ClientDisconnected):
    """The WebSocket is closed: `code` and `reason` are the client's close (1005 when
    it sent no code, 1006 when the connection dropped without a close), or the code
    the server failed the connection with."""

    def __init__(self, code: int, reason: str = "", by_client: bool = True) -> None:
        super().__init__(f"WebSocket closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason
        #: False when the server closed it (a protocol error, a dead client)
        self.by_client = by_client


class WebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection, server side."""

    #: a read made a MiB or more of messages: once glibc has given such a block back,
    #: it serves blocks of that size from a heap it does not shrink by itself, so
    #: the memory is handed back when the connection ends (release_memory_soon)
    held_big = False

    def __init__(self, takeover: Takeover, codec: _core.WebSocketCodec) -> None:
        t = takeover
        self.transport = t.transport
        self.flow = t.flow
        self.state = t.state
        self.loop = t.state.loop
        self.info = t.info
        #: the handler serving this connection (the one that accepted it)
        self.task = t.task
        if self.task is not None:
            self.task.add_done_callback(self._handler_done)
        self._lost = t.lost
        self.codec = codec
        opts = t.state.options
        self.ping_interval = opts.ping_interval
        self.ping_timeout = opts.ping_timeout
        self.close_timeout = opts.ws_close_timeout
        self._max_queue = opts.max_queue_size
        self._max_queued = max(opts.buffer_size * 4, 1)
        self.events: deque[Any] = deque()
        self.queued = 0  # bytes waiting in `events`
        #: what receive() waits on (a Signal: see rust/src/py/signal.rs)
        self._waiter: _core.Signal | None = None
        #: why it closed, once known (what receivers get as ConnectionClosed)
        self.closed_by: ConnectionClosed | None = None
        self.idle_since = self.loop.time()  # last heard from the client
        self.ping_sent: float | None = None
        self.close_deadline: float | None = None
        #: the close owed to the client (code, reason), sent once the queue is read
        self._answer: tuple[int | None, str] | None = None
        #: the client's EOF came while the codec held some of what it sent
        self._eof = False
        #: bytes still to drop before closing, once the server failed the connection
        #: and said so (see _linger); None before
        self.lingering: int | None = None
        #: whether _update_reading last held reading (True first: what the HTTP
        #: protocol held before the takeover is let go at the first update)
        self._paused = True
        self.state.connections.add(self)
        #: the handshake's exchange, and the bytes each way, for the access log
        self.exchange = t.exchange
        self.opened = perf_counter()
        self.received = self.sent = 0
        self.counters = t.state.counters
        if self.counters is not None:
            self.counters.ws_opened += 1
        if t.buffered:
            self.data_received(t.buffered)
        if t.eof:
            self.eof_received()
        self._update_reading()

    # -- asyncio.Protocol ----------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.lingering is not None:
            self.lingering -= len(data)  # dropped: the connection was failed
            if self.lingering < 0:
                self.close()
            return
        self.idle_since = self.loop.time()
        self.ping_sent = None  # anything from the client shows it is alive
        self.received += len(data)
        if self.counters is not None:
            self.counters.bytes_in += len(data)
        self._decode(data)
        self._update_reading()

    def _decode(self, data: bytes) -> None:
        """Decodes a read (b"": what the codec held) within the queue's room."""
        room = self._max_queued - self.queued if len(self.events) <= self._max_queue else 0
        reply, size, messages, end = self.codec.feed_into(data, room if room > 0 else 0,
                                                          self.events)
        if reply is not None:
            self._out(reply)
        self.queued += size
        if size >= RELEASE_AFTER:
            self.held_big = True
        if messages and self.counters is not None:
            self.counters.ws_in += messages
        if end is not None:
            if isinstance(end, _Error):
                self.state.logger.info("WebSocket client failed the protocol: %s (%d)",
                                       end.reason, end.close_code)
                self._closing(ConnectionClosed(end.close_code, end.reason, by_client=False),
                              (end.close_code, ""))
            else:  # the client's Close
                code = end.code if end.code is not None else 1005
                self._closing(ConnectionClosed(code, end.reason), (end.code, ""))
        self._wake(True)  # the handler takes the message before this returns

    def eof_received(self) -> bool | None:
        if self.lingering is not None:
            self.close()  # the client is done too
            return False
        if self.codec.held:
            self._eof = True  # what came before it is decoded first (_update_reading)
            return True
        self._closing(ConnectionClosed(ABNORMAL, "the client closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.flow.lost()
        self.state.connections.discard(self)
        if self.counters is not None:
            self.counters.ws_closed += 1
        if self.closed_by is None:
            self.closed_by = ConnectionClosed(ABNORMAL, "the connection was lost")
        access = self.state.access
        if access is not None and self.exchange is not None:
            try:
                access.closed(self.exchange, self.closed_by.code, self.received, self.sent,
                              perf_counter() - self.opened)
            except Exception:
                self.state.logger.exception("logging a WebSocket's close failed")
        self._wake()
        task = self.task
        if task is not None and not task.done():
            # a handler that does not notice is cancelled, as for HTTP
            cancel_later(self.loop, self.state.options.app_close_timeout, task)
        self._lost()
        if self.held_big:
            release_memory_soon(self.loop)

    def _out(self, frame: bytes) -> None:
        self.sent += len(frame)
        self.flow.write(frame)

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    def _handler_done(self, _task: object) -> None:
        """Nothing reads the queue once the handler has ended: what it held goes now,
        not when the cyclic GC gets to the handler's frames (they refer to this
        protocol, and a cancelled one to its task through the exception)."""
        self.events.clear()
        self.queued = 0
        self.task = None

    # -- for the application -------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.flow.closed

    async def receive(self) -> Any:
        """The next message (str or bytes) or frame (core Frame: a fragment, ping or
        pong); raises ConnectionClosed once the connection is closed and every
        message before the close has been received."""
        events = self.events
        while not events:
            await self._next()
        ev = events.popleft()
        self.queued -= len(ev) if type(ev) is not _Frame else len(ev.data)
        if self._paused:
            self._update_reading()  # (only a paused read can go on now)
        return ev

    def _next(self) -> _core.Signal:
        """What to await for the next event (whoever sets it drops it: a Signal is
        set once); raises ConnectionClosed once everything that came before the
        close has been received."""
        if self.closed_by is not None:
            self._answer_close()  # the application is done with what came before
            raise self.closed_by
        waiter = self._waiter = _signal(self.loop)
        return waiter

    async def receive_message(self) -> str | bytes:
        """The next whole message: str (text) or bytes (binary); a fragmented one is
        joined (the core checked its UTF-8 as a whole), pings and pongs are skipped."""
        events = self.events
        while not events:  # (_next() written out: one call fewer per message)
            if self.closed_by is not None:
                self._answer_close()
                raise self.closed_by
            self._waiter = _signal(self.loop)
            await self._waiter
        ev = events[0]
        kind = type(ev)
        if kind is bytes or kind is str:  # the usual message, taken as receive() would
            events.popleft()
            self.queued -= len(ev)
            if self._paused:
                self._update_reading()
            return ev  # type: ignore[no-any-return]
        ev = await self.receive()
        while True:
            kind = type(ev)
            if kind is str or kind is bytes:
                return ev  # type: ignore[no-any-return]
            if ev.opcode in (0, 1, 2):
                break
            ev = await self.receive()
        parts, text = bytearray(ev.data), ev.opcode == 1
        while not ev.fin:
            ev = await self.receive()
            while ev.opcode != 0:  # a ping or pong between the fragments
                ev = await self.receive()
            parts += ev.data
        return parts.decode() if text else bytes(parts)

    async def send(self, data: Any, opcode: int | None = None, fin: bool = True) -> None:
        """Sends a message (or a piece of one), waiting while the client is slow.
        Raises ConnectionClosed once the connection is closing."""
        if self.send_now(data, opcode, fin):
            await self.flow.drain()

    async def drain(self) -> None:
        """Waits while the client does not read what was sent (see send_now)."""
        await self.flow.drain()

    def send_now(self, data: Any, opcode: int | None = None, fin: bool = True) -> bool:
        """send() without its wait: True when the client is not reading what is
        sent, and the caller awaits `drain()` before it sends more."""
        if self.codec.close_sent or self.flow.closed:
            raise self.closed_by or ConnectionClosed(ABNORMAL, "the WebSocket is closed")
        if self.counters is not None and fin and (opcode is None or opcode < 8):
            self.counters.ws_out += 1
        frame = self.codec.send(data, opcode, fin)
        self.sent += len(frame)
        f = self.flow
        f.write(frame)
        return f.write_paused

    async def close_handshake(self, code: int = 1000, reason: str = "") -> None:
        """Starts the closing handshake and waits (at most ws_close_timeout) for the
        client's close; then the connection is closed."""
        self.start_close(code, reason)
        if self.closed_by is None and not self.flow.closed:
            deadline = self.loop.time() + self.close_timeout
            while self.closed_by is None and not self.flow.closed \
                    and self.loop.time() < deadline:
                waiter = self._waiter = _signal(self.loop)
                timer = self.loop.call_at(deadline, waiter.set)
                try:
                    await waiter
                finally:
                    timer.cancel()
                    self._waiter = None
                self.events.clear()  # what the client sent after our close is dropped
                self.queued = 0
                self._update_reading()
        if self.lingering is None:  # else the linger's end closes it
            self.flow.close()

    def start_close(self, code: int = 1000, reason: str = "") -> None:
        """Sends the server's close (once) and starts the clock on the handshake."""
        if self._answer is not None:
            self._answer_close()  # the client's close came first: this is the answer
            return
        frame = self.codec.close(code, reason)
        if frame:
            self._out(frame)
            self.close_deadline = self.loop.time() + self.close_timeout

    # -- the sweeper (state.py) ----------------------------------------------

    def check_clocks(self, now: float) -> bool:
        if self.flow.closed:
            return False
        if self.close_deadline is not None and now > self.close_deadline:
            if self._answer is not None:
                self._answer_close()  # the application does not read: answer anyway
                self.close_deadline = now + self.close_timeout
            else:
                self.abort()  # the closing handshake took too long
        elif self.ping_sent is not None:
            if now - self.ping_sent > self.ping_timeout:
                self.state.logger.info("WebSocket client did not answer a ping in %ss",
                                       self.ping_timeout)
                self.ping_sent = None
                why = ConnectionClosed(ABNORMAL, "the client did not answer a ping",
                                       by_client=False)
                if self.transport.get_write_buffer_size():
                    # it does not read either: a close frame would wait behind the rest
                    self._closing(why)
                    self.abort()
                else:
                    self._closing(why, (NORMAL, ""))
        elif self.ping_interval and now - self.idle_since > self.ping_interval \
                and not self.codec.close_sent:
            self._out(self.codec.send(b"", PING))
            self.ping_sent = now
        return False

    def close_when_idle(self) -> None:
        """A graceful stop: close with 1001, or 1012 when the worker is replaced
        (once); the client's answer ends it."""
        if not self.codec.close_sent:
            if self.state.restarting:
                self.start_close(SERVICE_RESTART, "server restarting")
            else:
                self.start_close(GOING_AWAY, "server shutting down")

    def close(self) -> None:
        self.flow.close()

    def abort(self) -> None:
        self.flow.abort()

    # -- internals -----------------------------------------------------------

    def _closing(self, why: ConnectionClosed,
                 answer: tuple[int | None, str] | None = None) -> None:
        """The client's close, a protocol error, or a dead connection: what the
        application will learn, and the close it is owed (sent at once when nothing
        waits to be read, else once the application has read what came before)."""
        if self.closed_by is None:
            self.closed_by = why
        if answer is not None and not self.codec.close_sent:
            self._answer = answer
            self.close_deadline = self.loop.time() + self.close_timeout
            if self.events:
                self._wake()
                return
            self._answer_close()
        else:
            self.flow.close()
        self._wake()

    def _answer_close(self) -> None:
        if self._answer is not None:
            code, reason = self._answer
            self._answer = None
            self._out(self.codec.close(code, reason))
        closed_by = self.closed_by
        if closed_by is None:
            return
        if closed_by.by_client:
            self.flow.close()
        else:
            self._linger()

    def _linger(self) -> None:
        """Closes a connection the server failed without making the kernel reset it
        under a client still sending (which would lose the close frame): the
        server's FIN, then what comes is dropped until the client's, for at most
        LINGER_BYTES or LINGER_SECONDS."""
        if self.lingering is not None or self.flow.closed:
            return
        self.lingering = LINGER_BYTES
        self.events.clear()
        self.queued = 0
        self.flow.end_writing()
        self.flow.hold(False)
        self.loop.call_later(LINGER_SECONDS, self.close)

    def _wake(self, now: bool = False) -> None:
        """Wakes a receive() waiting (its Signal is set once: it is dropped here);
        with `now`, its handler goes on before this returns (see Signal.set)."""
        w = self._waiter
        if w is not None:
            self._waiter = None
            w.set(now)

    def _update_reading(self) -> None:
        """Decodes what the codec held while the queue has room; reading pauses while
        it is full or the codec still holds some of what was read."""
        if self.lingering is not None:
            return  # reading on, to drop what comes
        while True:
            full = len(self.events) > self._max_queue or self.queued >= self._max_queued
            held = self.codec.held
            if full or not held or self.flow.closed:
                break
            self._decode(b"")
        if self._eof and not held:
            self._eof = False
            self._closing(ConnectionClosed(ABNORMAL, "the client closed the connection"))
        pause = full or held > 0
        if pause or self._paused:  # (else reading goes on as it is)
            self.flow.hold(pause)
        self._paused = pause
