"""Flow control of one connection, both directions, shared by HTTP and WebSocket.

Reading pauses while the protocol holds more than it should (`hold(True)`: requests
queued, body or messages not consumed, an upload over its speed limit) and also while
the client does not read what is written to it (the transport's write buffer is above
its high-water mark). Without the second rule a client that pipelines requests and
never reads the answers would grow the server without bound. Writers wait in
`drain()` while the client is not reading; a client that reads nothing for `timeout`
seconds is dropped. The object outlives a protocol takeover: after a 101 the
WebSocket protocol goes on with the same one.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import socket
import sys
import termios
from typing import TYPE_CHECKING, Any

from .. import _core
from ..exceptions import ClientDisconnected as ClientDisconnected  # (its old home)
from ..exceptions import RequestTimeout

if TYPE_CHECKING:
    from .counters import Counters


#: an abort that drops at least this much of a write buffer returns freed memory,
#: at most once a RELEASE_INTERVAL (a full collection costs milliseconds)
RELEASE_AFTER = 1 << 20
RELEASE_INTERVAL = 1.0
#: how much a gentle close (an answer, then the server's FIN, then reading on until
#: the client's) reads and drops at most, and for how long
LINGER_BYTES = 1 << 20
LINGER_SECONDS = 2.0


def time_out(waiter: asyncio.Future[None]) -> None:
    """A timer's callback: fails `waiter` with RequestTimeout, worded as the
    original's body timeout ('0: recv timeout', the answer when nothing catches it)."""
    if not waiter.done():
        waiter.set_exception(RequestTimeout(0, "recv timeout"))


