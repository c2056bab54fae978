"""The WSGI adapter: a request's environ, and its way to a thread and back.

The application runs in a bounded thread pool (thread_pool_size: the core's WsgiPool,
rust/src/py/wsgi_pool.rs), never on the event loop. A request without a body goes
there and back by the core's WsgiHandle (rust/src/py/wsgi_call.rs), which calls
the methods below for what it does not do itself. Before a thread is given a request
with a body, the loop reads the body up to wsgi_input_buffer (the whole of a small
one): a client sending slowly holds no thread while it does. The rest of a longer
body streams through `wsgi.input` as the application reads it: read by the thread
from the socket itself (protocols/lending.py), or, over TLS, chunked or at upload_rate, read by the
loop and handed over. A full pool's queue (wsgi_queue_size) answers 503.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from .. import _core
from ..exceptions import HTTPException, ServiceUnavailable
from ..protocols import Adapter, ClientDisconnected, Connection, Exchange, ServerState
from ..protocols.answers import answer_parts
from ..protocols.lending import lend
from .cycle import WSGICycle
from .streams import FileWrapper, InputStream

_signal = _core.signal

#: wsgi.input of a request without a body (it never changes: nothing is read)
EMPTY = InputStream([], None)


class WSGIAdapter(Adapter):
    interface = "wsgi"

    def __init__(self, app: Callable[..., Iterable[bytes]], state: ServerState,
                 root_path: str = "") -> None:
        self.app = app
        self.state = state
        self.root_path = root_path
        self.loop = state.loop
        opts = state.options
        self.pool = _core.WsgiPool(state.loop, opts.thread_pool_size, opts.wsgi_queue_size,
                                   "tremolo-wsgi")
        self.input_buffer = opts.wsgi_input_buffer
        #: what a streamed body may have queued and not written (the write
        #: watermark)
        self.write_bound = opts.buffer_size * 4
        # a request without a body is the core's, which calls the methods below for
        # what it does not do itself
        self.handle = _core.WsgiHandle(  # type: ignore[method-assign]
            self, self.pool, WSGICycle, EMPTY, root_path, opts.download_rate > 0, state.loop)

    async def shutdown(self) -> None:
        self.pool.close()

    def _connection(self, p: Connection) -> tuple[dict[str, Any], _core.Proxies | None]:
        """What every request on a connection shares, worked out once: the environ's
        keys that do not change, and the trusted proxies when its peer is one whose
        fields are believed."""
        info = p.info
        assert info is not None
        client = info.peer
        base: dict[str, Any] = {
            "SCRIPT_NAME": self.root_path,
            "SERVER_NAME": info.server[0] if info.server else "localhost",
            "SERVER_PORT": str(info.server[1]) if info.server else "0",
            "REMOTE_ADDR": client[0] if client else "",
            "REMOTE_PORT": str(client[1]) if client else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": info.scheme,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": self.state.options.worker_num > 1,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            # wsgi.input ends where the body ends, chunked or not: frameworks may read
            # it without a CONTENT_LENGTH (werkzeug does only when this is set)
            "wsgi.input_terminated": True,
        }
        known = p.context["wsgi"] = (base, info.proxies)
        return known

    def environ(self, ex: Exchange) -> dict[str, Any]:
        p = ex.connection
        base, proxies = p.context.get("wsgi") or self._connection(p)
        # the request's own keys, and what a trusted proxy's fields say, are the
        # core's (rust/src/py/wsgi.rs)
        return ex.head.environ(base, self.root_path, proxies)

    async def _handle(self, ex: Exchange) -> None:
        """A request with a body (or asking for an upgrade, which WSGI does not have):
        the body read ahead before the request is queued for a thread."""
        cycle = WSGICycle(self, ex)
        if ex.body_exhausted:
            stream = EMPTY
        else:
            try:
                buffered, more = await self._read_ahead(ex)
            except HTTPException as exc:
                ex.refuse(exc)  # too slow (408), malformed or too large (400, 413)
                return
            receive = None
            if more:  # the rest comes on as the application reads
                lent = cycle.lent = lend(cycle, ex)
                if lent is not None:  # read by its thread, from the socket
                    buffered += ex.take_body(1 << 62)  # (what came meanwhile)
                    receive = lent.receive
                else:  # read by the loop for it
                    cycle.inbox = deque()
                    cycle.pump_task = self.loop.create_task(cycle.pump())
                    receive = cycle.receive_blocking
            stream = InputStream(buffered, receive)
        environ = cycle.environ = self.environ(ex)
        environ["wsgi.input"] = stream
        signal = cycle._signal = _signal(self.loop)
        if not self.pool.submit(cycle):
            self._release(cycle, True)
            self._unavailable(ex)
            return
        try:
            await signal  # the thread's first piece, or its end
        except BaseException:
            if self._abandon(cycle):
                return
            raise
        await self._finish(cycle)

    def _abandon(self, cycle: WSGICycle) -> bool:
        """The handler was cancelled while it waited for the thread: True when no
        thread had taken it (it is answered 503 now: app_handler_timeout)."""
        cycle.give_up()
        if self.pool.withdraw(cycle):
            self._release(cycle, True)
            self._answer_503(cycle.ex)
            return True
        self._release(cycle, False)
        return False

    @staticmethod
    def _release(cycle: WSGICycle, done: bool) -> None:
        """What reads the body for the thread stops: the pump, or the thread's own
        reads, which go back to the loop when the thread is `done` with the request
        (or never ran it) and are cut off when it may still read."""
        if cycle.pump_task is not None:
            cycle.pump_task.cancel()
        lent = cycle.lent
        if lent is not None:
            cycle.lent = None
            if done:
                lent.give_back()
            else:
                lent.cut()

    async def _finish(self, cycle: WSGICycle) -> None:
        """Everything after the thread's first piece or its end, but a body given
        whole (the core answers that): the rest of a streamed body, a file, an error."""
        ex = cycle.ex
        try:
            if cycle.outbox is not None or not cycle.finished:
                await cycle.serve()
        except BaseException:
            cycle.give_up()
            self._release(cycle, False)
            raise
        self._release(cycle, True)  # (before the answer ends: it reads on after it)
        if cycle.input_error is not None and not cycle.started:
            # reading the body failed (too slow: 408; malformed or too large: 400, 413):
            # that is the answer, whatever the application made of the exception
            ex.refuse(cycle.input_error)
            return
        error = cycle.error
        if error is not None:
            if not isinstance(error, ClientDisconnected) and cycle.input_error is None:
                self.state.logger.error("WSGI application failed", exc_info=error)
            cycle.fail()
            return
        if cycle.file is not None:
            await cycle.send_file()
        limited = cycle.finish()
        if limited is not None:
            await limited

    async def _read_ahead(self, ex: Exchange) -> tuple[list[bytes], bool]:
        """The body, up to input_buffer, read before a thread is given the request;
        and whether more follows."""
        pieces: list[bytes] = []
        size = 0
        while size < self.input_buffer:
            data = await ex.receive()
            if not data:
                return pieces, False
            pieces.append(data)
            size += len(data)
        return pieces, True

    def _unavailable(self, ex: Exchange) -> None:
        """The pool's queue is full: 503."""
        self.state.logger.warning("WSGI thread pool busy: %d requests wait for its %d "
                                  "threads (wsgi_queue_size): 503", self.pool.waiting,
                                  self.pool.size)
        self._answer_503(ex)

    def _answer_503(self, ex: Exchange) -> None:
        headers, body, reason = answer_parts(ServiceUnavailable())
        ex.keep_alive = False
        ex.respond(503, [*headers, (b"Retry-After", b"1")], body, reason)
