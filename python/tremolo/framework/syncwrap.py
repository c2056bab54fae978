"""Plain (non-async) handlers run in the thread pool; the request and response they
get run their coroutine methods on the event loop and wait for the result, so
`request.body()` works there without `await`."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any


class SyncProxy:
    __slots__ = ("_loop", "_target")

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_loop", loop)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if inspect.iscoroutinefunction(attr):
            return self._blocking(attr)
        if inspect.isasyncgenfunction(attr):
            return self._iterating(attr)
        return attr

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def _blocking(self, func: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(func(*args, **kwargs), self._loop).result()
        return call

    def _iterating(self, func: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
        def iterate(*args: Any, **kwargs: Any) -> Iterator[Any]:
            agen = func(*args, **kwargs)
            while True:
                fut = asyncio.run_coroutine_threadsafe(agen.__anext__(), self._loop)
                try:
                    yield fut.result()
                except StopAsyncIteration:
                    return
        return iterate
