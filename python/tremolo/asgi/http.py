"""ASGI 3 http: scope, receive() and send() over an Exchange.

The server adds no Content-Type of its own. A Content-Length from the application is
honoured and checked against what it sends; without one, a streamed body is chunked
on HTTP/1.1 and delimited by closing on HTTP/1.0. send() waits while the client is
slow. Extensions: http.response.trailers, http.response.pathsend,
http.response.early_hint (and tls on TLS listeners).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import unquote

from .. import _core
from ..files import _copy
from ..protocols.http import Adapter, ClientDisconnected, Exchange, ServerState
from ..request import _trusted
from .lifespan import ASGI, Lifespan

Message = dict[str, Any]
_HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade",
               b"proxy-connection", b"te"}
EXTENSIONS: dict[str, dict[str, Any]] = {
    "http.response.trailers": {}, "http.response.pathsend": {}, "http.response.early_hint": {},
}


class AppError(RuntimeError):
    """The application broke the ASGI protocol."""


class ASGIAdapter(Adapter):
    # ASGI frameworks (through anyio) need a current Task from their first line
    inline = False

    def __init__(self, app: Any, state: ServerState, root_path: str = "") -> None:
        self.app = app
        self.state = state
        self.root_path = root_path
        self.lifespan = Lifespan(app, state.logger, state.options.app_handler_timeout)

    async def startup(self) -> None:
        await self.lifespan.startup()

    async def shutdown(self) -> None:
        await self.lifespan.shutdown()

    def _connection(self, ex: Exchange) -> tuple[Any, bool, dict[str, Any]]:
        """What every request on a connection shares, worked out once."""
        p = ex.protocol
        known = p.context.get("asgi")
        if known is None:
            transport = p.transport
            server = transport.get_extra_info("sockname") if transport is not None else None
            secure = transport is not None and \
                transport.get_extra_info("sslcontext") is not None
            extensions: dict[str, Any] = dict(EXTENSIONS)
            if secure:
                extensions["tls"] = {"server_cert": None, "client_cert_chain": [],
                                     "tls_version": None, "cipher_suite": None}
            client = p.peer
            trusted = client is not None and _trusted(client[0], p.state.trusted_proxies)
            known = p.context["asgi"] = (
                tuple(server[:2]) if isinstance(server, tuple) else None, secure,
                {"extensions": extensions, "trusted": trusted})
        return known

    def scope(self, ex: Exchange) -> dict[str, Any]:
        head = ex.head
        raw_path, _, query = head.target.partition(b"?")
        server, secure, shared = self._connection(ex)
        scheme = "https" if secure else "http"
        if shared["trusted"]:
            forwarded = head.get(b"x-forwarded-proto")
            if forwarded and forwarded.strip().lower() in (b"http", b"https"):
                scheme = forwarded.strip().lower().decode()
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path, encoding="utf-8", errors="replace")
        return {
            "type": "http", "asgi": dict(ASGI),
            "http_version": "1.0" if ex.http10 else "1.1",
            "method": ex.method.decode("latin-1"),
            "scheme": scheme,
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": self.root_path,
            "headers": head.headers,
            "client": ex.protocol.peer,
            "server": server,
            "state": dict(self.lifespan.state),
            "extensions": dict(shared["extensions"]),
        }

    async def handle(self, ex: Exchange) -> None:
        cycle = Cycle(ex, self.state)
        try:
            await self.app(self.scope(ex), cycle.receive, cycle.send)
        except ClientDisconnected:
            raise
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            self.state.logger.error("ASGI application failed", exc_info=exc)
            cycle.fail()
            return
        if not cycle.complete:
            if cycle.started or cycle.head is not None:
                self.state.logger.error("ASGI application returned before its response ended")
            else:
                self.state.logger.error("ASGI application returned without a response")
            cycle.fail()


class Cycle:
    """One request-response cycle: what receive() and send() know."""

    def __init__(self, ex: Exchange, state: ServerState) -> None:
        self.ex = ex
        self.state = state
        self.head: tuple[int, list[tuple[bytes, bytes]], bool] | None = None
        self.length: int | None = None  # the application's Content-Length
        self.sent = 0
        self.started = False
        self.complete = False
        self.trailers: list[tuple[bytes, bytes]] = []
        self.finished: asyncio.Future[None] | None = None
        self.body_done = False

    # -- receive -------------------------------------------------------------

    async def receive(self) -> Message:
        ex = self.ex
        if not self.body_done:
            try:
                data = await ex.receive()
            except ClientDisconnected:
                return {"type": "http.disconnect"}
            self.body_done = not data or ex.body_exhausted
            return {"type": "http.request", "body": data, "more_body": not self.body_done}
        # the body was read: the next event is the end of the exchange
        if self.finished is None:
            self.finished = ex.protocol.loop.create_future()
        if not (self.complete or ex.protocol.closed):
            ex.protocol.watch_close(self.finished)
            await self.finished
        return {"type": "http.disconnect"}

    # -- send ----------------------------------------------------------------

    async def send(self, message: Message) -> None:
        kind = message["type"]
        ex = self.ex
        if ex.protocol.closed:
            raise ClientDisconnected("client disconnected")
        if kind == "http.response.start":
            if self.head is not None or self.started:
                raise AppError("http.response.start sent twice")
            self.head = self._headers(int(message["status"]), message.get("headers", ()),
                                      bool(message.get("trailers", False)))
        elif kind == "http.response.body":
            await self._body(bytes(message.get("body", b"")),
                             bool(message.get("more_body", False)))
        elif kind == "http.response.pathsend":
            await self._pathsend(os.fspath(message["path"]))
        elif kind == "http.response.trailers":
            await self._trailers(message.get("headers", ()),
                                 bool(message.get("more_trailers", False)))
        elif kind == "http.response.early_hint":
            if self.head is None and not self.started and not ex.http10:
                links = [(b"Link", bytes(link)) for link in message.get("links", ())]
                ex.protocol.write(_core.encode_head(103, links, None, False, True, False,
                                                    self.state.date, b""))
        else:
            raise AppError(f"unknown ASGI message type {kind!r}")

    def _headers(self, status: int, headers: Any, trailers: bool
                 ) -> tuple[int, list[tuple[bytes, bytes]], bool]:
        fields = []
        for name, value in headers:
            name, value = bytes(name), bytes(value)
            key = name.lower()
            if key == b"content-length":
                if not value.strip().isdigit() or self.length is not None:
                    raise AppError("invalid or repeated Content-Length from the application")
                self.length = int(value)
                continue
            if key in _HOP_BY_HOP:
                if key == b"connection" and b"close" in value.lower():
                    self.ex.keep_alive = False
                continue  # framing and connection management are the server's
            fields.append((name, value))
        return status, fields, trailers

    def _start(self, streaming: bool) -> None:
        assert self.head is not None
        status, fields, trailers = self.head
        ex = self.ex
        ex.start(status, fields, content_length=self.length if not trailers else None,
                 chunked=trailers or streaming or self.length is None)
        self.started = True

    async def _body(self, data: bytes, more: bool) -> None:
        ex = self.ex
        if self.head is None:
            raise AppError("http.response.body before http.response.start")
        if self.complete:
            if ex.head_only:
                return  # the rest of a HEAD body is not sent
            raise AppError("http.response.body after the response ended")
        self.sent += len(data)
        if self.length is not None and self.sent > self.length:
            raise AppError(f"the body is longer than its Content-Length ({self.length})")
        if not self.started:
            status, fields, trailers = self.head
            if ex.head_only:
                # HEAD: the application's Content-Length stands, whatever body it sends
                ex.start(status, fields, content_length=self.length)
                ex.end()
                self.started = True
                self._done()
                return
            if not more and not trailers and (self.length is None or self.length == len(data)):
                # the whole response at once: one write, Content-Length framing
                ex.respond(status, fields, data)
                self.started = True
                self._done()
                return
            self._start(streaming=True)
        if data:
            await ex.write(data)
        if not more:
            if self.length is not None and self.sent != self.length:
                raise AppError(f"the body is shorter than its Content-Length ({self.length})")
            if not self.head[2]:  # no trailers to wait for
                ex.end()
                self._done()

    async def _pathsend(self, path: str) -> None:
        if self.head is None or self.started:
            raise AppError("http.response.pathsend needs a started, empty response")
        size = os.path.getsize(path)
        if self.length is None:
            self.length = size
        with open(path, "rb") as f:
            self._start(streaming=False)
            await _copy(self.ex, f, 0, size)
        self.ex.end()
        self.sent = self.length
        self._done()

    async def _trailers(self, headers: Any, more: bool) -> None:
        if self.head is None or not self.head[2]:
            raise AppError("http.response.trailers without trailers=True in the start")
        self.trailers.extend((bytes(n), bytes(v)) for n, v in headers)
        if not more:
            self.ex.end(self.trailers)
            self._done()

    def fail(self) -> None:
        """The application failed: 500 if nothing was sent, else the connection is cut."""
        self.ex.fail()
        self._done()

    def _done(self) -> None:
        self.complete = True
        if self.finished is not None and not self.finished.done():
            self.finished.set_result(None)
