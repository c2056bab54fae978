"""wsgi.input and wsgi.file_wrapper."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


class FileWrapper:
    """wsgi.file_wrapper: a file the server sends with its sendfile machinery."""

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> Iterator[bytes]:
        while data := self.filelike.read(self.blksize):
            yield data

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class InputStream:
    """wsgi.input: the request body. What the loop read before the application was
    given the request comes first (`buffered`); the rest, if `receive` is given, is
    read from the loop as the application asks for it: receive(want) gives the
    pieces that came (at least `want` bytes unless the body ends; none at its end).

    What is read is taken from a buffer by a read position, which moves rather than
    the bytes behind it (a read that took the front of the buffer shifted all the
    rest: a quadratic cost for a long body read in pieces); a read of what one whole
    piece holds is that piece, with no copy."""

    def __init__(self, buffered: bytes, receive: Callable[[int], list[bytes]] | None
                 ) -> None:
        self._receive = receive
        self._buf = bytearray(buffered)
        self._pos = 0
        self._eof = receive is None

    def _fill(self, want: int = 1) -> bool:
        """Reads more of the body (at least `want` bytes unless it ends)."""
        if self._receive is None or self._eof:
            return False
        pieces = self._receive(want)
        if not pieces:
            self._eof = True
            return False
        buf = self._buf
        if self._pos and self._pos * 2 >= len(buf):
            del buf[:self._pos]  # (what was read goes once it is the larger part)
            self._pos = 0
        for data in pieces:
            buf += data
        return True

    def _left(self) -> int:
        return len(self._buf) - self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill(1 << 30):
                pass
            size = self._left()
        elif size and not self._left() and not self._eof and self._receive is not None:
            pieces = self._receive(size)
            if not pieces:
                self._eof = True
                return b""
            if len(pieces) == 1 and len(pieces[0]) == size:
                return pieces[0]  # the usual read of a long body: no copy
            for data in pieces:
                self._buf += data
        while self._left() < size and self._fill(size - self._left()):
            pass
        return self._take(size)

    def _take(self, size: int) -> bytes:
        buf, pos = self._buf, self._pos
        end = min(pos + size, len(buf))
        out = bytes(memoryview(buf)[pos:end])
        if end == len(buf):
            buf.clear()
            self._pos = 0
        else:
            self._pos = end
        return out

    def readline(self, size: int | None = -1) -> bytes:
        while True:
            end = self._buf.find(b"\n", self._pos)
            if end >= 0 or (size is not None and 0 <= size <= self._left()):
                break
            if not self._fill():
                break
        cut = self._left() if end < 0 else end + 1 - self._pos
        if size is not None and size >= 0:
            cut = min(cut, size)
        return self._take(cut)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines, total = [], 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line
