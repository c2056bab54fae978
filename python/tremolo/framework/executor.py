"""`globals.executor`: the worker's threads for blocking work, with the original
Tremolo's API (`await executor.submit(func, args, kwargs, name=i)`; a generator
function gives an async iterator), which programs written for it use.

Each thread has its own queue, so `name=` pins work to one thread (a program can
keep a thread-bound object, such as a SQLite connection, on it); without a name
the least busy thread takes it. A thread found dead is replaced on the next submit
to it, which still fails (the work was not done)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import queue
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

__all__ = ["MultiThreadExecutor", "WorkerThread"]

_STOP = object()


def _settle(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is None:
        fut.set_result(result)
    elif isinstance(exc, StopIteration):
        fut.cancel()  # a future cannot carry StopIteration
    else:
        fut.set_exception(exc)


class WorkerThread(threading.Thread):
    """One thread running what is submitted to it, in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        # a daemon: a loop stopped without shutdown() must not keep the process
        super().__init__(name=name, daemon=True)
        self.loop = loop
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.pending = 0
        self.stopping = False
        self._stopped: asyncio.Future[None] | None = None

    def run(self) -> None:
        while True:
            fut, func, args, kwargs = self.queue.get()
            if func is _STOP:
                break
            result, exc = None, None
            try:
                result = func(*args, **kwargs)
            except BaseException as e:  # delivered to the awaiting coroutine
                exc = e
            self._deliver(fut, result, exc)
        self._deliver(fut, None, None)

    def _deliver(self, fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self.loop.call_soon_threadsafe(self._done, fut, result, exc)

    def _done(self, fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
        self.pending -= 1
        _settle(fut, result, exc)

    def submit(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """A future of `func(*args, **kwargs)` run in this thread; for a generator
        function, an async iterator over what it yields."""
        if self.stopping or not self.is_alive():
            raise RuntimeError("submit() to a thread that is not running")
        if inspect.isgeneratorfunction(func):
            return self._iterate(func(*args, **kwargs))
        if not callable(func):
            raise TypeError(f"{func!r} is not callable")
        return self._put(func, args, kwargs)

    def _put(self, func: Callable[..., Any], args: Any, kwargs: Any) -> asyncio.Future[Any]:
        fut = self.loop.create_future()
        self.pending += 1
        self.queue.put((fut, func, args, kwargs))
        return fut

    async def _iterate(self, gen: Any) -> AsyncIterator[Any]:
        while True:
            try:
                yield await self._put(gen.__next__, (), {})
            except asyncio.CancelledError:  # StopIteration, see _settle
                return

    def shutdown(self) -> asyncio.Future[None]:
        """Stops the thread once the work queued before is done; the future is
        done when it has stopped."""
        if self._stopped is None:
            self._stopped = self.loop.create_future()
            if self.is_alive():
                self.stopping = True
                self.pending += 1
                self.queue.put((self._stopped, _STOP, (), {}))
            else:
                self._stopped.set_result(None)
        return self._stopped


class MultiThreadExecutor:
    """`size` WorkerThreads; `counter` is the number of the next thread made."""

    def __init__(self, size: int = 5) -> None:
        self.size = size
        self.threads: list[WorkerThread] = []
        self.thread: WorkerThread | None = None  # the one that took the last work
        self.counter = 1

    def start(self, prefix: str = "MultiThreadExecutor",
              loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[Any]:
        """Starts threads until there are `size`; awaitable (done at once)."""
        loop = loop or asyncio.get_running_loop()
        self._prefix, self._loop = prefix, loop
        while len(self.threads) < self.size:
            thread = WorkerThread(loop, f"{prefix}-{self.counter}")
            thread.start()
            self.threads.append(thread)
            self.counter += 1
        done = loop.create_future()
        done.set_result(None)
        return done

    def submit(self, func: Any, args: tuple[Any, ...] = (),
               kwargs: Mapping[str, Any] | None = None, name: int | None = None) -> Any:
        """`await executor.submit(func, args, kwargs)`: `func` run in a thread;
        `name=i` runs it in thread i % size."""
        if self.size == 0 or len(self.threads) < self.size:
            raise RuntimeError("the executor has no threads running")
        if name is None:
            thread = min(self.threads, key=lambda t: t.pending)
        else:
            thread = self.threads[name % self.size]
        self.thread = thread
        try:
            return thread.submit(func, *args, **(kwargs or {}))
        except RuntimeError:
            # a dead thread: replace it, for the next submit
            self.threads.remove(thread)
            self.start(self._prefix, self._loop)
            raise

    async def shutdown(self) -> None:
        """Stops every thread once its queued work is done."""
        self.size = 0
        threads, self.threads = self.threads, []
        await asyncio.gather(*(t.shutdown() for t in threads))
