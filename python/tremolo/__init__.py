"""tremolo: a stream-oriented asynchronous HTTP/1.1 and WebSocket server and web
framework for Python, with its protocol core in Rust.

`Tremolo` (and its alias `Application`) is loaded on first use, so that importing a
lower layer (`tremolo.protocols`, `tremolo.asgi`) does not load the framework."""

from typing import TYPE_CHECKING, Any

from . import exceptions
from ._core import __version__

if TYPE_CHECKING:
    from .application import Application, Tremolo

__all__ = ["Application", "Tremolo", "__version__", "exceptions", "run"]


def __getattr__(name: str) -> Any:
    if name in ("Tremolo", "Application"):
        from . import application

        return getattr(application, name)
    raise AttributeError(f"module 'tremolo' has no attribute {name!r}")


def run(app: Any, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serves an ASGI or WSGI application (as `python3 -m tremolo` does) until
    interrupted; `interface='asgi'|'wsgi'` overrides the detection."""
    from .launch import serve_app

    serve_app(app, host=host, port=port, **options)
