"""tremolo.exceptions: errors a handler raises to answer with an HTTP status."""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequest", "ClientDisconnected", "ExpectationFailed", "Forbidden", "HTTPException",
    "HTTPRedirect", "InternalServerError", "MethodNotAllowed", "NotFound", "PayloadTooLarge",
    "PreconditionFailed", "RangeNotSatisfiable", "RequestTimeout", "ServiceUnavailable",
    "TooManyRequests", "TremoloException", "Unauthorized", "UpgradeRequired",
    "WebSocketClientClosed", "WebSocketException", "WebSocketServerClosed",
]


class TremoloException(Exception):
    message = "TremoloException"

    def __str__(self) -> str:
        if not self.args:
            return self.message
        first, *rest = self.args
        if rest and isinstance(first, int):
            return f"{first}: {' '.join(map(str, rest))}"
        return " ".join(map(str, self.args))


class ClientDisconnected(ConnectionError, RuntimeError):
    """The client went away before the exchange was over: raised by a write to it
    (`response.write()`, `sse.send()`) once its connection is closed.

    A ConnectionError, and a RuntimeError too: the original raises RuntimeError
    ('protocol object has been closed') there, and programs written for it catch
    that."""


class HTTPException(TremoloException):
    """An error response: `code`, `message` (the reason phrase), `content_type`, and
    `options`, the response fields (keyword arguments; `headers` is the same dict).

    `cause` wraps another exception: an HTTPException is used as it is (what is
    given besides, arguments, options, code, message, content_type, replaces its
    own, as the original does); with the base class, a TimeoutError becomes
    RequestTimeout (408) and anything else InternalServerError (500), with the cause
    as `__cause__` and its arguments unless others are given.
    """

    code = 500
    message = "Internal Server Error"
    content_type = "text/html; charset=utf-8"

    def __new__(cls, *args: Any, cause: BaseException | None = None,
                **kwargs: Any) -> HTTPException:
        if isinstance(cause, HTTPException):
            return cause
        if cause is not None and cls is HTTPException:
            cls = RequestTimeout if isinstance(cause, TimeoutError) else InternalServerError
        return super().__new__(cls)

    def __init__(self, *args: Any, code: int | None = None, message: str | None = None,
                 content_type: str | None = None, cause: BaseException | None = None,
                 **options: Any) -> None:
        if isinstance(code, int):
            self.code = code
        if isinstance(message, str):
            self.message = message
        if isinstance(content_type, str):
            self.content_type = content_type
        # only an Exception is a cause, as in the original (a CancelledError is not)
        if isinstance(cause, Exception):
            if cause is self:  # __new__ returned the cause: re-initialised with these
                if not options:
                    options = getattr(self, "options", {})
            else:
                self.__cause__ = cause
            if cause.args and not args:
                args = cause.args
        super().__init__(*args)
        self.options: dict[str, Any] = options

    @property
    def headers(self) -> dict[str, Any]:
        return self.options

    @property
    def encoding(self) -> str:
        for param in self.content_type.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip('"')
        return "utf-8"


class HTTPRedirect(HTTPException):
    code = 302
    message = "Found"


class BadRequest(HTTPException):
    code = 400
    message = "Bad Request"


class Unauthorized(HTTPException):
    code = 401
    message = "Unauthorized"


class Forbidden(HTTPException):
    code = 403
    message = "Forbidden"


class NotFound(HTTPException):
    code = 404
    message = "Not Found"


class MethodNotAllowed(HTTPException):
    code = 405
    message = "Method Not Allowed"


class RequestTimeout(HTTPException):
    code = 408
    message = "Request Timeout"


class PreconditionFailed(HTTPException):
    code = 412
    message = "Precondition Failed"


class PayloadTooLarge(HTTPException):
    code = 413
    message = "Payload Too Large"


class RangeNotSatisfiable(HTTPException):
    code = 416
    message = "Range Not Satisfiable"


class ExpectationFailed(HTTPException):
    code = 417
    message = "Expectation Failed"


class TooManyRequests(HTTPException):
    code = 429
    message = "Too Many Requests"


class InternalServerError(HTTPException):
    code = 500
    message = "Internal Server Error"


class ServiceUnavailable(HTTPException):
    code = 503
    message = "Service Unavailable"


class UpgradeRequired(HTTPException):
    code = 426
    message = "Upgrade Required"


class WebSocketException(HTTPException):
    """A WebSocket ends: `code` is its close code (1011 unless said)."""

    code = 1011

    def __new__(cls, *args: Any, **kwargs: Any) -> WebSocketException:
        # never swapped for its cause, unlike HTTPException: it is always itself,
        # with the cause as __cause__
        return Exception.__new__(cls)


class WebSocketClientClosed(WebSocketException):
    """The client closed the WebSocket: `code` is its close code (1005 when it sent
    none, 1006 when the connection dropped without a close)."""

    code = 1005


class WebSocketServerClosed(WebSocketException):
    """The server closes the WebSocket with `code`: raise it from a handler to close
    with that code; the server raises it when the client broke the protocol."""
