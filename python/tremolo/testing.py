"""Helpers to run an application on 127.0.0.1 inside a test, and stop it after."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from .config import Options
from .locks import ServerLock
from .server import AdapterFactory, Worker, new_event_loop
from .sockets import bind


@contextlib.contextmanager
def serve_in_thread(app: Any, *, host: str = "127.0.0.1", start_timeout: float = 10,
                    **options: Any) -> Iterator[tuple[str, int]]:
    """Serves `app` (a Tremolo application, or an adapter factory) on an ephemeral
    port of 127.0.0.1 in a thread.

    Yields (host, port). On exit the worker shuts down gracefully (bounded by
    shutdown_timeout) and the thread is joined.
    """
    factory: AdapterFactory = getattr(app, "make_adapter", app)
    opts = Options.from_kwargs({"host": host, "port": 0, **options})
    sock = bind(host, 0, reuse_port=False, backlog=opts.backlog)
    port = sock.getsockname()[1]
    ready = threading.Event()
    box: dict[str, Any] = {}

    def main() -> None:
        loop = new_event_loop(opts.loop)
        asyncio.set_event_loop(loop)
        try:
            worker = Worker(factory, opts, loop, ServerLock.create(opts.locks))
            box["worker"], box["loop"] = worker, loop
            loop.run_until_complete(worker.start([(sock, opts)]))
            ready.set()
            loop.run_until_complete(worker.stopping)
            loop.run_until_complete(worker.shutdown())
        except BaseException as exc:  # reported to the test thread
            box["error"] = exc
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="tremolo-test-server", daemon=True)
    thread.start()
    if not ready.wait(start_timeout) or "error" in box:
        sock.close()
        raise RuntimeError(f"server did not start: {box.get('error')!r}")
    try:
        yield host, port
    finally:
        box["loop"].call_soon_threadsafe(box["worker"].stop)
        thread.join(opts.shutdown_timeout + 5)
        sock.close()
        if thread.is_alive():
            raise RuntimeError("server thread did not stop")
