"""The native framework: `Tremolo` applications, routes and handlers.

A handler is called with the keyword arguments it declares (all of them when it
takes `**server`) and answers by returning bytes, str, `(str, encoding)` or None,
or by yielding body chunks (sent as they come: chunked on HTTP/1.1).
"""

from __future__ import annotations

import asyncio
import functools
import html
import inspect
import logging
import types
from collections.abc import Callable
from typing import Any

from .config import Options
from .exceptions import HTTPException, InternalServerError, NotFound
from .protocols.http import ClientDisconnected, Exchange, ServerState
from .request import Request
from .response import Response

__all__ = ["Application", "Tremolo"]

#: What a handler may ask for by keyword.
SERVER_ARGS = ("request", "response", "app", "loop", "logger", "globals", "context")
_ERROR_FIELDS = [(b"Content-Type", b"text/html; charset=utf-8")]


class Route:
    __slots__ = ("func", "is_async", "options", "wants")

    def __init__(self, func: Callable[..., Any], options: dict[str, Any]) -> None:
        self.func = func
        self.options = options
        self.is_async = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
        params = inspect.signature(func).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            self.wants: tuple[str, ...] = SERVER_ARGS
        else:
            names = {p.name for p in params}
            self.wants = tuple(n for n in SERVER_ARGS if n in names)


def _to_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, tuple) and data and isinstance(data[0], str):
        return data[0].encode(*data[1:2] or ("utf-8",))
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"a handler must return or yield bytes or str, not {type(data).__name__}")


class Tremolo:
    """A web application: routes, and the server that runs them."""

    def __init__(self) -> None:
        self.routes: dict[bytes, Route] = {}
        self.globals: dict[str, Any] = {}
        self.logger = logging.getLogger("tremolo")
        self.options = Options()

    # -- routes --------------------------------------------------------------

    def route(self, path: str | bytes, **options: Any) -> Callable[[Callable[..., Any]],
                                                                     Callable[..., Any]]:
        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            self.add_route(func, path, **options)
            return func
        return decorator

    def add_route(self, func: Callable[..., Any], path: str | bytes = "/",
                  **options: Any) -> None:
        key = path.encode("latin-1") if isinstance(path, str) else path
        if len(key) > 1:
            key = key.rstrip(b"/")  # /hello and /hello/ are the same route
        self.routes[key] = Route(func, options)

    def find_route(self, path: bytes) -> Route | None:
        route = self.routes.get(path)
        if route is None and len(path) > 1 and path.endswith(b"/"):
            route = self.routes.get(path.rstrip(b"/"))
        return route

    # -- serving -------------------------------------------------------------

    def make_handler(self, state: ServerState) -> Callable[[Exchange], Any]:
        """The application adapter for one worker: a coroutine function per exchange."""
        loop = state.loop
        context: dict[str, Any] = {}
        debug = state.options.debug
        self.options = state.options
        shared = {"app": self, "loop": loop, "logger": state.logger, "globals": self.globals,
                  "context": context}

        templates: dict[Route, dict[str, Any]] = {}

        def template(route: Route) -> dict[str, Any]:
            # the arguments a route takes that are the same for every request
            t = templates[route] = {n: shared[n] for n in route.wants if n in shared}
            return t

        async def handle(ex: Exchange) -> None:
            path = ex.head.target.partition(b"?")[0]
            route = self.find_route(path)
            if route is None:
                return self._error(ex, NotFound(), debug)
            request = Request(ex)
            response = Response(request)
            kwargs = (templates.get(route) or template(route)).copy()
            if "request" in route.wants:
                kwargs["request"] = request
            if "response" in route.wants:
                kwargs["response"] = response
            try:
                if route.is_async:
                    result = route.func(**kwargs)
                else:
                    result = await loop.run_in_executor(None, functools.partial(route.func,
                                                                                **kwargs))
                kind = type(result)
                if kind is types.CoroutineType:
                    result = await result
                elif kind is types.AsyncGeneratorType:
                    return await self._stream(ex, response, result, loop)
                elif kind is types.GeneratorType:
                    return await self._stream(ex, response, _iterate_in_thread(result, loop),
                                              loop)
                if type(result) is not bytes:
                    result = b"" if result is None else _to_bytes(result)
                ex.respond(response.status, response.head_fields(), result)
            except ClientDisconnected:
                raise
            except Exception as exc:
                if ex.started:
                    raise
                self._error(ex, exc if isinstance(exc, HTTPException)
                            else HTTPException(cause=exc), debug)
                if not isinstance(exc, HTTPException):
                    state.logger.error("handler %s failed", route.func.__name__, exc_info=exc)

        return handle

    async def _stream(self, ex: Exchange, response: Response, chunks: Any,
                      loop: asyncio.AbstractEventLoop) -> None:
        try:
            first = await chunks.__anext__()
        except StopAsyncIteration:
            first = b""
        ex.start(response.status, response.head_fields())
        await ex.write(_to_bytes(first))
        async for chunk in chunks:
            await ex.write(_to_bytes(chunk))
        ex.end()

    def _error(self, ex: Exchange, exc: HTTPException, debug: bool) -> None:
        detail = ""
        if debug or not isinstance(exc, InternalServerError):
            detail = html.escape(str(exc)) if exc.args else ""
        body = f"<h1>{exc.code} {html.escape(exc.message)}</h1>"
        if detail:
            body += f"<p>{detail}</p>"
        ex.keep_alive = False  # an error response closes the connection
        ex.respond(exc.code, _ERROR_FIELDS, body.encode())

    def run(self, host: str | None = None, port: int = 0, *, worker_num: int = 1,
            **options: Any) -> None:
        """Serves until interrupted (Ctrl-C or SIGTERM), draining in-flight requests."""
        from .server import run_server

        opts = Options.from_kwargs({"host": host, "port": port, "worker_num": worker_num,
                                    **options})
        run_server(self.make_handler, opts)


Application = Tremolo


async def _iterate_in_thread(gen: Any, loop: asyncio.AbstractEventLoop) -> Any:
    """A plain generator's chunks, each produced in the thread pool."""
    end = object()
    while True:
        chunk = await loop.run_in_executor(None, next, gen, end)
        if chunk is end:
            return
        yield chunk
