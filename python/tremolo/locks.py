"""`lock`, the handler argument: locks shared by every worker process.

`async with lock:` takes the first; `async with lock(n):` the n-th (modulo `locks`,
default 16). They are created before the workers start, so they hold across
processes. As in the original, a wait is bounded: `acquire(timeout=None)` raises
TimeoutError after `timeout` seconds (the lock's own, 30 unless `lock(n,
timeout=...)` said otherwise; 0 only tries). Waiting happens in a thread of the
lock's own, never blocking the event loop, and a waiter cancelled or timed out
gives back the lock its thread takes afterwards.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import time
from types import TracebackType
from typing import Any, Protocol

DEFAULT_TIMEOUT = 30.0

# lock index -> the thread that waits for it, in this process (threads do not
# survive a fork, so each worker makes its own)
_waiters: dict[int, concurrent.futures.ThreadPoolExecutor] = {}
_waiters_pid = 0


def _waiter(index: int) -> concurrent.futures.ThreadPoolExecutor:
    global _waiters_pid
    if _waiters_pid != os.getpid():
        _waiters.clear()
        _waiters_pid = os.getpid()
    if index not in _waiters:
        # one thread a lock: waiters for one lock queue in order, and never hold up
        # the waiters of another
        _waiters[index] = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"tremolo-lock-{index}")
    return _waiters[index]


class ProcessLock(Protocol):
    """A lock of the operating system's that every worker shares (multiprocessing's,
    made before the fork)."""

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool: ...

    def release(self) -> None: ...


def _wait(lock: ProcessLock, deadline: float) -> bool:
    remaining = deadline - time.monotonic()
    return remaining > 0 and bool(lock.acquire(True, remaining))


def _give_back(lock: ProcessLock) -> Any:
    def done(future: concurrent.futures.Future[bool]) -> None:
        if not future.cancelled() and future.exception() is None and future.result():
            lock.release()
    return done


class ServerLock:
    def __init__(self, locks: list[ProcessLock], index: int = 0,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self._locks = locks
        self._index = index % len(locks)
        self._timeout = timeout

    @classmethod
    def create(cls, count: int) -> ServerLock:
        ctx = multiprocessing.get_context("fork")
        return cls([ctx.Lock() for _ in range(count)])

    @property
    def name(self) -> int:
        """The lock's index (the original's name for it)."""
        return self._index

    def __call__(self, name: int = 0, *, timeout: float | None = None) -> ServerLock:
        return ServerLock(self._locks, name, self._timeout if timeout is None else timeout)

    async def acquire(self, timeout: float | None = None) -> bool:
        """Takes the lock, or raises TimeoutError after `timeout` seconds."""
        if timeout is None:
            timeout = self._timeout
        lock = self._locks[self._index]
        if lock.acquire(False):
            return True
        if timeout <= 0:
            raise TimeoutError(f"lock {self._index} is held")
        future = _waiter(self._index).submit(_wait, lock, time.monotonic() + timeout)
        try:
            got = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)),
                                         timeout)
        except BaseException:  # timed out or cancelled: the thread may still take it
            if not future.cancel():
                future.add_done_callback(_give_back(lock))
            raise
        if not got:
            raise TimeoutError(f"lock {self._index} was not released in {timeout:g} s")
        return True

    def release(self) -> None:
        """Gives the lock back; releasing one that is not held does nothing, as in the
        original."""
        with contextlib.suppress(ValueError):
            self._locks[self._index].release()

    async def __aenter__(self) -> ServerLock:
        await self.acquire()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release()
