"""Streaming multipart/form-data (RFC 7578): parts arrive one by one, and each part's
data in pieces, so an upload is never held in memory whole.

Bounded: a part's header block (max_header_size) and the piece of a part held at once
(max_piece, the original's `max_file_size`: a larger part comes in several pieces); the
number of parts by the body's size, and by each call of `request.files(max_files)`. A
malformed or truncated body is a 400. A delimiter is one at the start of a line (RFC
2046 §5.1.1): text before the first one without a line break is part of the preamble.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..exceptions import BadRequest

Receive = Callable[[], Awaitable[bytes]]


def boundary_of(content_type: bytes) -> bytes:
    """The boundary parameter of a multipart Content-Type; BadRequest without one."""
    for param in content_type.split(b";")[1:]:
        key, _, value = param.strip().partition(b"=")
        if key.strip().lower() == b"boundary":
            value = value.strip()
            if len(value) > 1 and value[:1] == value[-1:] == b'"':
                value = value[1:-1]
            if 1 <= len(value) <= 70:
                return value
    raise BadRequest("missing boundary")  # the original's words


def parse_params(value: bytes) -> tuple[bytes, dict[str, str]]:
    """`form-data; name="a"; filename="b.txt"` -> (b'form-data', {...})."""
    head, *rest = value.split(b";")
    params = {}
    for item in rest:
        key, sep, val = item.strip().partition(b"=")
        if not sep:
            continue
        val = val.strip()
        if len(val) > 1 and val[:1] == val[-1:] == b'"':
            val = val[1:-1].replace(b'\\"', b'"')
        params[key.strip().lower().decode("latin-1")] = val.decode("utf-8", "replace")
    return head.strip().lower(), params


class Part(dict[str, Any]):
    """One part, as the original's: a dict of its Content-Disposition parameters
    (`name`, `filename` for a file), `type` (only when the part has a Content-Type),
    and the piece of data at hand, `data`, with `eof` true when it is the last piece.
    Also `part.name`, `part.filename` (None for a plain field), `part.type` (None
    without a Content-Type), `part.headers`, and the rest of the data through
    `stream()` or `read()`."""

    def __init__(self, reader: MultipartReader, headers: dict[bytes, bytes]) -> None:
        _, params = parse_params(headers.get(b"content-disposition", b""))
        super().__init__(params)
        self.setdefault("name", "")
        if b"content-type" in headers:
            self["type"] = headers[b"content-type"].decode("latin-1")
        self["eof"] = False
        self._reader = reader
        self.headers = headers
        self.done = False  # the reader is past this part's last byte

    @property
    def name(self) -> str:
        return self["name"]  # type: ignore[no-any-return]

    @property
    def filename(self) -> str | None:
        return self.get("filename")

    @property
    def type(self) -> str | None:
        return self.get("type")

    @property
    def eof(self) -> bool:
        return self["eof"]  # type: ignore[no-any-return]

    @property
    def data(self) -> bytes:
        return self.get("data", b"")  # type: ignore[no-any-return]

    async def load(self) -> None:
        """Reads the next piece into `data`: up to max_piece bytes, fewer only at
        the part's end (so a part no larger than that arrives whole)."""
        limit = self._reader.max_piece
        pieces = []
        size = 0
        while size < limit and not self.done:
            piece = await self._reader.part_data(self, limit - size)
            pieces.append(piece)
            size += len(piece)
        self["data"] = b"".join(pieces)
        self["eof"] = self.done

    async def stream(self) -> AsyncIterator[bytes]:
        """The data from the piece at hand to the end, each piece as it arrives
        (at most max_piece bytes)."""
        data = self.pop("data", b"")
        if data:
            yield data
        while not self.done:
            data = await self._reader.part_data(self, self._reader.max_piece)
            self["eof"] = self.done
            if data:
                yield data

    async def read(self) -> bytes:
        return b"".join([data async for data in self.stream()])


class MultipartReader:
    def __init__(self, receive: Receive, boundary: bytes, *, max_piece: int = 100 << 20,
                 max_header_size: int = 8192) -> None:
        self.receive = receive
        self.delimiter = b"\r\n--" + boundary
        self.buf = bytearray(b"\r\n")  # the first boundary has no CRLF before it
        self.max_piece = max(max_piece, 1)
        self.max_header_size = max_header_size
        self.eof = False
        self.finished = False
        self.part: Part | None = None

    async def _fill(self) -> None:
        data = await self.receive()
        if not data:
            self.eof = True
            raise BadRequest("multipart body ended too soon")
        self.buf += data

    async def _skip_preamble(self) -> None:
        while True:
            at = self.buf.find(self.delimiter)
            if at >= 0:
                del self.buf[:at + len(self.delimiter)]
                return
            # keep what could be the start of the delimiter
            keep = len(self.delimiter) - 1
            if len(self.buf) > keep:
                del self.buf[:-keep]
            await self._fill()

    async def _after_delimiter(self) -> bool:
        """After a delimiter: True if a part follows, False at the closing one."""
        while len(self.buf) < 2:
            await self._fill()
        if self.buf[:2] == b"--":
            self.finished = True
            return False
        # transport padding (spaces, tabs) may come before the CRLF
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                if self.buf[:end].strip(b" \t"):
                    raise BadRequest("malformed multipart delimiter")
                del self.buf[:end + 2]
                return True
            if len(self.buf) > 256:
                raise BadRequest("malformed multipart delimiter")
            await self._fill()

    async def _headers(self) -> dict[bytes, bytes]:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0 or self.buf.startswith(b"\r\n"):
                break
            if len(self.buf) > self.max_header_size:
                raise BadRequest("multipart part headers too large")
            await self._fill()
        if self.buf.startswith(b"\r\n"):
            end, block = 0, b""
        else:
            block = bytes(self.buf[:end])
        if end > self.max_header_size:
            raise BadRequest("multipart part headers too large")
        del self.buf[:end + (2 if end == 0 else 4)]
        headers: dict[bytes, bytes] = {}
        for line in block.split(b"\r\n") if block else ():
            name, sep, value = line.partition(b":")
            if not sep or not name.strip():
                raise BadRequest("malformed multipart part header")
            headers[name.strip().lower()] = value.strip()
        return headers

    async def next_part(self) -> Part | None:
        if self.finished:
            return None
        if self.part is not None:
            while not self.part.done:  # the unread rest of the previous part
                await self.part_data(self.part)
        else:
            await self._skip_preamble()
        if not await self._after_delimiter():
            return None
        self.part = Part(self, await self._headers())
        return self.part

    async def part_data(self, part: Part, limit: int = 1 << 62) -> bytes:
        """The next piece of `part`'s data, at most `limit` bytes; b"" once it
        ended."""
        if part is not self.part or part.done:
            return b""
        while True:
            at = self.buf.find(self.delimiter)
            if at > limit:
                at = -1  # the delimiter is further than this piece reaches
            elif at >= 0:
                data = bytes(self.buf[:at])
                del self.buf[:at + len(self.delimiter)]
                part.done = True
                return data
            # keep what could be the start of the delimiter
            size = min(len(self.buf) - (len(self.delimiter) - 1), limit)
            if size > 0:
                data = bytes(self.buf[:size])
                del self.buf[:size]
                return data
            await self._fill()
