"""Serving WSGI (PEP 3333) applications: the adapter (adapter.py), a request's run
of the application (cycle.py), the threads it runs in (pool.py), wsgi.input and
wsgi.file_wrapper (streams.py)."""

from .adapter import WSGIAdapter
from .streams import FileWrapper, InputStream

__all__ = ["FileWrapper", "InputStream", "WSGIAdapter"]
