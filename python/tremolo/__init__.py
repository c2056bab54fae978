"""tremolo: a stream-oriented asynchronous HTTP/1.1 server and web framework for
Python, with its protocol core in Rust."""

from . import exceptions
from ._core import __version__
from .app import Application, Tremolo

__all__ = ["Application", "Tremolo", "__version__", "exceptions"]
