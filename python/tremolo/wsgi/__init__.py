"""Serving WSGI (PEP 3333) applications: the adapter (adapter.py), a request's run
of the application past what the core does (cycle.py; the threads it runs in, the
usual request and start_response are the core's: rust/src/py/wsgi_*.rs), wsgi.input
and wsgi.file_wrapper (streams.py)."""

from .adapter import WSGIAdapter
from .streams import FileWrapper, InputStream

__all__ = ["FileWrapper", "InputStream", "WSGIAdapter"]
