"""Starting a server, for every way in: `app.run()` (application.py), the command
line and `tremolo.run()` (cli.py, serve_app). Each ends in `start` (the master, or
one process: supervisor.py), or, with --reload, in `restart_on_change` (a process
that watches the code and runs the server as its child: autoreload.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import autoreload, logs
from .config import UNLIMITED, ConfigError, Options
from .loading import detect_interface
from .locks import ServerLock
from .sockets import Address

if TYPE_CHECKING:
    from .server import AdapterFactory
    from .supervisor import Renew


def start(factory: AdapterFactory, options: Options,
          listeners: list[tuple[Address, dict[str, Any]]], *, primary: bool, what: str,
          renew: Renew | None) -> None:
    """Serves until stopped: the listeners bound, the locks made, the workers
    started (or this process serving, with worker_num 0). ConfigError says what
    cannot work."""
    # (the server's modules load here, not with the command line's --help)
    from .supervisor import supervise

    supervise(factory, options, listeners, ServerLock.create(options.locks),
              primary=primary, what=what, renew=renew)


def restart_on_change(watch: autoreload.Watch, argv: Sequence[str], log_level: str,
                      log_fmt: str, log_config: str | None,
                      env: dict[str, str] | None = None) -> int:
    """--reload: this process logs as the server would and watches the code; the
    server runs as its child (`argv`, with `env`) and is started again when a
    watched file changes. Returns the exit status; ConfigError for a log_config that
    cannot be read."""
    try:
        logs.configure(log_level, log_fmt, log_config)
    except ValueError as exc:
        raise ConfigError(f"log_config: {exc}", "log_config") from None
    return autoreload.run(list(argv), watch, env or {})


def serve_app(app: Any, *, interface: str = "auto", host: str | None = "127.0.0.1",
              port: int = 8000, bind: list[Address] | None = None,
              root_path: str = "", lifespan: str = "auto",
              reimport: Callable[[Callable[[Any], Any]], Renew] | None = None,
              name: str | None = None, **options: Any) -> None:
    """Serves `app` (an ASGI or WSGI application, or a Tremolo one) until
    interrupted: the command line's and `tremolo.run()`'s way in. `reimport(make)`,
    given how to make the adapter factory from an app, gives what imports the app
    again in a rollout (SIGHUP); `name` is what the start line calls it (APP as
    given)."""
    if interface == "auto":
        interface = detect_interface(app)
    interface = "asgi" if interface == "asgi3" else interface
    listeners: list[tuple[Address, dict[str, Any]]] = []
    if bind:
        # the first TCP address given is the server's own; a socket first, none
        first, *rest = bind
        if first.kind == "tcp":
            host, port = first.host, first.port
        else:
            host, port, rest = None, 0, bind
        listeners.extend((address, {}) for address in rest)

    def make(app: Any) -> AdapterFactory:
        if interface == "tremolo":
            factory: AdapterFactory = app.make_adapter
            return factory
        return _adapter(app, interface, root_path, lifespan)
    factory = make(app)
    if interface == "tremolo":
        listeners.extend(app.listeners)
    else:
        # The frameworks set their own body limits, as behind uvicorn and gunicorn;
        # the native API keeps the original's 2 MiB.
        options.setdefault("client_max_body_size", UNLIMITED)
    # the supervisor checks the loop, logging and certificates before binding
    opts = Options.from_kwargs({"host": host, "port": port, **options})
    name = name or getattr(app, "__qualname__", None) or type(app).__name__
    kind = {"tremolo": "Tremolo", "asgi": "ASGI 3", "wsgi": "WSGI"}[interface]
    start(factory, opts, listeners, primary=not (bind and host is None),
          what=f"{name} ({kind})", renew=None if reimport is None else reimport(make))


def _adapter(app: Any, interface: str, root_path: str, lifespan: str) -> AdapterFactory:
    from .asgi import ASGIAdapter
    from .wsgi import WSGIAdapter

    if interface == "asgi":
        return lambda state: ASGIAdapter(app, state, root_path, lifespan)
    return lambda state: WSGIAdapter(app, state, root_path)
