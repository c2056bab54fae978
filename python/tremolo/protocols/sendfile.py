"""A file's bytes to the client of an exchange: zero-copy where the loop can, else
page-cache reads that never block the loop, at the speed limit. Used by the native
sendfile, ASGI's pathsend and WSGI's file_wrapper."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import TYPE_CHECKING, BinaryIO

from .flow import ClientDisconnected, bytes_acked

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
    """The event loop's zero-copy sendfile (the asyncio loop has one, uvloop not),
    watched for a client that stops reading (see _watch). False where it is not
    available (uvloop, TLS), or where the kernel does not tell the client's
    progress."""
    transport = flow.transport
    if transport is None or transport.get_extra_info("sslcontext") is not None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is None or bytes_acked(sock) is None:
        return False
    try:
        await flow.drain_all()
        sending = loop.create_task(loop.sendfile(transport, f, start, count, fallback=False))
    except ClientDisconnected:
        raise  # (a RuntimeError too, for the original's programs: not a loop's refusal)
    except (NotImplementedError, RuntimeError):
        return False
    try:
        await _watch(flow, sending, sock)
    except ClientDisconnected:
        raise
    except (NotImplementedError, RuntimeError, asyncio.SendfileNotAvailableError):
        return False
    return True


async def _watch(flow: Flow, sending: asyncio.Task[int], sock: socket.socket) -> None:
    """Waits for a zero-copy send, checking a few times a request_timeout that the
    client acknowledges data: sendfile writes from the kernel, past the transport's
    write buffer, so neither drain nor the sweeper's write-buffer clock sees a
    client that reads nothing (on the asyncio loop it was held until
    app_handler_timeout). One that acknowledges nothing for request_timeout is
    dropped."""
    loop = asyncio.get_running_loop()
    step = min(1.0, flow.timeout / 4)
    acked, since = bytes_acked(sock), loop.time()
    stalled = False
    try:
        while not sending.done() and not flow.closed:
            await asyncio.wait((sending,), timeout=step)
            now, seen = loop.time(), bytes_acked(sock)
            if seen != acked:
                acked, since = seen, now
            elif now - since > flow.timeout and not sending.done():
                stalled = True
                break
    finally:
        if not sending.done():
            # the send ends before the transport does: asyncio's transport fails
            # (InvalidStateError, logged) when it is closed under a sendfile
            sending.cancel()
            await asyncio.wait((sending,))
    if stalled:
        flow.abort()
        raise flow.gone("the client stopped reading")
    if sending.cancelled():
        raise flow.gone()
    sending.result()
