"""Run a coroutine to its first suspension without a Task.

Most handlers answer without awaiting anything real; creating an asyncio.Task (and
a loop iteration to start it) for each would cost more than the rest of the request.
So the first step runs inline, and only a coroutine that really suspends is handed
to a Task, which carries on from where it stopped.

The first step runs in a copy of the context, as a Task would, but outside any Task:
`asyncio.current_task()` is None there, so `asyncio.timeout()` and TaskGroup are
usable only after the handler's first real suspension. docs/architecture.md says so.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Generator
from typing import Any

Done = Callable[[Any, BaseException | None], None]


class _Resume:
    """An awaitable that passes a suspended coroutine's futures to the Task running it."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                value = yield pending
            except BaseException as exc:  # the Task throws cancellation in here
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(value)
                except StopIteration as stop:
                    return stop.value


async def _resume(coro: Coroutine[Any, Any, Any], pending: Any) -> Any:
    return await _Resume(coro, pending)


def drive(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any],
          done: Done, arg: Any) -> asyncio.Task[Any] | None:
    """Runs `coro`; calls `done(arg, None)` or `done(arg, exception)` when it ends.

    Returns the Task it continues in, or None when it ended in the first step.
    """
    ctx = contextvars.copy_context()
    try:
        pending = ctx.run(coro.send, None)
    except StopIteration:
        done(arg, None)
        return None
    except BaseException as exc:
        done(arg, exc)
        return None
    task = loop.create_task(_resume(coro, pending), context=ctx)

    def finished(t: asyncio.Task[Any]) -> None:
        done(arg, t.exception() if not t.cancelled() else asyncio.CancelledError())

    task.add_done_callback(finished)
    return task
