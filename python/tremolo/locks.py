"""`lock`, the handler argument: locks shared by every worker process.

`async with lock:` takes the first; `async with lock(n):` the n-th (of `locks`,
default 16). They are created before the workers start, so they hold across
processes; waiting happens in a thread, never blocking the event loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from types import TracebackType
from typing import Any


class ServerLock:
    def __init__(self, locks: list[Any], index: int = 0) -> None:
        self._locks = locks
        self._index = index

    @classmethod
    def create(cls, count: int) -> ServerLock:
        ctx = multiprocessing.get_context("fork")
        return cls([ctx.Lock() for _ in range(count)])

    def __call__(self, index: int = 0) -> ServerLock:
        if not 0 <= index < len(self._locks):
            raise IndexError(f"lock index must be 0 to {len(self._locks) - 1}")
        return ServerLock(self._locks, index)

    async def acquire(self) -> bool:
        lock = self._locks[self._index]
        if lock.acquire(block=False):
            return True
        return bool(await asyncio.get_running_loop().run_in_executor(None, lock.acquire))

    def release(self) -> None:
        self._locks[self._index].release()

    async def __aenter__(self) -> ServerLock:
        await self.acquire()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release()
