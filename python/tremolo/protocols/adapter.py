"""What a protocol needs of an application: the adapter interface that the native
framework, ASGI and WSGI each implement."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..config import Options
    from .connection import ConnectionInfo
    from .exchange import Exchange

Handler = Callable[["Exchange"], Coroutine[Any, Any, None]]


class Connection(Protocol):
    """What an adapter may use of a connection (an HTTPProtocol is one): its facts,
    the dict adapters keep what its requests share in, and its end. An adapter gets
    it as `Exchange.connection` and in connection_made/lost, and uses nothing else
    of the protocol (tools/check_layers.py sees to it)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The worker's loop."""

    @property
    def adapter(self) -> Adapter:
        """The adapter serving the connection."""

    @property
    def context(self) -> dict[str, Any]:
        """What adapters keep per connection, by their own keys."""

    @property
    def eof(self) -> bool:
        """The client ended its side (closed, or half-closed)."""

    @property
    def info(self) -> ConnectionInfo | None: ...

    @property
    def transport(self) -> asyncio.Transport | None: ...

    @property
    def closed(self) -> bool: ...

    @property
    def peer(self) -> tuple[str, int] | None: ...

    @property
    def options(self) -> Options: ...

    @property
    def logger(self) -> logging.Logger: ...

    def watch_close(self, future: asyncio.Future[None]) -> None: ...

    def close(self) -> None: ...

    def set_queue_limit(self, events: int) -> None: ...

    def set_upload_rate(self, rate: int) -> None: ...


class Adapter:
    """`handle` each exchange, and hear of connections opening and closing.
    Subclasses override what they use."""

    #: start each handler as soon as its request is read (see protocols/task.py);
    #: False starts it at the loop's next turn, after every read of this one
    eager = True
    #: the metrics' interface label
    interface = "tremolo"

    async def handle(self, ex: Exchange) -> None:
        raise NotImplementedError

    def connection_made(self, connection: Connection) -> None:
        pass

    def connection_lost(self, connection: Connection) -> None:
        pass

    async def startup(self) -> None:
        """Runs in the worker before it accepts connections."""

    async def shutdown(self) -> None:
        """Runs in the worker after its connections are closed."""


class FunctionAdapter(Adapter):
    """An adapter that is just a coroutine function taking an Exchange."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle  # type: ignore[method-assign,assignment]
