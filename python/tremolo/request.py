"""The request object handlers receive: lazy views of the parsed head, and the body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .protocols.http import Exchange


class Headers(dict[bytes, bytes]):
    """Header fields by lowercase name; repeated fields are joined with ", "
    (RFC 9110 §5.3). `getlist` gives each value separately."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: list[tuple[bytes, bytes]]) -> None:
        super().__init__()
        self._pairs = pairs
        for name, value in pairs:
            if name in self:
                # Set-Cookie is never joined on a request, but Cookie may be repeated
                sep = b"; " if name == b"cookie" else b", "
                self[name] = self[name] + sep + value
            else:
                self[name] = value

    def getlist(self, name: bytes | str) -> list[bytes]:
        key = name.lower().encode("latin-1") if isinstance(name, str) else name.lower()
        return [v for n, v in self._pairs if n == key]


class Request:
    """An HTTP request. Attributes are decoded when first read."""

    __slots__ = ("_headers", "_path", "_query", "ctx", "exchange", "params")

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self._path: bytes | None = None
        self._query = b""
        self._headers: Headers | None = None
        self.ctx: dict[str, Any] = {}
        self.params: dict[str, Any] = {}

    @property
    def method(self) -> bytes:
        return self.exchange.method

    @property
    def url(self) -> bytes:
        return self.exchange.head.target

    def _split(self) -> bytes:
        target = self.exchange.head.target
        path, _, self._query = target.partition(b"?")
        self._path = path
        return path

    @property
    def path(self) -> bytes:
        return self._path if self._path is not None else self._split()

    @property
    def query_string(self) -> bytes:
        if self._path is None:
            self._split()
        return self._query

    @property
    def version(self) -> bytes:
        return b"1.0" if self.exchange.http10 else b"1.1"

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self.exchange.head.headers)
        return self._headers

    @property
    def host(self) -> bytes:
        return self.exchange.head.get(b"host") or b""

    @property
    def content_length(self) -> int:
        n = self.exchange.head.content_length
        return -1 if n is None else n

    @property
    def has_body(self) -> bool:
        return self.exchange.head.has_body

    async def stream(self) -> AsyncIterator[bytes]:
        """The body, piece by piece, as it arrives."""
        while True:
            data = await self.exchange.receive()
            if not data:
                return
            yield data

    async def body(self) -> bytes:
        """The whole body (bounded by client_max_body_size)."""
        return b"".join([piece async for piece in self.stream()])
