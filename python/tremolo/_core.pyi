"""Type stubs for the extension module tremolo._core (rust/src/py)."""

from collections.abc import Iterable
from typing import Self, TypeAlias, final

__all__ = [
    "HTTPParseError", "RequestHead", "RequestParser", "ResponseEncodeError", "TokenBucket",
    "__version__", "encode_chunk", "encode_head", "encode_response", "http_date",
    "last_chunk", "reason_phrase",
]

__version__: str

class HTTPParseError(Exception):
    """A request the parser refused; answer with `status`, then close."""

    status: int
    reason: str

class ResponseEncodeError(ValueError):
    """A response the encoder refused to write (bad status, control character)."""

@final
class RequestHead:
    @property
    def method(self) -> bytes: ...
    @property
    def target(self) -> bytes: ...
    @property
    def version(self) -> str: ...
    @property
    def headers(self) -> list[tuple[bytes, bytes]]: ...
    def get(self, name: bytes) -> bytes | None: ...
    def get_all(self, name: bytes) -> list[bytes]: ...
    @property
    def raw(self) -> bytes: ...
    @property
    def keep_alive(self) -> bool: ...
    @property
    def expect_continue(self) -> bool: ...
    @property
    def upgrade(self) -> bool: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def chunked(self) -> bool: ...
    @property
    def has_body(self) -> bool: ...
    def info(self) -> tuple[bytes, bool, bool, bool, bool]: ...

_Event: TypeAlias = RequestHead | bytes | list[tuple[bytes, bytes]] | HTTPParseError | None

@final
class RequestParser:
    def __new__(
        cls,
        *,
        max_request_line: int = 8192,
        max_header_size: int = 8192,
        max_headers: int = 100,
        max_body_size: int = 2097152,
        max_chunk_line: int = 1024,
    ) -> Self: ...
    def feed(self, data: bytes) -> list[_Event]: ...
    @property
    def max_body_size(self) -> int: ...
    @max_body_size.setter
    def max_body_size(self, value: int) -> None: ...
    @property
    def paused(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def idle(self) -> bool: ...
    def resume(self) -> list[_Event]: ...
    def take_buffered(self) -> bytes: ...

@final
class TokenBucket:
    def __new__(cls, rate: float, burst: float, now: float) -> Self: ...
    def take(self, want: int, now: float) -> tuple[int, float]: ...
    def available(self, now: float) -> int: ...
    @property
    def rate(self) -> float: ...
    @property
    def burst(self) -> float: ...

_Field = tuple[bytes | bytearray, bytes | bytearray] | list[bytes | bytearray]

def encode_response(
    status: int,
    headers: Iterable[_Field],
    body: bytes,
    keep_alive: bool,
    http10: bool,
    date: bytes,
    server: bytes,
    reason: bytes | None = None,
    head_only: bool = False,
) -> tuple[bytes, bool]: ...
def encode_head(
    status: int,
    headers: Iterable[_Field],
    content_length: int | None,
    chunked: bool,
    keep_alive: bool,
    http10: bool,
    date: bytes,
    server: bytes,
    reason: bytes | None = None,
) -> tuple[bytes, bool]: ...
def encode_chunk(data: bytes) -> bytes: ...
def last_chunk(trailers: list[tuple[bytes, bytes]] | None = None) -> bytes: ...
def http_date(unix_time: float) -> bytes: ...
def reason_phrase(code: int) -> str: ...
