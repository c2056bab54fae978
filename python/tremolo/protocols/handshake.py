"""The WebSocket opening handshake (RFC 6455 §4.2): is a request one, is it valid,
and the 101 that hands the connection to the WebSocket protocol."""

from __future__ import annotations

from collections.abc import Iterable

from .. import _core
from .exchange import Exchange, Header
from .websocket import WebSocketProtocol


class HandshakeError(Exception):
    """A WebSocket request that cannot be accepted: answer `status` (400, or 426 with
    Sec-WebSocket-Version) with `headers`."""

    def __init__(self, status: int, reason: str, headers: list[Header] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or []


def _tokens(values: Iterable[bytes]) -> list[bytes]:
    return [t.strip() for v in values for t in v.split(b",") if t.strip()]


def wants_websocket(ex: Exchange) -> bool:
    """An upgrade to websocket (Connection: upgrade and Upgrade: websocket, any case)
    on a request without a body: such a request is offered to the application as a
    WebSocket. Whether it is a valid one is `check`'s business."""
    if not ex.upgrade or not ex.body_complete or ex._body:
        return False
    upgrade = ex.head.get(b"upgrade")
    return upgrade is not None and b"websocket" in (t.lower() for t in _tokens([upgrade]))


def subprotocols(ex: Exchange) -> list[str]:
    """The subprotocols the client offers, in its order."""
    return [t.decode("latin-1") for t in _tokens(ex.head.get_all(b"sec-websocket-protocol"))]


class Handshake:
    """A valid WebSocket request: the accept key and the agreed compression."""

    def __init__(self, ex: Exchange) -> None:
        head = ex.head
        if ex.method != b"GET":
            raise HandshakeError(400, "a WebSocket handshake must be a GET request")
        if ex.http10:
            raise HandshakeError(400, "a WebSocket handshake needs HTTP/1.1")
        if not wants_websocket(ex):
            raise HandshakeError(400, "not a WebSocket upgrade (Connection: upgrade and "
                                      "Upgrade: websocket, without a body)")
        version = head.get_all(b"sec-websocket-version")
        if len(version) != 1 or version[0].strip() != b"13":
            raise HandshakeError(426, "Sec-WebSocket-Version must be 13",
                                 [(b"Upgrade", b"websocket"), (b"Sec-WebSocket-Version", b"13")])
        keys = head.get_all(b"sec-websocket-key")
        accept = _core.ws_accept(keys[0]) if len(keys) == 1 else None
        if accept is None:
            raise HandshakeError(400, "Sec-WebSocket-Key must be the base64 of 16 bytes")
        self.exchange = ex
        self.accept = accept.encode()
        opts = ex.protocol.state.options
        self.deflate: tuple[bool, bool, int, int] | None = None
        self.extensions: bytes | None = None
        offers = head.get_all(b"sec-websocket-extensions")
        if offers and opts.ws_compression:
            agreed = _core.ws_negotiate(offers)
            if agreed is not None:
                self.extensions, self.deflate = agreed[0].encode(), agreed[1]

    def switch(self, subprotocol: str | None = None, headers: Iterable[Header] = ()
               ) -> WebSocketProtocol:
        """Answers 101 and hands the connection to a WebSocketProtocol."""
        ex = self.exchange
        fields: list[Header] = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
                                (b"Sec-WebSocket-Accept", self.accept)]
        if self.extensions is not None:
            fields.append((b"Sec-WebSocket-Extensions", self.extensions))
        if subprotocol is not None:
            fields.append((b"Sec-WebSocket-Protocol", subprotocol.encode("latin-1")))
        fields.extend(headers)
        ex.start(101, fields)
        opts = ex.protocol.state.options
        codec = _core.WebSocketCodec(opts.ws_max_payload_size, self.deflate)
        protocol = ex.protocol.take_over(ex, lambda t: WebSocketProtocol(t, codec))
        assert isinstance(protocol, WebSocketProtocol)
        return protocol
