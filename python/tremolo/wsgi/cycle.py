"""One request's run of a WSGI application: its thread's side (the body's pieces)
and the loop's (writing them, the answer).

What every request takes is the core's (WsgiCycleCore, rust/src/py/wsgi_cycle.rs):
start_response, the application's call, and a body it gives whole (a one-item list,
or a first piece as long as the Content-Length it set: how Flask and Django
answer), answered once the application returns in one write with its length. The
rest is here. Any other body streams: each
piece is queued for the loop as it is produced and the thread goes on producing the
next (PEP 3333: no piece waits for the next one), until 4 x buffer_size are queued
and not written, where the thread waits (a slow client slows the application). The
application's `close()` runs in its thread after the last piece is written.

A body longer than the loop read before the request was handed over, when the
thread cannot read it from the socket itself (protocols/lending.py: chunked, TLS,
upload_rate), comes on through `wsgi.input` the same way the other way round: a task on the loop
(`pump`) reads it and queues its pieces for the thread, until 4 x wsgi_input_buffer
bytes are queued and not read, where the pump waits for the application to read.

Each side counts what it did (the thread `posted` and `consumed`, the loop `written`
and `received`), so neither writes the other's count; the thread waits parked and the
loop unparks it whenever it changes its count; the pump waits on a Signal the thread
has the loop set.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from .. import _core
from ..exceptions import BadRequest, HTTPException
from ..protocols import ClientDisconnected, Exchange
from ..protocols.sendfile import copy_file
from .streams import FileWrapper

if TYPE_CHECKING:
    from ..protocols.lending import LentBody
    from .adapter import WSGIAdapter

_signal = _core.signal


class WSGICycle(_core.WsgiCycleCore):
    """One request's run of the application: the job a pool thread runs
    (WSGICycle(adapter, exchange); see the core for the fields it starts with)."""

    if TYPE_CHECKING:
        adapter: WSGIAdapter
        ex: Exchange

    #: what the application may return to have a file sent (the loop sends it)
    file_wrapper = FileWrapper
    # (class-level defaults: a request sets only what it changes)
    #: the application returned a one-item list or tuple
    single = False
    # the streamed pieces, queued by the thread and written by the loop, and the
    # body's, queued by the loop and read by the thread (made when first used)
    outbox: deque[bytes] | None = None
    inbox: deque[bytes | HTTPException] | None = None
    written = 0
    received = consumed = 0
    _input_ended = False  # the pump read the body's end (or its error)
    _want = 1  # what the thread waits for of the body
    _wake_posted = False
    _pump_signal: _core.Signal | None = None  # what the pump waits on
    #: the task reading the rest of the body for the thread (see pump), or the
    #: body's reads lent to the thread (protocols/lending.py)
    pump_task: asyncio.Task[None] | None = None
    lent: LentBody | None = None

    # -- called in the application's thread ----------------------------------

    def receive_blocking(self, want: int) -> list[bytes]:
        """What the pump queued of the body once it is at least `want` bytes (or the
        body ended), all of it at once; nothing at its end: wsgi.input's source, in
        the application's thread."""
        inbox = self.inbox
        assert inbox is not None  # (made before the job was queued)
        want = min(max(want, 1), self.adapter.input_buffer or 1)
        if self.received - self.consumed < want and not self._input_ended:
            self._want = want
            self._block(lambda: self.received - self.consumed >= want or self._input_ended)
        pieces: list[bytes] = []
        size = 0
        while inbox:
            first = inbox[0]
            if isinstance(first, HTTPException):
                if pieces:
                    break  # (the bytes before it come first)
                self.input_error = first
                raise first
            pieces.append(first)
            size += len(first)
            inbox.popleft()
        self.consumed += size
        if self._pump_signal is not None:
            self.adapter.pool.post(self._wake_pump)
        return pieces

    def write(self, data: bytes) -> None:
        """The legacy write() callable, and each piece of the iterable."""
        if self.status is None:
            raise RuntimeError("write() before start_response()")
        if self.input_error is not None:
            raise self.input_error  # reading the body failed: that is the answer
        if self.cancelled:
            raise ClientDisconnected("the request was given up")
        if not data:
            return
        if self.first is None and not self.posted and (
                self.single or (self.length is not None and len(data) == self.length)):
            self.first = bytes(data)  # the whole body: it goes with a Content-Length
            return
        if self.first is not None:
            first, self.first = self.first, None
            self._post(first)
        self._post(bytes(data))

    def _post(self, data: bytes) -> None:
        """Queues a piece for the loop; waits while too much is queued."""
        outbox = self.outbox
        if outbox is None:
            outbox = self.outbox = deque()
        outbox.append(data)
        self.posted += len(data)
        if not self._wake_posted:
            self._wake_posted = True
            self.adapter.pool.post(self._woken)
        bound = self.adapter.write_bound
        if self.posted - self.written > bound:
            self._block(lambda: self.posted - self.written <= bound)

    def _block(self, ready: Callable[[], bool]) -> None:
        """Waits in the thread until ready() or the request is given up. It parks (the
        GIL let go) and the loop unparks it whenever it changes its count (see
        _unpark): an unpark between the check and the park makes the park return
        at once, so none is lost."""
        while not (self.cancelled or ready()):
            self._park()
        if self.cancelled:
            raise ClientDisconnected("the request was given up")

    def _iterate(self, result: Iterable[bytes], it: Iterator[bytes] | None = None,
                 pieces: Iterable[bytes] = ()) -> None:
        """The application's result, past what the core takes (see the module docs):
        `it`, its iterator the core began, and `pieces`, what it took of it."""
        if isinstance(result, FileWrapper):
            self.file = result  # sent (and closed) on the loop with the sendfile machinery
            return
        self.single = isinstance(result, list | tuple) and len(result) == 1
        try:
            for chunk in pieces:
                self.write(chunk)
            for chunk in it if it is not None else result:
                self.write(chunk)
            if self.posted:
                self._block(lambda: self.written == self.posted)  # close() after the bytes
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    # -- on the event loop ---------------------------------------------------

    def _woken(self) -> None:
        """The thread queued pieces (posted to the loop): the handler writes them
        before this returns (the core's done() sets its Signal with `now`)."""
        self._wake_posted = False
        self.done()

    def give_up(self) -> None:
        """The handler was cancelled: the thread stops at its next piece."""
        self.cancelled = True
        self._unpark()

    async def serve(self) -> None:
        """Writes what the thread queues until it finishes: what is queued at once
        goes in one write."""
        while True:
            outbox = self.outbox
            while outbox:
                data = outbox.popleft() if len(outbox) == 1 else b"".join(
                    [outbox.popleft() for _ in range(len(outbox))])
                try:
                    await self._send(data)
                finally:
                    self.written += len(data)
                    self._unpark()
            if self.finished:
                return
            signal = self._signal = _signal(self.adapter.loop)
            await signal

    async def pump(self) -> None:
        """Reads the rest of the body for the thread (see the module docs): what is
        queued at once is taken at once."""
        inbox, ex = self.inbox, self.ex
        assert inbox is not None
        bound = self.adapter.input_buffer * 4 or 1
        try:
            while not self.cancelled:
                if self.received - self.consumed >= bound:
                    signal = self._pump_signal = _signal(self.adapter.loop)
                    if self.received - self.consumed >= bound:
                        await signal
                    self._pump_signal = None
                    continue
                pieces = ex.take_body(bound - (self.received - self.consumed))
                if not pieces:
                    data = await ex.receive()  # (waits, and times out, as any reader)
                    if not data:
                        self._input_ended = True
                        self._unpark()
                        return
                    pieces = [data]
                inbox.extend(pieces)
                self.received += sum(map(len, pieces))
                queued = self.received - self.consumed
                # the thread is woken once what it waits for is here and the pump
                # is about to wait (nothing more read yet) or to stop (at its
                # bound), not for every piece: it could not run before the loop
                # lets the GIL go anyway, and each early wake was a switch
                if queued >= self._want and (not ex.has_unread_body or queued >= bound):
                    self._unpark()
        except (HTTPException, ClientDisconnected) as exc:
            # (a client that ended its side before the body, or went: the answer,
            # where one can still be given, is 400, not the application's 500;
            # and the thread waiting for the body learns it now)
            inbox.append(exc if isinstance(exc, HTTPException) else BadRequest(str(exc)))
            self._input_ended = True
            self._unpark()

    def _wake_pump(self) -> None:
        signal = self._pump_signal
        if signal is not None:
            self._pump_signal = None
            signal.set()

    def _start(self, content_length: int | None) -> None:
        assert self.status is not None
        self.ex.start(self.status, self.fields, content_length=content_length,
                      reason=self.reason)
        self.started = True

    async def _send(self, data: bytes) -> None:
        if not self.started:
            self._start(self.length)
        self.sent += len(data)
        if self.length is not None and self.sent > self.length:
            raise ValueError(f"the body is longer than its Content-Length ({self.length})")
        await self.ex.write(data)

    async def send_file(self) -> None:
        assert self.file is not None
        f = self.file.filelike
        try:
            fileno = f.fileno()
            size = os.fstat(fileno).st_size - f.tell()
        except (AttributeError, OSError):
            for data in self.file:  # not a real file: iterate it
                await self._send(data)
            self.file.close()
            return
        if self.length is None:
            self.length = size
        self._start(self.length)
        try:
            await copy_file(self.ex, f, f.tell(), min(size, self.length))
        finally:
            self.file.close()
        self.sent = self.length

    def finish(self) -> Awaitable[None] | None:
        """Answers or ends the response once the thread is done; what to await when
        a body goes at download_rate."""
        ex = self.ex
        if ex.finished or ex.closed:
            return None
        if self.status is None:
            self.adapter.state.logger.error("WSGI application returned without start_response")
            self.fail()
            return None
        if not self.started:
            body = self.first or b""
            if not body and (ex.head_only or self.status == 304):
                # no body to send: a length is the one a GET would have (Flask and
                # Bottle give HEAD an empty iterable and keep the field); without
                # one, none is claimed
                self._start(self.length)
                ex.end()
                return None
            if self.length is not None and self.length != len(body):
                self.adapter.state.logger.error("WSGI body and Content-Length differ")
                self.fail()
                return None
            if ex.limited(len(body)):
                return ex.respond_limited(self.status, self.fields, body, self.reason)
            ex.respond(self.status, self.fields, body, self.reason)
            return None
        if self.length is not None and self.sent != self.length:
            ex.abort()  # cut short: closing says so
            return None
        ex.end()
        return None

    def fail(self) -> None:
        self.ex.fail()

