"""The response object handlers receive: status and fields until they are sent."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .. import _core
from ..exceptions import HTTPException, HTTPRedirect, InternalServerError

if TYPE_CHECKING:
    from .request import Request

DEFAULT_CONTENT_TYPE = b"text/html; charset=utf-8"
REDIRECTS = {301: "Moved Permanently", 302: "Found", 303: "See Other",
             307: "Temporary Redirect", 308: "Permanent Redirect"}


def _bytes(value: bytes | str | int) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("latin-1")


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _field(value: bytes | str | int) -> bytes:
    data = _bytes(value)
    if b"\r" in data or b"\n" in data or b"\0" in data:
        raise InternalServerError("a header holds CR, LF or NUL")
    return data


class Response(_core.ResponseCore):
    """Status and fields can change until the head is sent (by the first write,
    end, or the handler's return); response middlewares run just before that.
    Made as `Response(request)`: its core (rust/src/py/native.rs) holds the
    request, `status` (200), `reason` (None: the status's own), `fields` (a list
    of (name, value)), `content_type` and `keepalive`, and makes head_fields()."""

    if TYPE_CHECKING:
        request: Request
        reason: bytes | None
        fields: list[tuple[bytes, bytes]]

    #: None: chunked unless a length is known; False: never (see write)
    chunked: bool | None = None
    #: awaited once, just before the head is sent (the app's response middlewares);
    #: a body it returns replaces the handler's
    before_send: Callable[[], Awaitable[bytes | None]] | None = None
    #: a response middleware answered with its own body: the handler's is dropped
    replaced = False
    #: the fields an error answer keeps: those the request middlewares set
    kept_fields: list[tuple[bytes, bytes]] | tuple[()] = ()
    #: the error being answered instead of the handler's response (see errors.py)
    error: HTTPException | None = None

    @property
    def exchange(self) -> Any:
        return self.request.exchange

    # -- status and fields ---------------------------------------------------

    def set_status(self, status: int = 200, reason: bytes | str | None = None) -> None:
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise InternalServerError(f"invalid status {status!r}")
        self.status = status
        self.reason = None if reason is None else _field(reason)

    def get_status(self) -> tuple[int, bytes]:
        if self.reason is not None:
            return self.status, self.reason
        return self.status, _core.reason_phrase(self.status).encode("latin-1")

    @property
    def line(self) -> list[bytes]:
        """The status line as the original keeps it, `[b'HTTP/1.1', b'200', b'OK']`
        (the request's version); a copy: set_status() changes the status."""
        status, reason = self.get_status()
        return [b"HTTP/" + self.request.version, b"%d" % status, reason]

    @property
    def headers(self) -> dict[bytes, list[bytes]]:
        """The fields set so far: lowercase name -> values."""
        out: dict[bytes, list[bytes]] = {}
        for name, value in self.fields:
            out.setdefault(name.lower(), []).append(value)
        return out

    def set_header(self, name: bytes | str, value: bytes | str | int = b"") -> None:
        key = _field(name)
        self.fields = [f for f in self.fields if f[0].lower() != key.lower()]
        self.fields.append((key, _field(value)))

    def append_header(self, name: bytes | str, value: bytes | str | int) -> None:
        self.fields.append((_field(name), _field(value)))

    def set_content_type(self, content_type: bytes | str = DEFAULT_CONTENT_TYPE) -> None:
        self.content_type = _field(content_type)

    def set_cookie(self, name: str | bytes, value: str | bytes = "", *, expires: int = 0,
                   path: str | bytes = "/", domain: str | bytes | None = None,
                   secure: bool = False, httponly: bool = False,
                   samesite: str | bytes | None = None) -> None:
        """Adds a Set-Cookie field. `expires` is seconds from now (0: a session
        cookie; negative: delete it)."""
        name = _bytes(name)
        if not name or not _TOKEN.fullmatch(name):
            raise ValueError(f"a cookie name must be a token, not {name!r}")
        # percent-encoded (request.cookies decodes it): a space, ';' or ',' in a value
        # can never end it or add attributes
        text = value if isinstance(value, str) else _bytes(value)  # str as UTF-8
        parts = [name + b"=" + quote(text, safe="!#$&'()*+-./:<=>?@[]^_`{|}~").encode()]
        if expires:
            parts.append(b"Expires=" + _core.http_date(time.time() + expires))
            parts.append(b"Max-Age=%d" % max(expires, 0))
        if path:
            parts.append(b"Path=" + _field(path))
        if domain:
            parts.append(b"Domain=" + _field(domain))
        if secure:
            parts.append(b"Secure")
        if httponly:
            parts.append(b"HttpOnly")
        if samesite:
            parts.append(b"SameSite=" + _field(samesite))
        self.append_header(b"Set-Cookie", b"; ".join(parts))

    def _content_length(self) -> int | None:
        """A Content-Length the handler set: a streamed body is then framed by it."""
        for name, value in self.fields:
            if name.lower() == b"content-length" and value.strip().isdigit():
                return int(value)
        return None

    def headers_sent(self) -> bool:
        return bool(self.exchange.started)

    def redirect(self, url: str | bytes, code: int | None = None) -> HTTPRedirect:
        """An HTTPRedirect to raise: `raise response.redirect('/new', 301)`. As in the
        original, 303 is 302 for an HTTP/1.0 client (which may not know it) and a code
        that is not a redirect's is 302; 307 and 308 are kept."""
        if code is None or code not in REDIRECTS or (
                code == 303 and self.request.version == b"1.0"):
            code = 302
        # an empty body, as the original: the Location field is the answer
        return HTTPRedirect("", code=code, message=REDIRECTS[code], location=_field(url))

    # -- sending -------------------------------------------------------------

    async def _prepare(self) -> bool:
        """Runs the response middlewares; True when one replaced the body (then
        this response is sent, with that body, and the caller sends nothing)."""
        hook, self.before_send = self.before_send, None
        if hook is None:
            return False
        body = await hook()
        if body is None:
            return False
        self.replaced = True
        # the handler's Content-Length was for its own body
        self.fields = [f for f in self.fields if f[0].lower() != b"content-length"]
        ex = self.exchange
        if not self.keepalive:
            ex.keep_alive = False
        if ex.limited(len(body)):
            await ex.respond_limited(self.status, self.head_fields(), body, self.reason)
        else:
            ex.respond(self.status, self.head_fields(), body, self.reason)
        return True

    async def end(self, data: bytes | str = b"", *, keepalive: bool = True) -> None:
        """Sends `data` as the whole body (with Content-Length), or as the last
        part of a streamed body, and finishes the response."""
        ex = self.exchange
        if isinstance(data, str):
            data = data.encode()
        if ex.started:
            await self.write(data)
            await self.write(b"")
        elif not await self._prepare():
            if not (keepalive and self.keepalive):
                ex.keep_alive = False
            if ex.limited(len(data)):
                await ex.respond_limited(self.status, self.head_fields(), data, self.reason)
            else:
                ex.respond(self.status, self.head_fields(), data, self.reason)

    async def write(self, data: bytes | str | None = None, *, chunked: bool | None = None,
                    **_: Any) -> None:
        """Streams part of the body; the first call sends the head (chunked on
        HTTP/1.1 unless `chunked=False`), b"" ends the body. Raises
        ClientDisconnected once the client is gone."""
        ex = self.exchange
        if isinstance(data, str):
            data = data.encode()
        if self.replaced:
            return  # a response middleware's body was sent instead
        if ex.closed:
            # a stream must learn that no one listens any more (the transport
            # would drop every write without a word)
            raise ex.gone()
        if not ex.started:
            if await self._prepare():
                return
            # what it streams from now on is for this client only
            ex.cancel_when_gone = True
            if not self.keepalive:
                ex.keep_alive = False
            if chunked is not None:
                self.chunked = chunked
            length = self._content_length()
            if length is None and self.chunked is False and not ex.http10:
                ex.keep_alive = False  # no framing: the end is the close
            ex.start(self.status, self.head_fields(), content_length=length,
                     reason=self.reason, chunked=length is None and self.chunked is not False)
        if data is None:
            return
        if data == b"":
            ex.end()
            return
        await ex.write(data)

    async def sendfile(self, path: Any, offset: int = 0, count: int = -1,
                       content_type: bytes | str | None = None, **_: Any) -> None:
        """Sends a file (or `count` bytes of it from `offset`) with Last-Modified,
        ETag and Accept-Ranges, answering Range, If-Range, If-None-Match and
        If-Modified-Since; zero-copy unless a speed limit applies."""
        from .files import sendfile

        await sendfile(self, path, offset, count, content_type)

    async def send(self, data: bytes) -> None:
        """Writes raw bytes to the connection: after the head, a body the handler
        frames; before it, a whole response of the handler's own making (the
        connection closes after it)."""
        await self.exchange.send_raw(data)

    def close(self, keepalive: bool = False) -> None:
        """Ends the exchange: with keepalive the connection serves the next request
        (a streamed body is ended first), without it the connection closes."""
        ex = self.exchange
        if not keepalive:
            ex.keep_alive = False
            self.keepalive = False
        if ex.started and not ex.finished:
            ex.end()
        elif not ex.started and not keepalive:
            ex.abort()
