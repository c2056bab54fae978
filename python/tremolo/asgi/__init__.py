"""Serving ASGI 3 applications (http and lifespan)."""

from .http import ASGIAdapter
from .lifespan import LifespanFailed

__all__ = ["ASGIAdapter", "LifespanFailed"]
