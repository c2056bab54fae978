"""The native Tremolo framework: application, routing, request and response, files,
multipart, SSE, WebSocket. Its public names are `tremolo.Tremolo` and
`tremolo.exceptions`; this package sits below the server and beside asgi and wsgi."""

from .app import App

__all__ = ["App"]
