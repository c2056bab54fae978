"""The ASGI adapter: one per worker. Its handle() is the core's AsgiHandle
(rust/src/py/asgi.rs), which runs an http request's cycle (http.py's Cycle, the scope,
the application) and calls back here for what it does not do itself; a WebSocket
request goes to websocket.py; lifespan runs around the worker (lifespan.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from .. import _core, tls
from ..protocols import Adapter, Connection, Exchange, ServerState
from ..protocols.handshake import Handshake, HandshakeError, subprotocols, wants_websocket
from . import http, websocket
from .lifespan import ASGI, Lifespan

EXTENSIONS: dict[str, dict[str, Any]] = {
    "http.response.trailers": {}, "http.response.pathsend": {}, "http.response.early_hint": {},
}
WS_EXTENSIONS: dict[str, dict[str, Any]] = {"websocket.http.response": {}}


class ASGIAdapter(Adapter):
    interface = "asgi"

    def __init__(self, app: Any, state: ServerState, root_path: str = "",
                 lifespan: str = "auto") -> None:
        self.app = app
        self.state = state
        self.root_path = root_path
        self.ws = state.options.ws
        self.lifespan = Lifespan(app, state.logger, state.options.app_handler_timeout,
                                 lifespan)
        # what send() returns when it did its work at once: awaiting it costs nothing
        self.done: asyncio.Future[None] = state.loop.create_future()
        self.done.set_result(None)
        self.logger = state.logger
        # each request's cycle is run by the core (rust/src/py/asgi.rs), which calls
        # the methods below for what it does not do itself
        self.handle = _core.AsgiHandle(  # type: ignore[method-assign]
            self, app, http.Cycle, self.done, ASGI, self.lifespan.state)

    async def startup(self) -> None:
        await self.lifespan.startup()

    async def shutdown(self) -> None:
        await self.lifespan.shutdown()

    def _connection(self, p: Connection
                    ) -> tuple[dict[str, Any], dict[str, Any], _core.Proxies | None]:
        """What every request on a connection shares, worked out once: the scope
        fields that do not change, the extensions, and the trusted proxies when its
        peer is one whose fields are believed."""
        info = p.info
        assert info is not None
        extensions: dict[str, Any] = dict(EXTENSIONS)
        if info.secure:
            assert p.transport is not None
            extensions["tls"] = tls.describe(p.transport.get_extra_info("ssl_object"))
        base = {
            "type": "http", "asgi": None, "http_version": "1.1", "method": None,
            "scheme": info.scheme, "path": None, "raw_path": None,
            "query_string": None, "root_path": self.root_path, "headers": None,
            "client": info.peer, "server": info.server, "state": None, "extensions": None,
        }
        known = p.context["asgi"] = (base, extensions, info.proxies)
        return known

    def scope(self, ex: Exchange) -> dict[str, Any]:
        head = ex.head
        p = ex.connection
        base, extensions, proxies = p.context.get("asgi") or self._connection(p)
        # the request's own fields (method, path decoded, raw_path, query_string,
        # headers, http_version), what a trusted proxy's fields say, and the
        # per-request copies are made by the core
        return head.scope(base, ASGI, self.lifespan.state, extensions,
                          proxies)

    def websocket_scope(self, ex: Exchange) -> dict[str, Any]:
        scope = self.scope(ex)
        del scope["method"]
        scope["type"] = "websocket"
        scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
        scope["subprotocols"] = subprotocols(ex)
        extensions = dict(WS_EXTENSIONS)
        if "tls" in scope["extensions"]:
            extensions["tls"] = scope["extensions"]["tls"]
        scope["extensions"] = extensions
        return scope

    def _upgrade(self, ex: Exchange) -> Coroutine[Any, Any, None] | None:
        """A request that asks for an upgrade: the WebSocket handshake's coroutine,
        or None for an http request like any other."""
        if self.ws and wants_websocket(ex):
            return self._websocket(ex)
        return None

    def _await(self, cycle: http.Cycle, awaitable: Any) -> Coroutine[Any, Any, None]:
        return http.serve_awaitable(cycle, awaitable, self.logger)

    def _ended(self, cycle: http.Cycle) -> None:
        http.ended(cycle, self.logger)

    def _failed(self, cycle: http.Cycle, exc: BaseException) -> None:
        http.failed(cycle, exc, self.logger)

    async def _websocket(self, ex: Exchange) -> None:
        try:
            handshake = Handshake(ex)
        except HandshakeError as exc:
            websocket.refuse(ex, exc)
            return
        await websocket.serve(self.app, self.websocket_scope(ex), handshake,
                              self.state.logger)
