"""ASGI 3 http: receive() and send() over an Exchange, and how a request ends
after its application (`ended`, `failed`); the cycle itself is driven by the core
(rust/src/py/asgi.rs).

The server adds no Content-Type of its own. A Content-Length from the application is
honoured and checked against what it sends; without one, a streamed body is chunked
on HTTP/1.1 and delimited by closing on HTTP/1.0. send() waits while the client is
slow. Extensions: http.response.trailers, http.response.pathsend,
http.response.early_hint (and tls on TLS listeners).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from .. import _core
from ..exceptions import HTTPException
from ..protocols import ClientDisconnected, Exchange
from ..protocols.sendfile import copy_file

Message = dict[str, Any]


class AppError(RuntimeError):
    """The application broke the ASGI protocol. Unlike the application's own
    exceptions, its text is the server's and says nothing of the application's
    data: a 500 given for it says it (as the original Tremolo does)."""

#: the original Tremolo's words for the commonest misuses
ALREADY_STARTED = "already started or accepted"
NOT_STARTED = "has not been started or accepted"


class Cycle(_core.CycleCore):
    """One request-response cycle: what receive() and send() know.

    A response sent as one start and one body message (most are) is encoded and
    written when the body is sent, in one call into the core, and send() returns an
    awaitable that is already done: that send() is CycleCore's (rust/src/py/
    cycle.rs), with the fields it reads (`ex`, `done`, `head`, `started`,
    `complete`, `finished`, `input_error`). Every other message goes to
    `_send_other`."""

    # what a cycle starts with; a one-message response changes only some of them
    length: int | None = None  # the application's Content-Length
    sent = 0
    trailers: list[tuple[bytes, bytes]] | None = None
    body_done = False
    #: the last misuse send() refused (answered even if the application caught it)
    app_error: AppError | None = None
    if TYPE_CHECKING:
        ex: Exchange
        done: asyncio.Future[None]
        #: the http.response.start message
        head: Message | None
        finished: asyncio.Future[None] | None
        #: why reading the request body failed, if it did
        input_error: HTTPException | None

    # -- receive -------------------------------------------------------------

    async def receive(self) -> Message:
        ex = self.ex
        if not self.body_done:
            try:
                data = await ex.receive()
            except ClientDisconnected:
                return {"type": "http.disconnect"}
            except HTTPException as exc:
                # the body failed (too slow: 408; malformed or too large: 400, 413):
                # for the application the client is gone, and the server answers
                self.input_error = exc
                self.body_done = True
                return {"type": "http.disconnect"}
            self.body_done = not data or ex.body_exhausted
            return {"type": "http.request", "body": data, "more_body": not self.body_done}
        # the body was read: the next event is the end of the exchange
        if self.finished is None:
            self.finished = ex.connection.loop.create_future()
        if not (self.complete or ex.closed):
            ex.watch_close(self.finished)
            await self.finished
        return {"type": "http.disconnect"}

    # -- send ----------------------------------------------------------------

    def _send_other(self, message: Message) -> Awaitable[None]:
        """send() for what CycleCore.send does not take by itself."""
        if self.input_error is not None and not self.started:
            raise ClientDisconnected("the request body failed: the server answers it")
        kind = message["type"]
        ex = self.ex
        if kind == "http.response.body":
            head = self.head
            if (head is not None and not self.started and not message.get("more_body")
                    and not head.get("trailers") and not ex.closed):
                # the whole response at once: one write, Content-Length framing (the
                # core checks an application's Content-Length against the body)
                body = bytes(message.get("body", b""))
                # (a body within buffer_size is never held back by a speed limit)
                if len(body) > ex.buffer_size and ex.limited(len(body)):
                    return self._respond_limited(head, body)
                ex.respond(head["status"], head.get("headers", ()), body)
                self.started = self.complete = True
                if self.finished is not None:
                    self._done()
                return self.done
        elif (kind == "http.response.start" and self.head is None
              and not ex.closed):
            self.head = message
            return self.done
        return self._send(message)

    async def _respond_limited(self, head: Message, body: bytes) -> None:
        """A whole response at the speed limit: the head, then the body paced."""
        self.started = True
        await self.ex.respond_limited(head["status"], head.get("headers", ()), body)
        self._done()

    async def _send(self, message: Message) -> None:
        try:
            await self._send_message(message)
        except AppError as exc:
            self.app_error = exc
            raise

    async def _send_message(self, message: Message) -> None:
        kind = message["type"]
        ex = self.ex
        if ex.closed:
            raise ClientDisconnected("client disconnected")
        if kind == "http.response.start":
            raise AppError(ALREADY_STARTED)
        if kind == "http.response.body":
            await self._body(bytes(message.get("body", b"")),
                             bool(message.get("more_body", False)))
        elif kind == "http.response.pathsend":
            await self._pathsend(os.fspath(message["path"]))
        elif kind == "http.response.trailers":
            await self._trailers(message.get("headers", ()),
                                 bool(message.get("more_trailers", False)))
        elif kind == "http.response.early_hint":
            if self.head is None:
                ex.inform(103, [(b"Link", bytes(link)) for link in message.get("links", ())])
        else:
            raise AppError("unexpected ASGI message type")

    def _headers(self) -> list[tuple[bytes, bytes]]:
        """The start message's fields but Content-Length, which goes to `length` (the
        body is framed by the server; the core drops hop-by-hop fields)."""
        assert self.head is not None
        fields = []
        for name, value in self.head.get("headers", ()):
            name, value = bytes(name), bytes(value)
            if name.lower() == b"content-length":
                if not value.strip().isdigit() or self.length not in (None, int(value)):
                    raise AppError("invalid or repeated Content-Length from the application")
                self.length = int(value)
                continue
            fields.append((name, value))
        return fields

    def _start(self, streaming: bool) -> None:
        assert self.head is not None
        fields = self._headers()
        trailers = bool(self.head.get("trailers", False))
        self.ex.start(self.head["status"], fields,
                      content_length=self.length if not trailers else None,
                      chunked=trailers or streaming or self.length is None)
        self.started = True

    async def _body(self, data: bytes, more: bool) -> None:
        ex = self.ex
        if self.head is None:
            raise AppError(NOT_STARTED)
        if self.complete:
            if ex.head_only:
                return  # the rest of a HEAD body is not sent
            raise AppError("http.response.body after the response ended")
        if not self.started:
            if ex.head_only:
                # HEAD: the application's Content-Length stands, whatever body it sends
                fields = self._headers()
                ex.start(self.head["status"], fields, content_length=self.length)
                ex.end()
                self.started = True
                self._done()
                return
            self._start(streaming=True)
        self.sent += len(data)
        if self.length is not None and self.sent > self.length:
            raise AppError(f"the body is longer than its Content-Length ({self.length})")
        if data:
            await ex.write(data)
        if not more:
            if self.length is not None and self.sent != self.length:
                raise AppError(f"the body is shorter than its Content-Length ({self.length})")
            if not self.head.get("trailers"):  # no trailers to wait for
                ex.end()
                self._done()

    async def _pathsend(self, path: str) -> None:
        if self.head is None or self.started:
            raise AppError("http.response.pathsend needs a started, empty response")
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            fields = self._headers()
            if self.length is None:
                self.length = size
            self.ex.start(self.head["status"], fields, content_length=self.length)
            self.started = True
            await copy_file(self.ex, f, 0, size)
        self.ex.end()
        self.sent = self.length
        self._done()

    async def _trailers(self, headers: Any, more: bool) -> None:
        if self.head is None or not self.head.get("trailers"):
            raise AppError("http.response.trailers without trailers=True in the start")
        if self.trailers is None:
            self.trailers = []
        self.trailers.extend((bytes(n), bytes(v)) for n, v in headers)
        if not more:
            self.ex.end(self.trailers)
            self._done()

    def fail(self) -> None:
        """The application failed: 500 if nothing was sent (saying which misuse, if
        send() refused one), else the connection is cut."""
        self.ex.fail(str(self.app_error) if self.app_error is not None else "")
        self._done()

    def _done(self) -> None:
        self.complete = True
        if self.finished is not None and not self.finished.done():
            self.finished.set_result(None)


def failed(cycle: Cycle, exc: BaseException, logger: logging.Logger) -> None:
    """The application raised `exc`: logged and answered 500 (or the body is cut).
    A cancellation, a closed coroutine and a client that left go on up, unless the
    request body had failed: then that is the answer (see `ended`)."""
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        raise exc  # the handler was cancelled, or the coroutine closed
    if cycle.input_error is None:
        if isinstance(exc, ClientDisconnected):
            raise exc  # the client left
        logger.error("ASGI application failed", exc_info=exc)
        cycle.fail()
        return
    ended(cycle, logger)


def ended(cycle: Cycle, logger: logging.Logger) -> None:
    """The application returned: a failed request body is the answer, whatever the
    application made of it; a missing response is logged and answered 500 (or the
    body is cut)."""
    if cycle.input_error is not None:
        logger.info("request body failed: %s", cycle.input_error)
        cycle.ex.refuse(cycle.input_error)
        cycle._done()
        return
    if not cycle.complete:
        if cycle.started or cycle.head is not None:
            logger.error("ASGI application returned before its response ended")
        else:
            logger.error("ASGI application returned without a response")
        cycle.fail()


async def serve_awaitable(cycle: Cycle, awaitable: Awaitable[None],
                          logger: logging.Logger) -> None:
    """Awaits what an application returned that is not a coroutine, and ends the
    request as the call (rust/src/py/call.rs) does for a coroutine."""
    try:
        await awaitable
    except BaseException as exc:
        failed(cycle, exc, logger)
    else:
        ended(cycle, logger)
