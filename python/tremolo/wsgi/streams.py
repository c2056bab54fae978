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
    read from the loop as the application asks for it."""

    def __init__(self, buffered: bytes, receive: Callable[[], bytes] | None) -> None:
        self._receive = receive
        self._buf = bytearray(buffered)
        self._eof = receive is None

    def _fill(self) -> bool:
        if self._receive is None or self._eof:
            return False
        data = self._receive()
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            size = len(self._buf)
        while len(self._buf) < size and self._fill():
            pass
        return self._take(size)

    def _take(self, size: int) -> bytes:
        buf = self._buf
        if size >= len(buf):
            out = bytes(buf)
            buf.clear()
            return out
        out = bytes(memoryview(buf)[:size])
        del buf[:size]
        return out

    def readline(self, size: int | None = -1) -> bytes:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0 or (size is not None and 0 <= size <= len(self._buf)):
                break
            if not self._fill():
                break
        cut = len(self._buf) if end < 0 else end + 1
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
