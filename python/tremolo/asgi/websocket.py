"""ASGI websocket (spec 2.4): the session between the handshake and the close.

The application gets `websocket.connect` first, and answers with
`websocket.accept` (101: the connection becomes a WebSocket), `websocket.close`
(403), or the denial extension's `websocket.http.response.start/body` (any HTTP
response). After the accept, `websocket.receive` carries each message and
`websocket.disconnect` the client's close code (1005 when it sent none, 1006 when
the connection dropped); every session ends with a disconnect. `send()` waits while
the client is slow, and raises ConnectionClosed (an OSError) once it is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..protocols import ClientDisconnected, Exchange
from ..protocols.answers import answer_parts, refusal
from ..protocols.handshake import Handshake, HandshakeError
from ..protocols.websocket import ABNORMAL, ConnectionClosed, WebSocketProtocol
from .http import ALREADY_STARTED, NOT_STARTED, AppError

Message = dict[str, Any]
CONNECTING, RESPONDING, CONNECTED, CLOSING, CLOSED = range(5)


def refuse(ex: Exchange, error: HandshakeError) -> None:
    """Answers an invalid handshake without calling the application."""
    headers, body, reason = answer_parts(refusal(error.status, error.reason))
    ex.respond(error.status, [*headers, *error.headers], body, reason)


class Session:
    """What receive() and send() know of one WebSocket."""

    def __init__(self, handshake: Handshake, logger: logging.Logger) -> None:
        self.handshake = handshake
        self.ex = handshake.exchange
        self.logger = logger
        self.state = CONNECTING
        self.connected = False  # websocket.connect was given
        self.ws: WebSocketProtocol | None = None
        self.closed: ConnectionClosed | None = None
        self.response: Message | None = None  # websocket.http.response.start
        #: the last misuse send() refused (the 500's text, if it comes to one)
        self.app_error: AppError | None = None

    # -- receive -------------------------------------------------------------

    async def receive(self) -> Message:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        if self.state in (CONNECTING, RESPONDING):
            # the application has not answered yet: it can only learn that the
            # client went away
            gone = self.ex.connection.loop.create_future()
            self.ex.watch_close(gone)
            await gone
            self._end(ConnectionClosed(ABNORMAL, "the client went away"))
        ws = self.ws
        while self.state in (CONNECTED, CLOSING) and ws is not None:
            try:
                message = await ws.receive_message()
            except ConnectionClosed as exc:
                self._end(exc)
                break
            if self.state == CLOSING:
                continue  # after the application's close, messages are dropped
            if isinstance(message, str):
                return {"type": "websocket.receive", "text": message}
            return {"type": "websocket.receive", "bytes": message}
        closed = self.closed or ConnectionClosed(ABNORMAL)
        return {"type": "websocket.disconnect", "code": closed.code, "reason": closed.reason}

    def _end(self, closed: ConnectionClosed) -> None:
        self.state = CLOSED
        if self.closed is None:
            self.closed = closed

    # -- send ----------------------------------------------------------------

    async def send(self, message: Message) -> None:
        try:
            await self._send(message)
        except AppError as exc:
            self.app_error = exc
            raise

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        state = self.state
        if state == CONNECTED and kind == "websocket.send":
            assert self.ws is not None
            text, data = message.get("text"), message.get("bytes")
            if (text is None) == (data is None):
                raise AppError("websocket.send needs exactly one of 'text' and 'bytes'")
            if self.ws.send_now(text if text is not None else data):
                await self.ws.drain()
        elif state == CONNECTING:
            if kind == "websocket.accept":
                self.ws = self.handshake.switch(
                    message.get("subprotocol"),
                    [(bytes(n), bytes(v)) for n, v in message.get("headers", ())])
                self.state = CONNECTED
            elif kind == "websocket.close":
                # closed before it was accepted: 403 (RFC 6455 §4.2.2 lets a server
                # refuse with any HTTP answer), worded as the original words it
                self.ex.refuse(refusal(403, "connection rejected"))
                self._end(ConnectionClosed(ABNORMAL, "refused before the handshake"))
            elif kind == "websocket.http.response.start":
                self.response = message
                self.state = RESPONDING
            else:
                raise AppError(NOT_STARTED)
        elif state == RESPONDING and kind == "websocket.http.response.body":
            await self._deny(bytes(message.get("body", b"")), bool(message.get("more_body")))
        elif state == CONNECTED and kind == "websocket.close":
            assert self.ws is not None
            self.ws.start_close(int(message.get("code") or 1000), message.get("reason") or "")
            self.state = CLOSING
        elif state in (CLOSING, CLOSED):
            if kind == "websocket.close":
                return  # closing twice is harmless
            raise self.closed or ConnectionClosed(ABNORMAL, "the WebSocket is closed")
        elif kind == "websocket.accept":
            raise AppError(ALREADY_STARTED)
        else:
            raise AppError(f"{kind!r} is not allowed now")

    async def _deny(self, body: bytes, more: bool) -> None:
        """The denial response (websocket.http.response extension)."""
        ex = self.ex
        assert self.response is not None
        head = self.response
        headers = [(bytes(n), bytes(v)) for n, v in head.get("headers", ())]
        if not ex.started and not more:
            ex.respond(int(head["status"]), headers, body)
        else:
            if not ex.started:
                ex.start(int(head["status"]), headers)
            if body:
                await ex.write(body)
            if not more:
                ex.end()
        if not more:
            self._end(ConnectionClosed(ABNORMAL, "answered with an HTTP response"))

    # -- the end -------------------------------------------------------------

    async def finish(self, failed: bool) -> None:
        """The application returned (or failed): what it left undone is done."""
        if self.state == CONNECTING:
            if not failed:
                self.logger.error("ASGI application returned without accepting or "
                                  "closing the WebSocket")
            self.ex.fail(str(self.app_error) if self.app_error is not None else "")
        elif self.state == RESPONDING:
            self.logger.error("ASGI application returned before its response ended")
            self.ex.fail()
        elif self.ws is not None and self.state in (CONNECTED, CLOSING):
            if self.state == CONNECTED:
                self.ws.start_close(1011 if failed else 1000)
            await self.ws.close_handshake()


async def serve(app: Any, scope: dict[str, Any], handshake: Handshake,
                logger: logging.Logger) -> None:
    session = Session(handshake, logger)
    failed = False
    try:
        await app(scope, session.receive, session.send)
    except (ClientDisconnected, asyncio.CancelledError, GeneratorExit):
        if session.ws is not None and not session.ws.closed:
            session.ws.start_close(1011)  # the client is told before the connection ends
        raise
    except BaseException as exc:
        logger.error("ASGI application failed", exc_info=exc)
        failed = True
    await session.finish(failed)
