"""Serving ASGI 3 applications (http, websocket and lifespan)."""

from .adapter import ASGIAdapter
from .lifespan import LifespanFailed

__all__ = ["ASGIAdapter", "LifespanFailed"]
