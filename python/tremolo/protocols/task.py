"""RequestTask: each request's handler runs in one, a task without a Task's costs.

An asyncio.Task per request costs about as much as the rest of a small request (its
creation, its registration in a WeakSet, a loop iteration before its first step and
another for its done callbacks). Most handlers answer without waiting for anything.
So a RequestTask runs its first step at once, the way Python 3.12's eager tasks do,
and later steps only when the futures it waits on are done.

It is the current task while it runs (asyncio.current_task() returns it), from the
handler's first line to its last, so asyncio.timeout(), TaskGroup and anyio's
cancel scopes work in handlers. It offers what code running inside a task asks of
its task: cancel(), cancelling(), uncancel(), done(), cancelled(), result(),
exception(), add_done_callback(), remove_done_callback(), get_coro(), get_name(),
get_loop(), get_context(). It is not an asyncio.Task: it is not in
asyncio.all_tasks() and cannot be awaited; the protocol that started it is told
when it ends (before its done callbacks run).

Steps follow asyncio.Task's rules: a coroutine waits on a Future by yielding it
(with `_asyncio_future_blocking` set), a bare yield gives way for one iteration, a
cancel() cancels the future waited on or is delivered at the next step, and a
coroutine that swallows its cancellation goes on.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, cast

Done = Callable[[Any, BaseException | None], None]

# typed for any task: asyncio keeps whatever it is given as the current task
_enter_task = cast(Callable[[asyncio.AbstractEventLoop, Any], None], asyncio.tasks._enter_task)
_leave_task = cast(Callable[[asyncio.AbstractEventLoop, Any], None], asyncio.tasks._leave_task)
_current_task = asyncio.current_task
_CancelledError = asyncio.CancelledError
_numbers = itertools.count(1)
#: what RequestTask.run_first() returns while the coroutine goes on
RUNNING = object()


class RequestTask:
    # Only what every request needs is set per instance; the rest starts as these
    # class attributes (a task that never waits or is cancelled never sets them).
    _fut_waiter: asyncio.Future[Any] | None = None
    _must_cancel = False
    _cancel_message: str | None = None
    _cancel_requests = 0
    _finished = False
    _cancelled = False
    _outcome: BaseException | None = None
    _callbacks: list[tuple[Callable[[Any], object], contextvars.Context | None]] | None = None
    _name: str | None = None

    def __init__(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any],
                 done: Done, arg: Any) -> None:
        self._loop = loop
        self._coro = coro
        #: called as done(arg, None), or done(arg, exception) (a CancelledError if
        #: the task was cancelled), once the coroutine has ended
        self._notify = done
        self._arg = arg
        # a copy of the context, as a Task has: what a handler sets stays its own
        self._context = contextvars.copy_context()
        # read by every first step (class attributes are read slowly; see Exchange)
        self._must_cancel = False
        self._callbacks = None

    def start(self) -> bool:
        """Runs the first step now (from a loop callback, say); True if the
        coroutine ended in it. `done` is called when it ends, then or later."""
        outcome = self.run_first()
        if outcome is RUNNING:
            return False
        self._notify(self._arg, outcome)  # type: ignore[arg-type]
        return True

    def run_first(self) -> BaseException | object | None:
        """Runs the first step now, as an eager task does. Returns RUNNING while the
        coroutine waits for something (later steps follow as in any task, and `done`
        is called when it ends); else what it ended with (None, or its exception),
        and `done` is not called: the caller, told so, goes on itself."""
        loop = self._loop
        try:
            _enter_task(loop, self)
        except RuntimeError:
            return self._run_first_inside()
        try:
            result = self._context.run(self._coro.send, None)
        except StopIteration:
            _leave_task(loop, self)
            if self._must_cancel or self._callbacks is not None:
                return self._end(_CancelledError(self._cancel_message) if self._must_cancel
                                 else None)
            self._finished = True  # the usual end: answered in the first step
            return None
        except (KeyboardInterrupt, SystemExit) as stop:
            _leave_task(loop, self)
            self._finish(stop)
            raise
        except BaseException as error:
            _leave_task(loop, self)
            return self._end(error)
        _leave_task(loop, self)
        self._wait(result)
        return RUNNING

    def _run_first_inside(self) -> BaseException | object | None:
        """run_first() from inside another task (a handler's response let the next
        pipelined request start): that task steps aside while this one runs, as it
        does for Python 3.12's eager tasks."""
        loop = self._loop
        outer = _current_task(loop)
        _leave_task(loop, outer)
        _enter_task(loop, self)
        outcome: BaseException | None
        try:
            result = self._context.run(self._coro.send, None)
        except StopIteration:
            outcome = _CancelledError(self._cancel_message) if self._must_cancel else None
        except (KeyboardInterrupt, SystemExit) as stop:
            self._leave(outer)
            self._finish(stop)
            raise
        except BaseException as error:
            outcome = error
        else:
            self._leave(outer)
            self._wait(result)
            return RUNNING
        self._leave(outer)
        return self._end(outcome)

    def _leave(self, outer: Any) -> None:
        _leave_task(self._loop, self)
        if outer is not None:
            _enter_task(self._loop, outer)

    # -- what code inside the task may ask of it ------------------------------

    def cancel(self, msg: str | None = None) -> bool:
        if self._finished:
            return False
        self._cancel_requests += 1
        waiter = self._fut_waiter
        if waiter is not None and waiter.cancel(msg=msg):
            # the wakeup throws the CancelledError into the coroutine
            return True
        # running, or about to run: the next step delivers it
        self._must_cancel = True
        self._cancel_message = msg
        return True

    def cancelling(self) -> int:
        return self._cancel_requests

    def uncancel(self) -> int:
        if self._cancel_requests > 0:
            self._cancel_requests -= 1
            if self._cancel_requests == 0:
                self._must_cancel = False
        return self._cancel_requests

    def done(self) -> bool:
        return self._finished

    def cancelled(self) -> bool:
        return self._cancelled

    def result(self) -> None:
        if not self._finished:
            raise asyncio.InvalidStateError("the task is not done")
        if self._outcome is not None:
            raise self._outcome

    def exception(self) -> BaseException | None:
        if not self._finished:
            raise asyncio.InvalidStateError("the task is not done")
        if self._cancelled:
            assert self._outcome is not None
            raise self._outcome
        return self._outcome

    def add_done_callback(self, fn: Callable[[Any], object], *,
                          context: contextvars.Context | None = None) -> None:
        if self._finished:
            self._loop.call_soon(fn, self, context=context)
        elif self._callbacks is None:
            self._callbacks = [(fn, context)]
        else:
            self._callbacks.append((fn, context))

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
        if not self._callbacks:
            return 0
        kept = [(f, c) for f, c in self._callbacks if f != fn]
        removed = len(self._callbacks) - len(kept)
        self._callbacks = kept
        return removed

    def get_coro(self) -> Coroutine[Any, Any, Any]:
        return self._coro

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def get_context(self) -> contextvars.Context:
        return self._context

    def get_name(self) -> str:
        if self._name is None:
            self._name = f"RequestTask-{next(_numbers)}"
        return self._name

    def set_name(self, value: object) -> None:
        self._name = str(value)

    def __repr__(self) -> str:
        state = "finished" if self._finished else "pending"
        return f"<RequestTask {self.get_name()} {state} coro={self._coro!r}>"

    # -- stepping ---------------------------------------------------------------

    def _step(self, exc: BaseException | None) -> None:
        loop = self._loop
        _enter_task(loop, self)
        if self._must_cancel:
            if not isinstance(exc, _CancelledError):
                exc = _CancelledError(self._cancel_message)
            self._must_cancel = False
        self._fut_waiter = None
        outcome: BaseException | None
        try:
            result = self._coro.send(None) if exc is None else self._coro.throw(exc)
        except StopIteration:
            # cancelled just as it ended: it ends cancelled, as a Task would
            outcome = _CancelledError(self._cancel_message) if self._must_cancel else None
        except (KeyboardInterrupt, SystemExit) as stop:
            _leave_task(loop, self)
            self._finish(stop)
            raise
        except BaseException as error:
            outcome = error
        else:
            _leave_task(loop, self)
            self._wait(result)
            return
        _leave_task(loop, self)
        self._finish(outcome)

    def _wait(self, result: Any) -> None:
        """Arranges the next step for what the coroutine yielded."""
        loop = self._loop
        blocking = getattr(result, "_asyncio_future_blocking", None)
        if blocking is None:
            if result is None:  # a bare yield (asyncio.sleep(0)): give way once
                loop.call_soon(self._step, None, context=self._context)
            else:
                self._fail_soon(f"a task got a bad yield: {result!r}")
        elif not blocking:
            self._fail_soon("yield was used instead of yield from in a task")
        elif _loop_of(result) is not loop:
            self._fail_soon(f"a task waited on a future of another loop: {result!r}")
        else:
            result._asyncio_future_blocking = False
            result.add_done_callback(self._wakeup, context=self._context)
            self._fut_waiter = result
            if self._must_cancel and result.cancel(msg=self._cancel_message):
                self._must_cancel = False

    def _fail_soon(self, message: str) -> None:
        self._loop.call_soon(self._step, RuntimeError(message), context=self._context)

    def _wakeup(self, future: asyncio.Future[Any]) -> None:
        try:
            future.result()
        except BaseException as exc:
            self._step(exc)
        else:
            self._step(None)

    def _finish(self, outcome: BaseException | None) -> None:
        self._notify(self._arg, self._end(outcome))

    def _end(self, outcome: BaseException | None) -> BaseException | None:
        """The task is done with `outcome`: its done callbacks are scheduled."""
        self._finished = True
        if outcome is not None:
            self._outcome = outcome
            self._cancelled = isinstance(outcome, _CancelledError)
            self._fut_waiter = None
        if self._callbacks:
            # as a Future does: each callback on its own, later, with the task
            for fn, context in self._callbacks:
                self._loop.call_soon(fn, self, context=context)
            self._callbacks = None
        return outcome


def _loop_of(future: Any) -> Any:
    get_loop = getattr(future, "get_loop", None)
    return get_loop() if get_loop is not None else getattr(future, "_loop", None)


def cancel_later(loop: asyncio.AbstractEventLoop, seconds: float,
                 task: RequestTask | asyncio.Task[Any]) -> None:
    """Cancels `task` in `seconds` if it is still running then (a handler whose
    client left gets that long). The timer holds the task weakly: a task that ends
    before it is not kept, nor what its outcome holds (an exception's frames, with
    the buffers they had)."""
    loop.call_later(seconds, _cancel, weakref.ref(task))


def _cancel(ref: weakref.ref[Any]) -> None:
    task = ref()
    if task is not None and not task.done():
        task.cancel()
