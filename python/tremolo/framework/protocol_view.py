"""`request.protocol`: the original's protocol object as programs reach it, a thin view
on the connection. Made on first use and kept for the connection's life, so requests
that never touch it cost nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..protocols import Connection


def _max_queue_size(protocol: Connection, value: Any) -> None:
    protocol.set_queue_limit(int(value))


def _upload_rate(protocol: Connection, value: Any) -> None:
    protocol.set_upload_rate(int(value))


#: options this connection reads again after a write (the others are the listener's,
#: read where the listener's clocks and limits are kept)
LIVE: dict[str, Callable[[Connection, Any], None]] = {
    "max_queue_size": _max_queue_size,
    "upload_rate": _upload_rate,
}


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the caller runs on `loop` (a plain handler runs in a thread, where the
    connection must not be touched: what it asks is handed to the loop)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class ConnectionOptions(dict[str, Any]):
    """The listener's options by the original's names, for this connection: a write
    is seen by later code of the connection (a later middleware of the same request),
    and `max_queue_size` and `upload_rate` take effect on it."""

    def __init__(self, protocol: Connection) -> None:
        opts = protocol.options
        super().__init__(vars(opts) | opts.extra)
        self._protocol = protocol

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        apply = LIVE.get(key)
        if apply is not None:
            p = self._protocol
            if _on_loop(p.loop):
                apply(p, value)
            else:
                p.loop.call_soon_threadsafe(apply, p, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


class ConnectionView:
    """What the original's protocol object gives a program: `options`,
    `create_task(coro)` (a task cancelled when the connection closes), the
    connection's `context`, `globals`, `loop`, `transport`, `close()`."""

    __slots__ = ("_options", "_protocol", "_tasks")

    def __init__(self, protocol: Connection) -> None:
        self._protocol = protocol
        self._options: ConnectionOptions | None = None
        self._tasks: set[asyncio.Task[Any]] | None = None

    @property
    def options(self) -> ConnectionOptions:
        if self._options is None:
            self._options = ConnectionOptions(self._protocol)
        return self._options

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._protocol.loop

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._protocol.transport

    @property
    def context(self) -> Any:
        """The connection's context (the `context` of on_connect and on_close)."""
        return self._protocol.context.get("ctx")

    @property
    def globals(self) -> Any:
        """The worker's context (the handlers' `globals`)."""
        app = getattr(self._protocol.adapter, "app", None)
        return getattr(app, "globals", None)

    def is_closing(self) -> bool:
        return self._protocol.closed

    def close(self) -> None:
        p = self._protocol
        if _on_loop(p.loop):
            p.close()
        else:
            p.loop.call_soon_threadsafe(p.close)

    def create_task(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Runs `coro` beside the handler, tied to the connection as in the original:
        cancelled when the connection closes, and one that fails closes it."""
        p = self._protocol
        if not _on_loop(p.loop):  # from a plain handler's thread: made on the loop

            async def made_on_the_loop() -> asyncio.Task[Any]:
                return self.create_task(coro)

            return asyncio.run_coroutine_threadsafe(made_on_the_loop(), p.loop).result()
        task = p.loop.create_task(coro)
        if self._tasks is None:
            self._tasks = set()
            closed = p.loop.create_future()
            closed.add_done_callback(self._cancel_tasks)
            p.watch_close(closed)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _cancel_tasks(self, _: asyncio.Future[None]) -> None:
        tasks, self._tasks = self._tasks or set(), None  # a later one watches anew
        for task in tasks:
            task.cancel()

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._protocol.logger.error("a task of the connection failed: closing it",
                                              exc_info=task.exception())
            self._protocol.close()
