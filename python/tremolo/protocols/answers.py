"""The server's own answers: a refused request, a request head or body that did not
come in time, a failed application.

Each is an exception of tremolo.exceptions (the class of its status, whose message
is the reason phrase) carrying the text of the body, and is written as the original
Tremolo writes it: that reason phrase, `Content-Type: text/html; charset=utf-8` and
the text alone. Programs written for the original compare these answers; the
precise account of what went wrong goes to the log instead.
"""

from __future__ import annotations

from .. import _core
from ..config.reference import env_name, flag
from ..exceptions import (
    BadRequest,
    ExpectationFailed,
    Forbidden,
    HTTPException,
    InternalServerError,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    UpgradeRequired,
)

Header = tuple[bytes, bytes]

_BY_STATUS: dict[int, type[HTTPException]] = {
    cls.code: cls for cls in (BadRequest, Forbidden, RequestTimeout, PayloadTooLarge,
                              ExpectationFailed, UpgradeRequired, InternalServerError,
                              ServiceUnavailable)
}


def too_large(limit: int) -> str:
    """Why a 413, for the log: the limit, and every way to set it. Under `python3 -m
    tremolo` what a program's `app.run(...)` passes does not apply (it does not run),
    and a browser's upload refused there and not under `python app.py` was a puzzle."""
    return (f"request body larger than client_max_body_size ({limit} bytes): raise it with "
            f"{flag('client_max_body_size')} or ${env_name('client_max_body_size')} "
            f"(python3 -m tremolo), or app.run(client_max_body_size=...)")


def refusal(status: int, text: str = "") -> HTTPException:
    """The exception for an answer of `status` whose body is `text` (the reason
    phrase when empty, as an exception without arguments says)."""
    cls = _BY_STATUS.get(status)
    args = (text,) if text else ()
    if cls is None:
        return HTTPException(*args, code=status, message=_core.reason_phrase(status))
    return cls(*args)


def answer_parts(error: HTTPException) -> tuple[list[Header], bytes, bytes]:
    """The fields, body and reason phrase that answer `error`: its Content-Type and
    its text (str(error))."""
    content_type = (b"Content-Type", error.content_type.encode("latin-1"))
    return [content_type], str(error).encode(error.encoding), error.message.encode("latin-1")
