"""One request's run of a WSGI application: its thread's side (start_response, the
body's pieces) and the loop's (writing them, the answer).

A body the application gives whole (a one-item list, or a first piece as long as
the Content-Length it set: how Flask and Django answer) is answered once the
application returns, in one write with its length. Any other body streams: each
piece is queued for the loop as it is produced and the thread goes on producing the
next (PEP 3333: no piece waits for the next one), until 4 x buffer_size are queued
and not written, where the thread waits (a slow client slows the application). The
application's `close()` runs in its thread after the last piece is written.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import _core
from ..exceptions import HTTPException
from ..protocols import ClientDisconnected, Exchange
from ..protocols.sendfile import copy_file
from .streams import FileWrapper

if TYPE_CHECKING:
    from .adapter import WSGIAdapter

_signal = _core.signal
_head = _core.wsgi_head


class WSGICycle:
    """One request's run of the application: the job its thread runs (pool.py)."""

    def __init__(self, adapter: WSGIAdapter, ex: Exchange) -> None:
        self.adapter = adapter
        self.ex = ex
        self.environ: dict[str, Any] = {}
        self.taken = False  # a thread took the job
        self.loop = adapter.loop
        self.status: int | None = None
        self.reason: bytes | None = None
        self.fields: list[tuple[bytes, bytes]] = []
        self.length: int | None = None
        self.started = False
        self.sent = 0
        self.first: bytes | None = None  # held back: the whole body, sent with a length
        self.single = False  # the application returned a one-item list or tuple
        self.file: FileWrapper | None = None
        #: why reading the request body failed, if it did
        self.input_error: HTTPException | None = None
        #: what the application raised
        self.error: BaseException | None = None
        #: the thread is done with the application
        self.finished = False
        #: the loop gave up on the request (its handler was cancelled)
        self.cancelled = False
        # the streamed pieces: queued by the thread, written by the loop
        self.outbox: deque[bytes] = deque()
        self.posted = 0  # bytes queued (only the thread adds)
        self.written = 0  # bytes written (only the loop adds)
        self._wake_posted = False
        self._thread_waits = False
        self._credit: threading.Event | None = None  # made by a thread that waits
        self._bound = adapter.state.options.buffer_size * 4
        self._signal: _core.Signal | None = None

    # -- called in the application's thread ----------------------------------

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def receive_blocking(self) -> bytes:
        if self.cancelled:
            raise ClientDisconnected("the request was given up")
        try:
            return bytes(self._call(self.ex.receive()))
        except HTTPException as exc:
            self.input_error = exc
            raise

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.started or self.posted:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise RuntimeError("start_response called twice without exc_info")
        self.status, self.reason, self.fields, self.length = _head(status, headers)
        return self.write

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
        self.outbox.append(data)
        self.posted += len(data)
        self._wake_loop()
        if self.posted - self.written > self._bound:
            self._wait_written(self._bound)

    def _wake_loop(self) -> None:
        if not self._wake_posted:
            self._wake_posted = True
            self.adapter.pool.post(self._woken)

    def _wait_written(self, bound: int) -> None:
        """Waits until at most `bound` bytes are queued and not written."""
        while self.posted - self.written > bound and not self.cancelled:
            credit = self._credit
            if credit is None:
                credit = self._credit = threading.Event()
            self._thread_waits = True
            credit.clear()
            if self.posted - self.written > bound and not self.cancelled:
                credit.wait()
            self._thread_waits = False
        if self.cancelled:
            raise ClientDisconnected("the request was given up")

    def run(self) -> None:
        """The application, to the end of its body (the job a thread runs)."""
        try:
            self._run(self.environ)
        except BaseException as exc:  # (answered on the loop)
            self.error = exc
        finally:
            self.finished = True

    def _run(self, environ: dict[str, Any]) -> None:
        result = self.adapter.app(environ, self.start_response)
        if isinstance(result, FileWrapper):
            self.file = result  # sent (and closed) on the loop with the sendfile machinery
            return
        self.single = isinstance(result, list | tuple) and len(result) == 1
        try:
            for chunk in result:
                self.write(chunk)
            if self.posted:
                self._wait_written(0)  # close() comes after the bytes
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    # -- on the event loop ---------------------------------------------------

    def _woken(self) -> None:
        """The thread queued pieces or finished (posted to the loop)."""
        self._wake_posted = False
        signal = self._signal
        if signal is not None:
            self._signal = None
            signal.set(True)  # the handler writes before this returns

    def done(self) -> None:
        """The thread finished (the job's end, on the loop)."""
        self._woken()

    def give_up(self) -> None:
        """The handler was cancelled: the thread stops at its next piece."""
        self.cancelled = True
        if self._credit is not None:
            self._credit.set()

    async def serve(self) -> None:
        """Writes what the thread queues until it finishes."""
        outbox = self.outbox
        while True:
            while outbox:
                data = outbox.popleft()
                try:
                    await self._send(data)
                finally:
                    self.written += len(data)
                    if self._thread_waits and self._credit is not None:
                        self._credit.set()
            if self.finished and not outbox:
                return
            signal = self._signal = _signal(self.loop)
            await signal

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

    async def finish(self) -> None:
        ex = self.ex
        if ex.finished or ex.protocol.closed:
            return
        if self.status is None:
            self.adapter.state.logger.error("WSGI application returned without start_response")
            self.fail()
            return
        if not self.started:
            body = self.first or b""
            if not body and (ex.head_only or self.status == 304):
                # no body to send: a length is the one a GET would have (Flask and
                # Bottle give HEAD an empty iterable and keep the field); without
                # one, none is claimed
                self._start(self.length)
                ex.end()
                return
            if self.length is not None and self.length != len(body):
                self.adapter.state.logger.error("WSGI body and Content-Length differ")
                self.fail()
                return
            if ex.limited(len(body)):
                await ex.respond_limited(self.status, self.fields, body, self.reason)
            else:
                ex.respond(self.status, self.fields, body, self.reason)
            return
        if self.length is not None and self.sent != self.length:
            ex.abort()  # cut short: closing says so
            return
        ex.end()

    def fail(self) -> None:
        self.ex.fail()

