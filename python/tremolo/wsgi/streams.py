"""wsgi.input and wsgi.file_wrapper."""

from __future__ import annotations

from collections import deque
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
    given the request comes first (`buffered`, in pieces); the rest, if `receive` is
    given, is read as the application asks for it: receive(want) gives the pieces
    that came (at least `want` bytes unless the body ends; none at its end).

    The pieces are kept as they came, with a read position in the first: a read is
    one copy of what it returns (a slice, or the parts it spans joined), or none when
    it is one whole piece. (A bytearray the pieces were added to cost a second copy
    of every byte, and one that took the front of it shifted all the rest.)"""

    def __init__(self, buffered: list[bytes], receive: Callable[[int], list[bytes]] | None
                 ) -> None:
        self._receive = receive
        self._pieces: deque[bytes] = deque(piece for piece in buffered if piece)
        self._pos = 0  # in the first piece
        self._left = sum(map(len, self._pieces))
        self._eof = receive is None

    def _fill(self, want: int = 1) -> bool:
        """Reads more of the body (at least `want` bytes unless it ends)."""
        if self._receive is None or self._eof:
            return False
        pieces = self._receive(want)
        if not pieces:
            self._eof = True
            return False
        self._pieces.extend(pieces)
        self._left += sum(map(len, pieces))
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill(1 << 30):
                pass
            size = self._left
        while self._left < size and self._fill(size - self._left):
            pass
        return self._take(size)

    def _take(self, size: int) -> bytes:
        """The next `size` bytes (fewer at the end)."""
        size = min(size, self._left)
        if not size:
            return b""
        pieces, pos = self._pieces, self._pos
        first = pieces[0]
        end = pos + size
        if end <= len(first):
            out = first if pos == 0 and end == len(first) else first[pos:end]
            if end == len(first):
                pieces.popleft()
                end = 0
            self._pos = end
        else:
            parts: list[bytes | memoryview] = [memoryview(first)[pos:]]
            got = len(first) - pos
            pieces.popleft()
            while got < size:
                piece = pieces[0]
                if got + len(piece) <= size:
                    parts.append(piece)
                    got += len(piece)
                    pieces.popleft()
                    self._pos = 0
                else:
                    self._pos = size - got
                    parts.append(memoryview(piece)[:self._pos])
                    got = size
            out = b"".join(parts)
        self._left -= size
        return out

    def _newline(self, skip: int) -> int:
        """Where the next newline is from the read position, past the first `skip`
        bytes (searched already); -1 if none is in what is here."""
        seen = 0
        for i, piece in enumerate(self._pieces):
            start = self._pos if i == 0 else 0
            size = len(piece) - start
            if seen + size > skip:
                at = piece.find(b"\n", start + max(skip - seen, 0))
                if at >= 0:
                    return seen + at - start
            seen += size
        return -1

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None or size < 0 else size
        searched = 0
        while True:
            at = self._newline(searched)
            if at >= 0:
                cut = at + 1
                break
            searched = self._left
            if 0 <= limit <= self._left or not self._fill():
                cut = self._left
                break
        if limit >= 0:
            cut = min(cut, limit)
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
