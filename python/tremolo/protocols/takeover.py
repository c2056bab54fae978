"""The seam between protocols: what an HTTP connection hands to the protocol that
takes it over after a 101 (WebSocket)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .connection import ConnectionInfo
from .flow import Flow

if TYPE_CHECKING:
    from .state import ServerState
    from .task import RequestTask


@dataclass(slots=True)
class Takeover:
    transport: asyncio.Transport
    #: flow control, as it stood (a paused direction stays paused)
    flow: Flow
    state: ServerState
    info: ConnectionInfo
    #: what the client sent after the upgrade request, already read
    buffered: bytes
    #: the handler that answered 101, still running: it serves the new protocol
    task: RequestTask | None
    #: the client had half-closed the connection already
    eof: bool
    #: tells the application adapter that the connection is gone, once
    lost: Callable[[], None]
    #: the handshake's exchange (the access log's line when the WebSocket closes)
    exchange: Any = None
