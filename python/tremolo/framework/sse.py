"""Server-Sent Events: a handler that declares `sse=None` gets an SSE helper."""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING

from ..exceptions import ClientDisconnected, InternalServerError

if TYPE_CHECKING:
    from .request import Request
    from .response import Response

_LINES = re.compile(rb"\r\n|\r|\n")


def _bytes(value: bytes | str | int) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class SSE:
    """`await sse.send(data, event=None, event_id=None, retry=0)`, `await sse.close()`;
    `sse.request`, `sse.response`."""

    def __init__(self, request: Request, response: Response) -> None:
        self.request = request
        self.response = response
        # the original's fields, set before the handler runs (which may change them):
        # clients and proxies must not cache or buffer the stream
        response.set_content_type(b"text/event-stream")
        response.set_header(b"Cache-Control", b"no-cache, must-revalidate")
        response.set_header(b"Expires", b"Thu, 01 Jan 1970 00:00:00 GMT")
        # a handler of events, even one still waiting for its first, only serves
        # this client: once it left, the handler is cancelled (its finally runs)
        response.exchange.cancel_when_gone = True

    async def send(self, data: bytes | str = b"", event: bytes | str | None = None,
                   event_id: bytes | str | None = None, retry: int = 0) -> None:
        """One event: each line of `data` becomes a `data:` line (line breaks at its
        ends are dropped, as the original does), then `event` and `id` unless empty,
        and `retry` unless 0. A lone CR breaks a line too, as it does for the client
        (the original leaves it, and the client reads what follows it as a field).
        Raises ClientDisconnected once the client is gone (code that sends to many
        clients, such as a broadcast, drops that one)."""
        text = _bytes(data).strip(b"\r\n")
        out = [b"data: " + line for line in _LINES.split(text)]
        if event:
            out.append(b"event: " + self._single_line(event, "event"))
        if event_id:
            out.append(b"id: " + self._single_line(event_id, "event_id"))
        if retry:
            out.append(b"retry: %d" % int(retry))
        await self.response.write(b"\n".join(out) + b"\n\n")

    @staticmethod
    def _single_line(value: bytes | str, what: str) -> bytes:
        data = _bytes(value)
        if b"\r" in data or b"\n" in data or b"\0" in data:
            raise InternalServerError(f"an SSE {what} cannot hold a line break")
        return data

    async def close(self) -> None:
        """Ends the stream; the connection serves the next request. A stream whose
        client left is over already: nothing to do (as the original)."""
        with contextlib.suppress(ClientDisconnected):
            await self.response.write(b"")
