"""asyncio protocols: bytes from the transport through the Rust core to an
application adapter, one concern a module (adapter interface, connection facts, flow
control, worker state and clocks, the HTTP exchange, HTTP, WebSocket, the takeover
seam between them, file transfer, the handler task)."""

from .adapter import Adapter, Connection, FunctionAdapter, Handler
from .connection import ConnectionInfo
from .exchange import Exchange
from .flow import ClientDisconnected, Flow
from .http import HTTPProtocol
from .state import ServerState
from .takeover import Takeover

__all__ = [
    "Adapter", "ClientDisconnected", "Connection", "ConnectionInfo", "Exchange", "Flow",
    "FunctionAdapter", "HTTPProtocol", "Handler", "ServerState", "Takeover",
]
