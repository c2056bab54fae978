"""tremolo: a stream-oriented asynchronous HTTP/1.1 server and web framework for
Python, with its protocol core in Rust."""

from typing import Any

from . import exceptions
from ._core import __version__
from .app import Application, Tremolo

__all__ = ["Application", "Tremolo", "__version__", "exceptions", "run"]


def run(app: Any, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serves an ASGI or WSGI application (as `python3 -m tremolo` does) until
    interrupted; `interface='asgi'|'wsgi'` overrides the detection."""
    from .cli import serve

    serve(app, host=host, port=port, **options)
