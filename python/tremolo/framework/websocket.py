"""The native WebSocket API, as the original Tremolo's: a handler that declares
`websocket=None` gets a WebSocket when the request asks for one.

The protocol work is the core's (frames, masking, UTF-8, close codes, compression)
and protocols/websocket.py's (queue, pings, the closing handshake); this is the
original's interface over it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .. import _core
from ..exceptions import (
    BadRequest,
    HTTPException,
    UpgradeRequired,
    WebSocketClientClosed,
    WebSocketServerClosed,
)
from ..protocols.handshake import Handshake, HandshakeError
from ..protocols.websocket import CLOSE, PING, PONG, ConnectionClosed, WebSocketProtocol

if TYPE_CHECKING:
    from .request import Request
    from .response import Response

_Frame = _core.Frame


_HANDSHAKE_FIELDS = (b"upgrade", b"connection", b"sec-websocket-")


def _closed(exc: ConnectionClosed) -> WebSocketClientClosed | WebSocketServerClosed:
    if exc.by_client:
        return WebSocketClientClosed(f"connection closed ({exc.code})", code=exc.code)
    return WebSocketServerClosed(exc.reason or "connection closed", code=exc.code)


class WebSocket:
    """One WebSocket connection, for a native handler."""

    def __init__(self, request: Request, response: Response) -> None:
        self.request = request
        self.response = response
        opts = request.exchange.options
        self.max_payload_size = opts.ws_max_payload_size
        self.ping_interval = opts.ping_interval
        self.session: WebSocketProtocol | None = None

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytearray:
        # receive() written out: one coroutine fewer for every message
        session = self.session
        if session is None:
            await self.accept()
            session = self._open()
        try:
            message = await session.receive_message()
        except ConnectionClosed as exc:
            error = _closed(exc)
            if isinstance(error, WebSocketServerClosed):
                raise error from None
            await self.close()
            raise StopAsyncIteration from error
        return message if isinstance(message, str) else bytearray(message)

    async def accept(self) -> None:
        """Answers the handshake with 101 Switching Protocols; a request that is not
        a valid one is answered 400 (or 426 for another version) instead."""
        if self.session is not None:
            return
        try:
            handshake = Handshake(self.request.exchange)
        except HandshakeError as exc:
            error: HTTPException = UpgradeRequired(exc.reason) if exc.status == 426 \
                else BadRequest(exc.reason)
            for name, value in exc.headers:
                error.headers[name.decode()] = value.decode()
            raise error from None
        # fields a middleware or the handler set (a cookie, say) go with the 101;
        # the handshake's own are the server's
        fields = [(n, v) for n, v in self.response.fields
                  if not n.lower().startswith(_HANDSHAKE_FIELDS)]
        self.session = handshake.switch(headers=fields)

    def _open(self) -> WebSocketProtocol:
        if self.session is None:
            raise RuntimeError("the WebSocket is not accepted yet: call accept() first")
        return self.session

    async def recv(self) -> bytes:
        """The payload of the next frame (pings are answered by the server, pings and
        pongs give b''). Raises WebSocketClientClosed when the client closes."""
        if self.session is None:
            await self.accept()
        try:
            ev = await self._open().receive()
        except ConnectionClosed as exc:
            raise _closed(exc) from None
        if type(ev) is _Frame:
            return b"" if ev.opcode in (PING, PONG) else ev.data
        return ev.encode() if isinstance(ev, str) else ev

    async def receive(self) -> str | bytearray:
        """The next whole message: str for text, bytearray for binary."""
        if self.session is None:
            await self.accept()
        try:
            message = await self._open().receive_message()
        except ConnectionClosed as exc:
            raise _closed(exc) from None
        return message if isinstance(message, str) else bytearray(message)

    async def send(self, data: str | bytes | bytearray | memoryview, fin: int = 1,
                   opcode: int | None = None) -> None:
        """A message (str as text, bytes-like as binary), or with fin=0 the first of
        its pieces (the next sends continue it until one with fin=1). Once the
        connection is closed or closing, a send does nothing, as in the original:
        broadcasting to a room must not fail because one client just left."""
        if opcode == CLOSE:
            raw = data.encode() if isinstance(data, str) else bytes(data)
            code = int.from_bytes(raw[:2], "big") if raw else 1000
            await self.close(code)
            return
        session = self.session
        if session is None:
            session = self._open()  # (which raises)
        try:
            if session.send_now(data, None if opcode == 0 else opcode, bool(fin)):
                await session.drain()
        except ConnectionClosed:
            pass

    async def ping(self, data: bytes = b"") -> None:
        await self.send(data, opcode=PING)

    async def pong(self, data: bytes = b"") -> None:
        await self.send(data, opcode=PONG)

    async def close(self, code: int = 1000) -> None:
        """The closing handshake with `code`, then the connection closes."""
        if self.session is None:
            self.response.close()
            return
        await self.session.close_handshake(code)

    @staticmethod
    def create_frame(payload_data: str | bytes | bytearray, fin: int = 1,
                     opcode: int | None = None, mask: bool = False) -> bytes:
        """One frame as bytes (masked with a random key when `mask`)."""
        if opcode is None:
            opcode = 1 if isinstance(payload_data, str) else 2
        return _core.ws_frame(payload_data, opcode, bool(fin), os.urandom(4) if mask else None)


def offered(request: Request) -> bool:
    """Whether a request asks for a WebSocket as the original decides: no body, an
    Upgrade: websocket field and a Sec-WebSocket-Key."""
    ex = request.exchange
    return bool(ex.body_complete and not ex.has_unread_body and ex.head.get(b"sec-websocket-key")
                and (ex.head.get(b"upgrade") or b"").strip().lower() == b"websocket")


def make(request: Request, response: Response) -> Any:
    return WebSocket(request, response) if offered(request) else None
