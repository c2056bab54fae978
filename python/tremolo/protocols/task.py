"""RequestTask: each request's handler runs in one, a task without a Task's costs.

An asyncio.Task per request costs about as much as the rest of a small request, and
most handlers answer without waiting for anything. So a RequestTask runs its first
step at once, the way Python 3.12's eager tasks do (`run_first()`), and later steps
only when the futures it waits on are done. It is the current task while it runs, so
asyncio.timeout(), TaskGroup and anyio's cancel scopes work in handlers, and it
offers what code running inside a task asks of its task. It is written in Rust
(rust/src/py/task.rs, where its rules are given) because every request makes one.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from .. import _core

RequestTask = _core.RequestTask
#: what RequestTask.run_first() returns while the coroutine goes on
RUNNING = _core.RUNNING


def cancel_later(loop: asyncio.AbstractEventLoop, seconds: float,
                 task: RequestTask | asyncio.Task[Any]) -> None:
    """Cancels `task` in `seconds` if it is still running then (a handler whose
    client left gets that long). The timer holds the task weakly: a task that ends
    before it is not kept, nor what its outcome holds (an exception's frames, with
    the buffers they had); and it ends with the task."""
    timer = loop.call_later(seconds, _cancel, weakref.ref(task))
    # a task that ends first takes its timer with it: every closed WebSocket whose
    # handler was still waiting made one, and under churn they piled up for
    # app_close_timeout (40,000 in 10 s: +44 MB for 30 s)
    task.add_done_callback(lambda _: timer.cancel())


def _cancel(ref: weakref.ref[Any]) -> None:
    task = ref()
    if task is not None and not task.done():
        task.cancel()
