"""A file's bytes to the client of an exchange: zero-copy where the loop can, else
page-cache reads that never block the loop, at the speed limit. Used by the native
sendfile, ASGI's pathsend and WSGI's file_wrapper."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from .exchange import Exchange
    from .flow import Flow

#: file bodies go out in pieces of 16 x buffer_size, and at least this large
PIECE = 256 << 10
_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)


async def copy_file(ex: Exchange, f: BinaryIO, start: int, count: int) -> None:
    """The file's bytes [start, start+count) to the client. Zero-copy with the loop's
    sendfile where it has one and no speed limit applies; otherwise in pieces read
    from the page cache without blocking (RWF_NOWAIT), or in a thread when the data
    is not cached, and written at the speed limit."""
    p = ex.protocol
    loop = p.loop
    if count <= 0:
        return
    if not ex.limited(count) and await _native_sendfile(ex.flow, loop, f, start, count):
        ex.wrote(count)
        return
    piece = max(p.state.options.buffer_size * 16, PIECE)
    fd = f.fileno()
    pos, end = start, start + count
    while pos < end:
        size = min(piece, end - pos)
        data = read_cached(fd, size, pos)
        if data is None:
            data = await loop.run_in_executor(None, os.pread, fd, size, pos)
        if not data:
            raise OSError("the file shrank while it was being sent")
        await ex.write(data)
        pos += len(data)


def read_cached(fd: int, size: int, pos: int) -> bytes | None:
    """Up to `size` bytes at `pos` if they are in the page cache, else None: such a
    read never waits for the disk, so it may run on the event loop."""
    if _NOWAIT is None:
        return None
    buf = bytearray(size)
    try:
        n = os.preadv(fd, [buf], pos, _NOWAIT)
    except (BlockingIOError, OSError):
        return None
    if n <= 0:
        return None
    del buf[n:]
    return bytes(buf)


async def _native_sendfile(flow: Flow, loop: asyncio.AbstractEventLoop, f: BinaryIO,
                           start: int, count: int) -> bool:
    """The event loop's zero-copy sendfile (the asyncio loop has one, uvloop not).
    False where it is not available (uvloop, TLS)."""
    transport = flow.transport
    if transport is None or transport.get_extra_info("sslcontext") is not None:
        return False
    try:
        await flow.drain_all()
        await loop.sendfile(transport, f, start, count, fallback=False)
        return True
    except (NotImplementedError, RuntimeError, asyncio.SendfileNotAvailableError):
        return False
