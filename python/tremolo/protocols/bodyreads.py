"""Reading a long request body from the socket in pieces of a bounded size.

uvloop reads up to 256 KiB at a time, and each read becomes one bytes object. A
handler streaming an upload holds the piece it works on while the next read waits
for it, so each upload held two such reads (half a MiB), whatever buffer_size said.
While a body longer than one piece is read, the connection's transport is given a
`BodyReads` instead (asyncio's buffered protocol): it reads into one buffer the worker
shares and hands each read on, copied out as uvloop would have, so no piece is larger
than the buffer. The first read after that body goes back to the usual protocol
(reads of any size are the faster way for requests that fit in one).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .http import HTTPProtocol

#: the smallest piece a body is read in, whatever buffer_size says: below it the cost
#: of each piece (a read, a wake-up of the handler) outweighs the memory it saves
MIN_PIECE = 64 << 10


def piece_size(buffer_size: int) -> int:
    """The size of the pieces a long body is read in."""
    return max(buffer_size, MIN_PIECE)


class BodyReads(asyncio.BufferedProtocol):
    """The transport's protocol while a long body is read; everything but the reads
    goes to the connection's own protocol."""

    __slots__ = ("protocol", "view")

    def __init__(self, protocol: HTTPProtocol, view: memoryview) -> None:
        self.protocol = protocol
        self.view = view

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        data = self.view[:nbytes].tobytes()  # the buffer is shared: copied out first
        p = self.protocol
        if p.reading is None and p.transport is not None:
            p.transport.set_protocol(p)  # that body is over
        p.data_received(data)

    def eof_received(self) -> bool | None:
        return self.protocol.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()
