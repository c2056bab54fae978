"""What a protocol needs of an application: the adapter interface that the native
framework, ASGI and WSGI each implement."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .exchange import Exchange
    from .http import HTTPProtocol

Handler = Callable[["Exchange"], Coroutine[Any, Any, None]]


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

    def connection_made(self, protocol: HTTPProtocol) -> None:
        pass

    def connection_lost(self, protocol: HTTPProtocol) -> None:
        pass

    async def startup(self) -> None:
        """Runs in the worker before it accepts connections."""

    async def shutdown(self) -> None:
        """Runs in the worker after its connections are closed."""


class FunctionAdapter(Adapter):
    """An adapter that is just a coroutine function taking an Exchange."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle  # type: ignore[method-assign,assignment]
