"""The response object handlers receive: status and headers before they are sent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _core

if TYPE_CHECKING:
    from .request import Request

DEFAULT_CONTENT_TYPE = b"text/html; charset=utf-8"


def _bytes(value: bytes | str) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


class Response:
    __slots__ = ("content_type", "headers", "request", "status")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.status = 200
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_type = DEFAULT_CONTENT_TYPE

    def set_status(self, status: int = 200, reason: bytes | str | None = None) -> None:
        self.status = status

    def get_status(self) -> tuple[int, bytes]:
        return self.status, _core.reason_phrase(self.status).encode("latin-1")

    def set_header(self, name: bytes | str, value: bytes | str = b"") -> None:
        key = _bytes(name).lower()
        self.headers = [h for h in self.headers if h[0].lower() != key]
        self.headers.append((_bytes(name), _bytes(value)))

    def append_header(self, name: bytes | str, value: bytes | str) -> None:
        self.headers.append((_bytes(name), _bytes(value)))

    def set_content_type(self, content_type: bytes | str = DEFAULT_CONTENT_TYPE) -> None:
        self.content_type = _bytes(content_type)

    def head_fields(self) -> list[tuple[bytes, bytes]]:
        """The fields to send: Content-Type first (except where no body can go), then
        what the handler set."""
        if self.status in (204, 304) or self.status < 200:
            return self.headers
        return [(b"Content-Type", self.content_type), *self.headers]
