"""The rest of a request body read by the application's own thread, from the socket
(WSGI's: the reads of the connection lent to it).

A body longer than what the loop reads before the request is handed over
(wsgi_input_buffer) would otherwise come to the thread piece by piece through the
loop: each piece read by the loop, queued, and the thread woken for it, two threads
taking turns on the GIL and on the CPU for every 64 KiB. When the body has a
Content-Length and the connection is plain TCP without an upload speed limit, the
loop instead stops reading the connection and lends its reads to the thread, which
reads what the application asks for with `recv` on its own descriptor of the
socket, the GIL let go while it waits, as a synchronous server does: one copy of
each byte (the kernel's), no hand-off. Reading only what is left of the body, it
never reads into the next request. The same clocks hold: each wait lasts what the
loop's would (request_timeout, less when the client is behind body_min_rate).

The loop takes the reads back once the thread is done with the request (`give_back`:
the parser counts what the thread read, and reading resumes). The descriptor is
closed as soon as it is of no more use (the body read, a read failed, the request
given back or cut off), by whichever thread gets there, under a lock, and never
while a read is in progress on it: the loop shuts its reading side down instead to
end such a read (`cut`: the connection was lost, the request given up, or a thread
the application handed wsgi.input to still reads when the request is done), and
the connection then ends with this request. A client that ends its side before the
body is answered 400, whatever the application makes of it, as a late body's 408.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from time import monotonic
from typing import TYPE_CHECKING, Protocol

from ..exceptions import BadRequest, HTTPException, RequestTimeout
from .exchange import Exchange
from .flow import RELEASE_AFTER, ClientDisconnected, release_memory_soon

if TYPE_CHECKING:
    from .http import HTTPProtocol

#: the most a read asks the socket for at once when the application asks for less
#: (a readline() asks for a byte): what one read costs stays small beside its bytes
PIECE = 64 << 10
#: and the most when it asks for more (read() of a large body): what one read holds
MOST = 1 << 20
#: the answer's words when the client ends its side before the body
ENDED_EARLY = "client closed before the body ended"


class Borrower(Protocol):
    """The request a thread runs, as the lent reads see it (WSGI's cycle): given up
    (`cancelled`), and where the reads' own failure goes (`input_error`: it is the
    answer, not the application's)."""

    cancelled: bool
    input_error: HTTPException | None


def lend(cycle: Borrower, ex: Exchange) -> LentBody | None:
    """The reads of the rest of `ex`'s body, lent to the thread that will run
    `cycle`, when they may be (a Content-Length body still coming, on plain TCP,
    without an upload speed limit, nothing queued behind it, a descriptor to spare);
    None when not: the loop reads it for the thread then."""
    p: HTTPProtocol = ex.protocol
    info, t = p.info, p.transport
    if p.closed or p.upload_rate or info is None or info.secure or p.pending \
            or p.reading is not ex or p.reads_lent is not None or t is None \
            or ex._ended or ex._error is not None:
        return None
    left: int | None = p.parser.body_left
    own = t.get_extra_info("socket")
    if not left or own is None or own.fileno() < 0:
        return None
    try:
        sock = socket.socket(fileno=os.dup(own.fileno()))
    except OSError:
        return None  # (out of descriptors: the loop's way needs none)
    ex.send_continue()  # (a client may wait for it: the read ahead may have read nothing)
    return LentBody(cycle, ex, left, sock)


class LentBody:
    """The reads of one request body, lent to the application's thread (see lend)."""

    def __init__(self, cycle: Borrower, ex: Exchange, left: int, sock: socket.socket
                 ) -> None:
        self.cycle = cycle
        self.ex = ex
        self.left = left  # of the body, in the socket
        self.read = 0  # by the thread
        self.sock = sock
        self._timeout = -1.0
        self._lock = threading.Lock()
        self._busy = False  # a thread is in a read
        self._cut = False
        p: HTTPProtocol = ex.protocol
        p.reads_lent = self
        p.update_reading()  # (paused while lent)

    # -- in the application's thread ----------------------------------------

    def receive(self, want: int) -> list[bytes]:
        """At least `want` bytes of the body (fewer at its end; none there), read
        from the socket as they come: wsgi.input's source."""
        pieces: list[bytes] = []
        got = 0
        try:
            while self.left and got < want:
                data = self._recv(min(self.left, max(want - got, PIECE), MOST))
                pieces.append(data)
                got += len(data)
                self.left -= len(data)
        except BaseException:
            self._close()  # (the request fails: nothing more is read)
            raise
        finally:
            self.read += got
            self.ex._received += got
        if not self.left:
            self._close()  # all read: of no more use
        return pieces

    def _recv(self, size: int) -> bytes:
        ex = self.ex
        timeout, what = ex._body_wait()
        with self._lock:
            if self._cut or self.sock.fileno() < 0 or self.cycle.cancelled:
                raise ClientDisconnected("the request was given up")
            self._busy = True
        start = monotonic()
        try:
            if timeout != self._timeout:
                # (0 makes the socket non-blocking, which it is anyway: never
                # blocking mode, which the descriptor shares with the loop's)
                self.sock.settimeout(timeout)
                self._timeout = timeout
            data = self.sock.recv(size)
        except (TimeoutError, BlockingIOError):
            ex.protocol.state.logger.info("timed out waiting for %s", what)
            timed_out = self.cycle.input_error = RequestTimeout(0, "recv timeout")
            raise timed_out from None
        except OSError as exc:
            raise ClientDisconnected(f"the connection failed: {exc}") from None
        finally:
            ex._waited += monotonic() - start
            with self._lock:
                self._busy = False
        if not data:
            if self._cut:
                raise ClientDisconnected("the request was given up")
            # the client ended its side before the body: that is the answer (400),
            # not the application's failure (500)
            ended = self.cycle.input_error = BadRequest(ENDED_EARLY)
            raise ended
        return data

    def _close(self) -> None:
        with self._lock:
            self.sock.close()

    # -- on the loop ---------------------------------------------------------

    def give_back(self) -> None:
        """The thread is done with the request: what it read is counted as parsed
        (the body's end, if it read that far) and the loop reads the connection
        again. Unless another thread the application gave wsgi.input to still
        reads it: then the connection ends with this request (two readers of one
        socket could each take a part of what follows)."""
        with self._lock:  # (checked and closed at once: no read starts between)
            reading = self._busy
            if not reading:
                self.sock.close()
        if reading:
            self.cut()
            return
        p: HTTPProtocol = self.ex.protocol
        if p.reads_lent is not self:
            return
        p.reads_lent = None
        counters = p.state.counters
        if counters is not None:
            counters.bytes_in += self.read
        if self.ex._received >= RELEASE_AFTER:
            # the threads' reads leave the heap fragmented (pieces freed in another
            # order than they came, by several threads): glibc keeps it all mapped
            # until it is told (a MiB upload at a time on 16 connections kept 23
            # MiB of free heap, a worker of 35 MiB at 57)
            release_memory_soon(p.loop, collect=False)
        if p.closed:
            return
        events = p.parser.skip_body(self.read)
        if events:
            p._queue_events(events)
        p.update_reading()

    def cut(self) -> None:
        """The connection was lost, or the request given up while the thread may
        still read: its read ends at once (the socket's reading side is shut down)
        and the connection is not used again."""
        self.ex.keep_alive = False
        with self._lock:
            self._cut = True
            if not self._busy:
                self.sock.close()
                return
            with contextlib.suppress(OSError):  # (not connected any more)
                self.sock.shutdown(socket.SHUT_RD)  # (the thread closes it then)