class Flow(_core.FlowCore):
    """The transport of one connection, with both directions' flow control. What
    every request reads (`transport`, `closed`, `read_paused`, `write_paused`,
    `counters`) is FlowCore's (rust/src/py/connection.rs)."""

    if TYPE_CHECKING:
        transport: asyncio.Transport | None
        counters: Counters | None
    #: how far the client had read when the sweeper last looked, and since when it
    #: has read nothing (see write_stalled); None while nothing waits for it
    _mark: int | None = None
    _stalled_since = 0.0

    def __init__(self, loop: asyncio.AbstractEventLoop, buffer_size: int,
                 timeout: float) -> None:
        self.loop = loop
        self.buffer_size = buffer_size
        self.high = buffer_size * 4
        self.low = buffer_size // 2
        self.timeout = timeout
        self._waiters: list[asyncio.Future[None]] = []
        #: the protocol's own reason to stop reading (see `hold`)
        self.held = False
        #: a writer was told the client is gone (ClientDisconnected): its handler is
        #: unwinding, and a cancel now would land in its cleanup
        self.told = False

    def attach(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=self.high, low=self.low)

    # -- reading ---------------------------------------------------------------

    def hold(self, full: bool) -> None:
        """Says whether the protocol wants reading paused for its own reasons."""
        self.held = full
        self._update()

    def _update(self) -> None:
        t = self.transport
        if t is None or self.closed:
            return
        pause = self.held or self.write_paused
        if pause and not self.read_paused:
            self.read_paused = True
            t.pause_reading()
        elif not pause and self.read_paused:
            self.read_paused = False
            t.resume_reading()

    # -- writing ---------------------------------------------------------------

    # write(data): FlowCore's (unless closed; counted in counters.bytes_out)

    def writelines(self, *data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.writelines(data)
            if self.counters is not None:
                self.counters.bytes_out += sum(map(len, data))

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update()

    def resume_writing(self) -> None:
        self.write_paused = False
        for w in self._waiters:
            if not w.done():
                w.set_result(None)
        self._waiters.clear()
        self._update()

    async def drain(self) -> None:
        """Waits while the client is not reading. However slowly it reads, it may
        take its time; one that reads nothing for `timeout` seconds is dropped by the
        worker's sweeper (write_stalled), and the wait ends with ClientDisconnected."""
        if self.closed:
            raise self.gone()
        if self.write_paused:
            w = self.loop.create_future()
            self._waiters.append(w)
            await w

    async def drain_all(self) -> None:
        """Waits until the write buffer is empty (bounded like every drain), so that
        the socket can be written directly."""
        t = self.transport
        if t is None or not t.get_write_buffer_size():
            return
        t.set_write_buffer_limits(high=0, low=0)  # paused until the buffer is empty
        try:
            await self.drain()
        finally:
            if not self.closed:
                t.set_write_buffer_limits(high=self.high, low=self.low)

    def write_stalled(self, now: float) -> bool:
        """Called once a tick for every connection: True once its write buffer has
        held data while the client read nothing of what was written for `timeout`
        seconds, whether a writer waits in drain() or not, and whether the
        connection is closing or not (a closing transport waits for its buffer to
        empty). What the client read is what its TCP acknowledged (the kernel's
        count): the transport's buffer alone can stay as it is for many seconds
        while a client reads 50 KB/s (Linux grows a socket's send buffer to
        megabytes and takes more only once a third of it is free), and a buffer
        refilled between two looks (pipelined answers) hides a client that reads
        in bursts. Where the kernel does not count (a UNIX socket), what the
        transport and the kernel still hold must shrink."""
        t = self.transport
        size = t.get_write_buffer_size() if t is not None else 0
        if t is None or not size:
            self._mark = None
            return False
        sock = t.get_extra_info("socket")
        if sock is None:
            mark = -size
        else:
            acked = bytes_acked(sock)
            mark = acked if acked is not None else -(size + _kernel_queue(sock))
        if self._mark is None or mark > self._mark:
            self._stalled_since = now
        self._mark = mark
        return now - self._stalled_since > self.timeout

    # -- closing ---------------------------------------------------------------

    def end_writing(self) -> None:
        """Sends the server's FIN after what is buffered (where the transport can
        half-close; over TLS it cannot, and reading on until closing still helps)."""
        t = self.transport
        if t is None or self.closed:
            return
        try:
            if t.can_write_eof():
                t.write_eof()
        except (NotImplementedError, RuntimeError, OSError):
            pass

    def close(self) -> None:
        """Closes after what is buffered has been written."""
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        """Closes at once, dropping what is buffered."""
        t = self.transport
        if t is not None:
            self.closed = True
            if t.get_write_buffer_size() >= RELEASE_AFTER:
                release_memory_soon(self.loop)
            t.abort()

    def lost(self) -> bool:
        """The connection is gone: writers waiting in drain() learn it. Says whether
        one was waiting (it is told: ClientDisconnected)."""
        self.closed = True
        told = False
        for w in self._waiters:
            if not w.done():
                w.set_exception(self.gone())
                told = True
        self._waiters.clear()
        return told

    def gone(self, why: str = "client disconnected") -> ClientDisconnected:
        """What tells a writer that the client is gone (and notes that it was told)."""
        self.told = True
        return ClientDisconnected(why)


def _kernel_queue(sock: Any) -> int:
    """Bytes the kernel holds for the client, not yet acknowledged by it (SIOCOUTQ;
    0 where that cannot be asked)."""
    try:
        queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int.from_bytes(queued, sys.byteorder)


#: struct tcp_info (linux/tcp.h): where tcpi_bytes_acked is, and its size
_TCP_INFO = getattr(socket, "TCP_INFO", None)
_BYTES_ACKED = 120
_TCP_INFO_SIZE = 128


def bytes_acked(sock: Any) -> int | None:
    """How many bytes the client's TCP acknowledged (it acknowledges only what fits
    in its receive buffer: nothing more once its application stops reading);
    None where the kernel does not say (not TCP, not Linux, a kernel before 4.1)."""
    if _TCP_INFO is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_SIZE)
    except OSError:
        return None
    if len(info) < _TCP_INFO_SIZE:
        return None
    return int.from_bytes(info[_BYTES_ACKED:_BYTES_ACKED + 8], sys.byteorder)


def release_memory_soon(loop: asyncio.AbstractEventLoop, collect: bool = True) -> None:
    """Hands what dropped buffers held back to the system, soon and at most once a
    RELEASE_INTERVAL (every drop in between shares it). A collection first, unless
    no one asking wants it (`collect`): the frames of a handler cut off by a client
    that stopped reading still hold what it was writing, in reference cycles (an
    exception's traceback) that may have reached the oldest generation. Then
    glibc's malloc_trim (nothing elsewhere): after its first large free, glibc
    serves blocks of that size from heaps it does not shrink by itself, and a
    thread's own heap is never shrunk."""
    global _release_at, _release_collect
    _release_collect = _release_collect or collect
    now = loop.time()
    if _release_at < now:
        _release_at = max(now + 0.1, _release_at + RELEASE_INTERVAL)
        loop.call_at(_release_at, _release_memory)


def _release_memory() -> None:
    global _malloc_trim, _release_collect
    if _release_collect:
        _release_collect = False
        gc.collect()
    if _malloc_trim is None:
        import ctypes  # (only here: it is a third of a MiB of every worker)

        try:
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


#: when memory is next released (see release_memory_soon), and whether a
#: collection comes first then
_release_at = 0.0
_release_collect = False
_malloc_trim: Any = None
