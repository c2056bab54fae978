"""Error answers of the native framework: which error handler receives an exception,
what it answers, and the default pages, as the original gives them.

An error answer replaces the response the handler was making: its status,
Content-Type and the fields the handler set go (a Content-Length, a Content-Range or
a Content-Disposition would describe another body), as in the original. Unlike the
original, the fields the request middlewares set stay (CORS, a request id: they are
for every response, and a browser hides an error from a script when its CORS field
is missing), and the response middlewares run before it is sent, at most once: one
that fails while an error is answered is logged, and the answer goes without them.
"""

from __future__ import annotations

import asyncio
import traceback
from typing import TYPE_CHECKING, Any

from ..exceptions import ClientDisconnected, HTTPException
from .streams import to_bytes

if TYPE_CHECKING:
    import logging

    from .app import App
    from .request import Request
    from .response import Response

#: the fields the server itself puts in error answers, spelled as the original does
_SPELLED = {"allow": "Allow", "location": "Location"}

# statuses with a default error handler of their own; the others fall back to the
# application's 500 handler, as in the original
DEFAULT_HANDLED = (400, 404, 405)

#: what html.escape replaces, `&` first so that nothing is escaped twice (the html
#: module is not imported for it: its table of entities is half a MiB of every worker)
_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;"))
#: media types a browser renders as a page
_HTML = ("text/html", "application/xhtml+xml")


def escape(text: str) -> str:
    for raw, entity in _ESCAPES:
        text = text.replace(raw, entity)
    return text


class ErrorAnswers:
    """Answers the exceptions of one application's requests."""

    def __init__(self, app: App, logger: logging.Logger, debug: bool,
                 server_name: str) -> None:
        self.app = app
        self.logger = logger
        self.debug = debug
        self.signature = escape(server_name)

    async def answer(self, exc: Exception, server: dict[str, Any]) -> None:
        """Answers an exception as the original does: the error handler registered
        for its status (or the 500 one, for statuses without a default handler)
        receives it as an HTTPException (`exc.code`; a bug arrives as an
        InternalServerError whose `__cause__` is the bug) and its return value is the
        body; None means the exception's own message, with its content_type."""
        response: Response = server["response"]
        ex = response.exchange
        error = HTTPException(cause=exc)
        if error is not exc:
            self.logger.error("unhandled error on %s", server["request"].path.decode(
                "latin-1"), exc_info=exc)
        if ex.started:
            ex.abort()  # a body cut short: closing the connection says so
            return
        response.error = error
        _head(response, error)
        handler = self.app.error_handlers.get(error.code)
        if handler is None and error.code not in DEFAULT_HANDLED:
            handler = self.app.error_handlers.get(500)
        body = None
        if handler is not None:
            try:
                result = handler.func(**handler.kwargs({**server, "exc": error}, {}))
                if asyncio.iscoroutine(result):
                    result = await result
                body = None if result is None else to_bytes(result)
            except ClientDisconnected:
                raise
            except Exception as inner:  # the error handler's own bug
                self.logger.error("error handler for %d failed", error.code, exc_info=inner)
                exc = inner
                error = response.error = HTTPException(cause=inner)
                _head(response, error)
        if ex.started:  # the error handler answered by itself
            return
        if body is None:
            # the exception's own answer, as it is now: a handler may have changed
            # its code, message or content_type (the fields it set are dropped, as
            # the original drops them)
            _head(response, error)
            body = self._default_body(error, exc, server["request"])
        _fields(response, error)
        try:
            await response.end(body, keepalive=error.code < 400)
        except ClientDisconnected:
            raise
        except Exception as inner:
            if ex.started:
                raise
            # a response middleware failed on this answer, or a field set before
            # could not be encoded: the middlewares have run (and never run twice),
            # so it goes without them, and without the fields they or others set
            self.logger.error("answering %d failed in a response middleware or a "
                              "field set for it (%s: %s); answered without the response "
                              "middlewares", error.code, type(inner).__name__, inner,
                              exc_info=inner)
            _head(response, error)
            _fields(response, error)
            await response.end(body, keepalive=error.code < 400)

    def _default_body(self, error: HTTPException, exc: Exception, request: Request) -> bytes:
        """The original's default answers: a page for a bare 404, the exception's
        message for the others. A bug's own message is not shown (it may hold
        internals) unless debug is on, which shows the traceback."""
        if error.code == 404 and not error.args:
            path = escape(request.path.decode("latin-1"))
            return (f"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>"
                    f"<h1>Not Found</h1><p>Unable to find handler for {path}.</p><hr />"
                    f"<address>{self.signature}</address></body></html>").encode()
        if error is not exc:
            if not self.debug:
                return _text(error, error.message)
            lines = traceback.format_exception(exc)
            return ("<pre>" + escape("".join(lines)) + "</pre>").encode()
        return _text(error, str(error))


def _head(response: Response, error: HTTPException) -> None:
    """The error's status and Content-Type; an error (400 or more) keeps only the
    fields the request middlewares set (a redirect keeps them all, as the
    original)."""
    if error.code >= 400:
        response.fields = list(response.kept_fields)
    response.set_status(error.code, error.message)
    response.set_content_type(error.content_type)


def _fields(response: Response, error: HTTPException) -> None:
    """The exception's keyword arguments as fields (`_` becomes `-`)."""
    for name, value in error.options.items():
        name = name.replace("_", "-")
        response.set_header(_SPELLED.get(name, name), value)


def _text(error: HTTPException, message: str) -> bytes:
    """An exception's message as its body: HTML-escaped when the body is HTML, since
    a message often holds what the client sent (`NotFound(f"no user {name}")`), and
    unescaped it would run as the page's script (the original sends it as it is)."""
    if error.content_type.partition(";")[0].strip().lower() in _HTML:
        message = escape(message)
    return message.encode(error.encoding, "replace")
