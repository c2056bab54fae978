"""The request object handlers receive: lazy views of the parsed head, and the body."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote_to_bytes

from .. import _core
from ..exceptions import BadRequest, PayloadTooLarge, RequestTimeout
from .context import Context
from .multipart import MultipartReader, Part, boundary_of
from .protocol_view import ConnectionView

#: the most fields a query string may have (more is a 400)
MAX_QUERY_FIELDS = 100

if TYPE_CHECKING:
    from ..protocols import Exchange

DEFAULT_CONTENT_TYPE = b"application/octet-stream"


# the largest piece recv() and stream() give at once
MAX_PIECE = 1 << 20


class RecvTimeout(RequestTimeout, TimeoutError):
    """The body did not come in time: a TimeoutError, as the original's `recv
    timeout`, and a 408 when the handler lets it through."""

    def __init__(self, *args: Any, cause: BaseException | None = None, **kwargs: Any) -> None:
        super().__init__(*args, cause=cause, **kwargs)
        # TimeoutError keeps the arguments its constructor got, and it got none
        if args:
            self.args = args
        elif isinstance(cause, Exception) and cause is not self:
            self.args = cause.args


class FormTooLarge(PayloadTooLarge, ValueError):
    """A form past form(max_size): a ValueError, as the original's, answered 413 (a
    body too large is the client's, RFC 9110 §15.5.14; the original answers 500)."""


class Headers(dict[bytes, list[bytes]]):
    """Request fields: lowercase name -> list of values, in the order received."""

    def __init__(self, pairs: list[tuple[bytes, bytes]]) -> None:
        super().__init__()
        for name, value in pairs:
            if name in self:
                self[name].append(value)
            else:
                self[name] = [value]

    def getlist(self, name: bytes | str, separator: bytes = b",") -> list[bytes]:
        """Every value of a field, lists split on `separator` and trimmed."""
        key = name.lower().encode("latin-1") if isinstance(name, str) else name.lower()
        out: list[bytes] = []
        for value in self.get(key, ()):
            out.extend(item.strip() for item in value.split(separator) if item.strip())
        return out


def parse_cookies(values: list[bytes]) -> dict[str, list[str]]:
    cookies: dict[str, list[str]] = {}
    for value in values:
        for part in value.split(b";"):
            name, sep, val = part.strip().partition(b"=")
            if sep and name:
                val = val.strip()
                if len(val) > 1 and val[:1] == val[-1:] == b'"':
                    val = val[1:-1]
                # values are percent-decoded, as the original and set_cookie() encode
                cookies.setdefault(name.decode("latin-1"), []).append(
                    unquote_to_bytes(val).decode("utf-8", "replace"))
    return cookies


class Request(_core.RequestCore):
    """An HTTP request. Names are bytes as received; `query`, `cookies` and the
    parsed body are dicts of str, as in the original Tremolo. Made as
    `Request(exchange)`: its core (rust/src/py/native.rs) holds the exchange."""

    if TYPE_CHECKING:
        exchange: Exchange

    # What a request starts with, as class attributes: most handlers read none of
    # them.
    _path: bytes | None = None
    _query_string = b""
    _headers: Headers | None = None
    #: read(n) leftovers, served before the stream
    _buf: bytearray | None = None
    #: the route's options, copied into ctx when read
    _options: dict[str, Any] | None = None
    _ctx: Context | None = None
    _params: Context | None = None
    #: set by files() only
    _multipart: MultipartReader

    @property
    def ctx(self) -> Context:
        """Per-request storage; `ctx.options` holds the route's options."""
        if self._ctx is None:
            self._ctx = Context(options=Context(self._options or ()))
        return self._ctx

    @property
    def context(self) -> Context:
        """The same object as `ctx` (the original's name for it)."""
        return self.ctx

    @property
    def params(self) -> Context:
        """What was parsed out of the request: `path` (regex groups), `query`,
        `cookies`."""
        if self._params is None:
            self._params = Context()
        return self._params

    # -- the request line ----------------------------------------------------

    @property
    def method(self) -> bytes:
        return self.exchange.method

    @property
    def url(self) -> bytes:
        return self.exchange.head.target

    def _split(self) -> bytes:
        path, _, self._query_string = self.url.partition(b"?")
        self._path = path
        return path

    @property
    def path(self) -> bytes:
        return self._path if self._path is not None else self._split()

    @property
    def query_string(self) -> bytes:
        if self._path is None:
            self._split()
        return self._query_string

    @property
    def version(self) -> bytes:
        return b"1.0" if self.exchange.http10 else b"1.1"

    @property
    def query(self) -> dict[str, list[str]]:
        if "query" not in self.params:
            qs = self.query_string.decode("latin-1")
            try:
                self.params["query"] = parse_qs(qs, max_num_fields=MAX_QUERY_FIELDS) \
                    if qs else {}
            except ValueError as exc:  # the client sent too many: its error, not ours
                raise BadRequest(f"more than {MAX_QUERY_FIELDS} query fields") from exc
        return self.params["query"]  # type: ignore[no-any-return]

    # -- fields --------------------------------------------------------------

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self.exchange.head.headers)
        return self._headers

    @property
    def host(self) -> bytes:
        """Host, or what a trusted proxy says it was (X-Forwarded-Host, Forwarded)."""
        forwarded = self._forwarded()[2]
        if forwarded is not None:
            return forwarded.encode("latin-1")
        return self.exchange.head.get(b"host") or b""

    @property
    def content_type(self) -> bytes:
        return self.exchange.head.get(b"content-type") or DEFAULT_CONTENT_TYPE

    @property
    def content_length(self) -> int:
        """The declared body length; -1 when the body is chunked."""
        n = self.exchange.head.content_length
        return -1 if n is None else n

    @property
    def has_body(self) -> bool:
        return self.exchange.head.has_body

    @property
    def cookies(self) -> dict[str, list[str]]:
        if "cookies" not in self.params:
            self.params["cookies"] = parse_cookies(self.headers.get(b"cookie", []))
        return self.params["cookies"]  # type: ignore[no-any-return]

    # -- the connection ------------------------------------------------------

    @property
    def transport(self) -> Any:
        return self.exchange.connection.transport

    @property
    def socket(self) -> Any:
        t = self.transport
        return t.get_extra_info("socket") if t is not None else None

    @property
    def client(self) -> tuple[str, int] | None:
        """The peer address (host, port); None on a UNIX socket."""
        return self.exchange.connection.peer

    @property
    def protocol(self) -> ConnectionView:
        """The connection as the original's protocol object gives it to programs:
        `options` (the listener's, by the original's names; a write is this
        connection's), `create_task(coro)` (cancelled when the connection closes),
        `context`, `globals`, `loop`, `transport`, `close()`."""
        context = self.exchange.connection.context
        view = context.get("protocol")
        if view is None:
            view = context["protocol"] = ConnectionView(self.exchange.connection)
        return view

    @property
    def is_valid(self) -> bool:
        """Always True: a request the parser finds malformed is answered 400 before
        any application code runs (the original lets it through with False)."""
        return True

    @property
    def is_secure(self) -> bool:
        info = self.exchange.info
        return info is not None and info.secure

    def _forwarded(self) -> tuple[tuple[str, int] | None, str, str | None]:
        """(client, scheme, host): the connection's, or a trusted proxy's word."""
        if "forwarded" not in self.ctx:
            info = self.exchange.info
            self.ctx["forwarded"] = info.forwarded(self.exchange.head) if info is not None \
                else (None, "http", None)
        return self.ctx["forwarded"]  # type: ignore[no-any-return]

    @property
    def ip(self) -> bytes:
        """The client's address: when the peer is a trusted proxy (trusted_proxies,
        loopback by default), the rightmost address of Forwarded (or
        X-Forwarded-For) that is not a trusted proxy; else the peer."""
        client = self._forwarded()[0]
        return client[0].encode() if client else b""

    @property
    def scheme(self) -> bytes:
        return self._forwarded()[1].encode()

    def uid(self, length: int = 32) -> bytes:
        """A unique id: time, port and pid, then random bytes."""
        client = self.client
        port = client[1] if client else 0
        prefix = (int(time.time()).to_bytes(4, "big")
                  + ((port << 16) | (os.getpid() & 0xFFFF)).to_bytes(4, "big"))[:length]
        return prefix + os.urandom(max(0, length - len(prefix)))

    # -- the body ------------------------------------------------------------

    async def recv(self, size: int = -1, *, timeout: float | None = None) -> bytes:
        """The next piece of body as it arrives: what one read of the socket gave
        (at most MAX_PIECE bytes; the data is in memory already, and cutting it
        smaller only costs copies); b"" at the end. With a `size`, that many bytes,
        as read(size). The wait for the body is request_timeout (and body_min_rate),
        or `timeout` seconds; past it a RecvTimeout (a TimeoutError, 408 unhandled).
        A request without a body (a GET) has none to wait for: b"" at once (RFC 9112
        §6.3; the original waits out its timeout)."""
        if timeout is not None:
            return await _timed(self.recv(size), timeout)
        if size >= 0:
            return await self.read(size)
        buf = self._buf
        if not buf:
            try:
                data = await self.exchange.receive()
            except RequestTimeout as exc:
                raise RecvTimeout(0, "recv timeout") from exc
            if len(data) <= MAX_PIECE:
                return data
            buf = self._buf = bytearray(data)
        data = bytes(buf[:MAX_PIECE])
        del buf[:MAX_PIECE]
        return data

    async def stream(self) -> AsyncIterator[bytes]:
        """The body, piece by piece, as it arrives."""
        while data := await self.recv():
            yield data

    async def read(self, size: int = -1, *, timeout: float | None = None) -> bytes:
        """`size` bytes (fewer only at the end of the body); with no size, the next
        piece as it arrives. Mixed with stream() or body(), no byte is lost."""
        if timeout is not None:
            return await _timed(self.read(size), timeout)
        if size < 0:
            return await self.recv()
        buf = self._buf
        if buf is None:
            buf = self._buf = bytearray()
        while len(buf) < size:
            try:
                data = await self.exchange.receive()
            except RequestTimeout as exc:
                raise RecvTimeout(0, "recv timeout") from exc
            if not data:
                break
            buf += data
        out = bytes(buf[:size])
        del buf[:size]
        return out

    async def body(self) -> bytes:
        """The whole body (bounded by client_max_body_size)."""
        if "body" not in self.ctx:
            self.ctx["body"] = b"".join([piece async for piece in self.stream()])
        return self.ctx["body"]  # type: ignore[no-any-return]

    async def json(self) -> Any:
        try:
            return json.loads(await self.body())
        except ValueError as exc:
            raise BadRequest("the body is not valid JSON") from exc

    async def form(self, max_fields: int = 100, *, max_size: int = 8 << 20
                   ) -> dict[str, list[str]]:
        """The fields of an urlencoded or multipart body: `{'name': ['value']}`, kept
        in `params.post`; the file parts of a multipart body go to `params.files`
        (`{'name': [{'filename', 'type', 'data'}]}`); files() afterwards has nothing
        left to give. As in the original: another Content-Type is a 400 `invalid
        Content-Type`; `max_size` bounds an urlencoded body, and each part of a
        multipart one (a FormTooLarge, a ValueError, past it: 413); past `max_fields`
        urlencoded fields is a 400, and multipart parts past it are left unread."""
        if "post" in self.params:
            return self.params["post"]  # type: ignore[no-any-return]
        kind = self.content_type.split(b";")[0].strip().lower()
        fields: dict[str, list[str]] = {}
        uploads: dict[str, list[dict[str, Any]]] = {}
        if kind == b"application/x-www-form-urlencoded":
            data = bytearray()
            async for piece in self.stream():
                data += piece
                if len(data) > max_size:
                    raise FormTooLarge("form size limit reached")
            try:
                fields = parse_qs(data.decode("latin-1"), max_num_fields=max_fields)
            except ValueError as exc:
                raise BadRequest(f"more than {max_fields} form fields") from exc
        elif kind == b"multipart/form-data":
            self.params["files"] = uploads
            async for part in self.files(max_fields, max_file_size=max_size):
                if not part.eof:
                    raise FormTooLarge("fragmented file. consider increasing the max_size "
                                       "limit or stream using request.files()")
                if part.filename is None:
                    fields.setdefault(part.name, []).append(
                        part.data.decode("utf-8", "replace"))
                elif part.filename:  # an empty file input sends an empty filename
                    uploads.setdefault(part.name, []).append(
                        {k: v for k, v in part.items() if k not in ("name", "eof")})
        else:
            raise BadRequest("invalid Content-Type")
        self.params["files"] = uploads
        self.params["post"] = fields
        return fields

    async def files(self, max_files: int = 1024, *, max_file_size: int = 100 << 20
                    ) -> AsyncIterator[Part]:
        """The parts of a multipart body, one at a time, as the original: each comes
        with its first `data` piece of up to `max_file_size` bytes (the whole part
        when it is no larger) and `eof`; a larger part comes again with its next
        piece, until `eof`. `part.stream()` gives the data from the piece at hand to
        the end instead. The next part skips what is left of an unread one. After
        `max_files` parts it stops; a later files() goes on with the next part."""
        if "post" in self.params or not self.has_body:
            return  # form() read the body already: its parts are in params.files
        reader: MultipartReader | None = getattr(self, "_multipart", None)
        if reader is None:
            reader = self._multipart = MultipartReader(self.recv,
                                                       boundary_of(self.content_type))
        reader.max_piece = max(max_file_size, 1)
        while max_files > 0 and (part := await reader.next_part()) is not None:
            while True:
                await part.load()
                yield part
                if part.done:
                    break
            max_files -= 1


async def _timed(read: Awaitable[bytes], timeout: float) -> bytes:
    """A read of the body that waits at most `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            return await read
    except TimeoutError as exc:
        if isinstance(exc, RecvTimeout):
            raise
        raise RecvTimeout(0, "recv timeout") from exc
