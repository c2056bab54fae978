"""`from tremolo.lib.websocket import WebSocket`, as in the original."""

from ..framework.websocket import WebSocket

__all__ = ["WebSocket"]
