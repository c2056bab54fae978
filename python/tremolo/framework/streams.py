"""Bodies as handlers give them: what a value becomes on the wire, and a yielded body
sent chunk by chunk from an async generator or, in a thread, from a plain one.

A stream that ends early (its client left, its handler was cancelled) closes its
generator at once, so the handler's `finally:` runs then rather than at a garbage
collection, or never."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Generator
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .response import Response

#: what a handler or middleware may return as a body (see to_bytes)
BODY_TYPES = (bytes, bytearray, memoryview, str, tuple)


def to_bytes(data: Any) -> bytes:
    """bytes, str (UTF-8), or a tuple of them as the original takes it: `(str,
    encoding)`, or bytes first (`(request.ip, b'latin-1')`: the encoding is for a str
    only)."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, tuple) and data:
        first = data[0]
        if isinstance(first, str):
            encoding = data[1] if len(data) > 1 else "utf-8"
            if isinstance(encoding, bytes):
                encoding = encoding.decode("latin-1")
            return first.encode(encoding)
        if isinstance(first, bytes | bytearray | memoryview):
            return bytes(first)
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"a handler must return or yield bytes or str, not {type(data).__name__}")


async def send_stream(response: Response, chunks: AsyncGenerator[Any, None]) -> None:
    """Sends what `chunks` yields as the body: the head once the first chunk is
    there (a response middleware may replace the body then), each chunk as it
    comes, and the end."""
    # the handler only feeds this client: once it left, the handler is cancelled
    response.exchange.cancel_when_gone = True
    try:
        try:
            first = await chunks.__anext__()
        except StopAsyncIteration:
            first = b""
        await response.write(None)
        if response.replaced:  # a response middleware answered instead
            return
        await response.write(to_bytes(first) or None)
        async for chunk in chunks:
            data = to_bytes(chunk)
            if data:
                await response.write(data)
        await response.write(b"")
    finally:
        # a generator left at a `yield` (the client left while a chunk was being
        # sent) runs its cleanup now; one that ended or raised has nothing to do
        await chunks.aclose()


async def iterate_in_thread(gen: Generator[Any, None, None], executor: Executor
                            ) -> AsyncGenerator[Any, None]:
    """A plain generator's items, each made in a thread (it may block). When the
    stream ends early, the generator is closed in a thread too, once a step
    still running there is over (a running generator cannot be closed)."""
    end = object()
    step: Future[Any] | None = None
    try:
        while True:
            step = executor.submit(next, gen, end)
            chunk = await asyncio.wrap_future(step)
            if chunk is end:
                step = None  # it ended: nothing to close
                return
            yield chunk
    finally:
        if step is not None:
            step.add_done_callback(lambda _: _close_in(executor, gen))


def _close_in(executor: Executor, gen: Generator[Any, None, None]) -> None:
    # (after the worker stopped, its threads are gone: the generator is left to
    # the collector)
    with contextlib.suppress(RuntimeError):
        executor.submit(gen.close)
