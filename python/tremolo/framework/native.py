"""Serving a Tremolo application: one NativeAdapter per worker runs the request
cycle (request middlewares, handler, response middlewares) and the hooks."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import types
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .. import _core
from ..exceptions import (
    MethodNotAllowed,
    NotFound,
    WebSocketClientClosed,
    WebSocketException,
)
from ..protocols import Adapter, ClientDisconnected, Connection, Exchange, ServerState
from ..protocols.lifecycle import RECEIVED
from ..protocols.task import cancel_later
from . import websocket
from .app import in_order
from .context import Context
from .errors import ErrorAnswers
from .executor import MultiThreadExecutor
from .request import Request
from .response import Response
from .route_check import log_unread_options
from .routing import Handler
from .sse import SSE
from .streams import BODY_TYPES, iterate_in_thread, send_stream, to_bytes
from .syncwrap import SyncProxy

if TYPE_CHECKING:
    from .app import App, Registered


class NativeAdapter(Adapter):
    def __init__(self, app: App, state: ServerState) -> None:
        self.app = app
        self.state = state
        self.loop = state.loop
        self.logger = state.logger
        self.debug = state.options.debug
        self.buffer_size = state.options.buffer_size
        self.lock = state.lock
        opts = state.options
        app.globals.update(options=Context(vars(opts) | opts.extra), info=Context(
            server_name=opts.server_name_bytes))
        self.shared = {"app": app, "loop": self.loop, "logger": self.logger,
                       "globals": app.globals, "lock": self.lock}
        # what handlers get besides: `prefix`, the mount point, () when there is one
        self.handler_shared = {**self.shared, "prefix": ()}
        state.close_unread = True  # as the original: a body left unread ends the connection
        self.errors = ErrorAnswers(app, self.logger, self.debug,
                                   opts.server_name_bytes.decode("latin-1"))
        self.executor: ThreadPoolExecutor | None = None
        self.threads: MultiThreadExecutor | None = None  # globals.executor
        self.tasks: set[asyncio.Task[Any]] = set()
        #: handle() for the usual request: the routes that need nothing but their
        #: handler (Route.plain) are answered in Rust, the others by _handle
        self.routes = _core.PlainRoutes(self, app.router, Request, Response,
                                        self.handler_shared, self.buffer_size)
        self.handle = self.routes  # type: ignore[method-assign]

    # -- worker and connection hooks -----------------------------------------

    async def _run_hooks(self, hooks: list[Registered], kwargs: dict[str, Any]) -> None:
        for hook in hooks:
            result = hook.handler.func(**hook.handler.kwargs(kwargs, {}))
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                break  # a hook that returns True stops the chain

    async def startup(self) -> None:
        self.executor = ThreadPoolExecutor(self.state.options.thread_pool_size,
                                           thread_name_prefix="tremolo-handler")
        # the original's executor, which programs reach as globals.executor
        self.threads = MultiThreadExecutor(self.state.options.thread_pool_size)
        await self.threads.start("tremolo-executor", self.loop)
        self.app.globals["executor"] = self.threads
        await self._run_hooks(self.app.hooks["worker_start"],
                              {**self.shared, "context": self.app.globals})
        log_unread_options(self.app, self.logger)  # (routes a hook added too)

    async def shutdown(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        try:
            await self._run_hooks(in_order(self.app.hooks["worker_stop"], "worker_stop"),
                                  {**self.shared, "context": self.app.globals})
        finally:
            if self.executor is not None:
                self.executor.shutdown(wait=False, cancel_futures=True)
            if self.threads is not None:
                # (its threads are daemons: one still busy does not hold the exit)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.threads.shutdown(), 5)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.logger.error("hook failed", exc_info=task.exception())

    def connection_made(self, connection: Connection) -> None:
        context = connection.context
        context["ctx"] = Context()
        if self.app.hooks["connect"]:
            # requests on this connection wait for it (see handle)
            context["connecting"] = self._spawn(self._run_hooks(
                self.app.hooks["connect"], {**self.shared, "context": context["ctx"]}))

    def connection_lost(self, connection: Connection) -> None:
        if self.app.hooks["close"]:
            coro = self._run_hooks(in_order(self.app.hooks["close"], "close"),
                                   {**self.shared, "context": connection.context["ctx"]})
            # cancelled app_close_timeout after the close (0: at its first wait)
            cancel_later(self.loop, self.state.options.app_close_timeout, self._spawn(coro))

    # -- the request cycle ---------------------------------------------------

    def _learn(self) -> None:
        """Which paths lead to a plain route, while the application has no connect
        hooks and no middlewares (the router's version changes with every route,
        hook and middleware added through the application)."""
        app = self.app
        own = app.own_middlewares
        if len(app.middlewares) != 1 or app.hooks["connect"] or own["request"] \
                or own["response"]:
            self.routes.routes = {}
        else:
            self.routes.routes = {path: route.plain
                                  for path, route in app.router.static.items()
                                  if route.plain is not None}
        self.routes.version = app.router.version

    async def _plain_rest(self, handler: Handler, response: Response,
                          server: dict[str, Any], result: Any, pending: bool = False) -> None:
        """A plain route's cycle past what PlainRoutes does itself: a result that is
        not bytes to send at once (or one still to await)."""
        try:
            if pending:
                result = await result
            await self._send_result(handler, response, result)
        except ClientDisconnected:
            raise
        except Exception as exc:
            await self._fail(exc, server)

    async def _handle(self, ex: Exchange) -> None:
        app = self.app
        context = ex.connection.context
        if app.hooks["connect"]:
            connecting = context.get("connecting")
            if connecting is not None:
                del context["connecting"]
                await asyncio.shield(connecting)
        route, groups, path_params = app.router.find(ex.head.target)
        request = Request(ex)
        response = Response(request)
        # (request.path is worked out only when a mounted application has its own)
        if len(app.middlewares) == 1:
            middlewares = app.own_middlewares
            server = dict(self.handler_shared, request=request, response=response,
                          context=context["ctx"])
        else:
            prefix, middlewares = app.middlewares_for(request.path)
            server = dict(self.shared, request=request, response=response,
                          context=context["ctx"], prefix=prefix)
        if middlewares["response"]:
            response.before_send = functools.partial(
                self._response_middlewares, middlewares["response"], server)
        try:
            if middlewares["request"] and await self._request_middlewares(
                    middlewares["request"], server):
                return
            if route is None:
                raise NotFound
            handler, view = route.resolve(ex.method)
            if handler is None:
                raise MethodNotAllowed(allow=route.allowed())
            options = route.merged[handler]
            if request._ctx is None:
                request._options = options
            else:  # a request middleware already read the options
                request._ctx.options = Context(options, **request._ctx.options)
            if path_params is not None:
                request.params["path"] = Context(groups) if groups else path_params
            if options:
                if "sse" in options:  # its fields first: the route's options may change them
                    server["sse"] = SSE(request, response)
                self._apply_options(response, options)
                if "websocket" in options and self.state.options.ws:
                    server["websocket"] = websocket.make(request, response)
            await self._call(handler, view, server, groups)
        except ClientDisconnected:
            raise
        except asyncio.CancelledError:
            if ex.cancel_when_gone and ex.connection.eof and not ex.started:
                ex.abort()  # cancelled because its client left: no one to answer
            raise
        except Exception as exc:
            ws = server.get("websocket")
            if ws is not None and ws.session is not None:
                await self._close_websocket(ws, exc)
                return
            await self._fail(exc, server)
        else:
            ws = server.get("websocket")
            if ws is not None and ws.session is not None:
                await ws.close()  # the handler is done with it

    async def _close_websocket(self, ws: websocket.WebSocket, exc: Exception) -> None:
        """A WebSocket handler raised: a WebSocketException closes with its code (the
        client's own close is answered already), anything else is logged and closes
        with 1011."""
        if isinstance(exc, WebSocketClientClosed):
            await ws.close()  # a no-op for this socket's own close; else closes it
        elif isinstance(exc, WebSocketException):
            await ws.close(exc.code)
        else:
            self.logger.error("unhandled error in a WebSocket handler", exc_info=exc)
            await ws.close(1011)

    async def _request_middlewares(self, middlewares: list[Registered],
                                   server: dict[str, Any]) -> bool:
        """Runs on_request middlewares; True when one answered the request (or
        returned another true value). Its answer is sent as it is, and the response
        middlewares run after it, as in the original: they see it, but what they
        change or return is not sent."""
        request: Request = server["request"]
        response: Response = server["response"]
        try:
            for mw in middlewares:
                data = await self._call_middleware(mw, request, server)
                if data is None:
                    continue
                after, response.before_send = response.before_send, None
                if isinstance(data, BODY_TYPES):
                    self._apply_head(response, request.ctx.options)
                    await response.end(to_bytes(data))
                if after is not None:
                    await after()
                return True
        finally:
            # what they set is for every response, an error answer too (see errors.py)
            response.kept_fields = list(response.fields)
        return False

    @staticmethod
    async def _call_middleware(mw: Registered, request: Request,
                               server: dict[str, Any]) -> Any:
        """What a middleware returns, its keyword defaults joining the request's
        options first (as the original's)."""
        if mw.handler.options:
            request.ctx.options.update(mw.handler.options)
        data = mw.handler.func(**mw.handler.kwargs(server, {}))
        return await data if asyncio.iscoroutine(data) else data

    async def _response_middlewares(self, middlewares: list[Registered],
                                    server: dict[str, Any]) -> bytes | None:
        """Runs on_response middlewares just before the head is sent. One that
        returns a body ends the chain and its body replaces the handler's, with the
        `status` and `content_type` options applied again (the route's, and the
        middlewares' own keyword defaults, which join `request.ctx.options` as each
        runs), as the original does; one that returns another true value ends the
        chain."""
        request: Request = server["request"]
        for mw in reversed(middlewares):  # (kept in the original's order)
            data = await self._call_middleware(mw, request, server)
            if data is None:
                continue
            if isinstance(data, BODY_TYPES):
                body = to_bytes(data)
                options = request._options if request._ctx is None else request.ctx.options
                # (an error answer keeps its status: the options are the route's own
                # answer's, which the error replaced)
                if options and server["response"].error is None:
                    self._apply_head(server["response"], options)
                return body
            if data:
                break
        return None

    @staticmethod
    def _apply_head(response: Response, options: dict[str, Any]) -> None:
        """The options of the head: status and content_type."""
        if "status" in options:
            status = options["status"]
            response.set_status(*status) if isinstance(status, tuple) \
                else response.set_status(status)
        if "content_type" in options:
            response.set_content_type(options["content_type"])

    @classmethod
    def _apply_options(cls, response: Response, options: dict[str, Any]) -> None:
        """Applies the options that tune the response (status, content_type,
        chunked, rate); the others only reach `request.ctx.options`."""
        cls._apply_head(response, options)
        if "chunked" in options:
            response.chunked = bool(options["chunked"])
        if "rate" in options:
            response.exchange.rate = int(options["rate"])

    async def _call(self, handler: Handler, view: Any, server: dict[str, Any],
                    groups: dict[str, Any]) -> None:
        response: Response = server["response"]
        # `func(**server)` copies the dict anyway: no copy needed for **server handlers
        kwargs = server if handler.takes_all and not groups else handler.kwargs(server, groups)
        func = handler.func
        if view is not None and not isinstance(func, types.MethodType):
            func = functools.partial(func, view)  # a method taken from the class
        if handler.is_async:
            result = func(**kwargs)
            if type(result) is types.CoroutineType:
                result = await result
        else:
            kwargs = {k: SyncProxy(v, self.loop) if k in ("request", "response") else v
                      for k, v in kwargs.items()}
            result = await self.loop.run_in_executor(self.executor,
                                                     functools.partial(func, **kwargs))
        if type(result) is bytes and len(result) <= self.buffer_size \
                and response.before_send is None and response.exchange.phase == RECEIVED \
                and response.keepalive:
            # the common case, without a coroutine for response.end()
            response.exchange.respond(response.status, response.head_fields(), result,
                                      response.reason)
        else:
            await self._send_result(handler, response, result)

    async def _send_result(self, handler: Handler, response: Response, result: Any) -> None:
        """Sends what a handler returned: a body, a stream (an async or a plain
        generator), or nothing."""
        kind = type(result)
        if kind is bytes or kind is str or kind is tuple:
            ex = response.exchange
            if kind is not bytes:
                result = to_bytes(result)
            if len(result) > self.buffer_size and ex.limited(len(result)):
                await response.end(result)
            elif response.before_send is None and ex.phase == RECEIVED and response.keepalive:
                ex.respond(response.status, response.head_fields(), result, response.reason)
            else:
                await response.end(result)
        elif kind is types.AsyncGeneratorType:
            await send_stream(response, result)
        elif kind is types.GeneratorType:
            assert self.executor is not None
            await send_stream(response, iterate_in_thread(result, self.executor))
        elif isinstance(result, bytearray | memoryview):
            await response.end(to_bytes(result))
        elif result is None:
            # the original's rule: a handler that returns nothing after streaming is
            # done; one that sent nothing closes the connection without an answer
            response.close(keepalive=response.headers_sent())
        elif response.exchange.started:
            # it answered by other means (response.write, send) and returned
            # something else: the handler keeps the connection and manages it
            response.exchange.detach()
            self.logger.debug("handler %s has exited with the connection possibly left "
                              "open", getattr(handler.func, "__name__", handler.func))
        else:
            # nothing sent and nothing sendable: a bug to name, not a client to hang
            raise TypeError(f"handler {getattr(handler.func, '__qualname__', handler.func)} "
                            f"returned {type(result).__name__}, which cannot be sent: "
                            "return bytes or str, or yield them")

    # -- errors --------------------------------------------------------------

    def _fail(self, exc: Exception, server: dict[str, Any]) -> Awaitable[None]:
        """Answers an exception (see errors.py); PlainRoutes calls it too."""
        return self.errors.answer(exc, server)
