"""`python3 -m tremolo [options] APP` and `tremolo.run(app, ...)`: serve an ASGI or
WSGI application."""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from dataclasses import fields
from typing import Any, NoReturn

from ._core import __version__
from .config import UNLIMITED, ConfigError, Options

#: options that are flags with no value, and how they map
SWITCHES = {"debug": "--debug", "ws": "--no-ws", "reuse_port": "--no-reuse-port",
            "ws_compression": "--no-ws-compression"}
#: options whose default is None but whose values are numbers
NUMBERS = {"ws_ping_interval": float, "ws_ping_timeout": float}
HIDDEN = {"extra", "host", "port", "ssl", "trusted_proxies", "log_fmt"}


class AppLoadError(Exception):
    """APP could not be imported or found."""


def load_app(spec: str) -> Any:
    """`module:attr`, `module` (attr `app`), or a file path with an optional `:attr`."""
    path, sep, attr = spec.rpartition(":")
    if not sep or (os.sep in attr or attr.endswith(".py")):
        path, attr = spec, "app"
    if path.endswith(".py") or os.sep in path:
        directory, filename = os.path.split(os.path.abspath(path))
        if not os.path.isfile(os.path.join(directory, filename)):
            raise AppLoadError(f"no such file: {path}")
        sys.path.insert(0, directory)
        module_name = os.path.splitext(filename)[0]
    else:
        sys.path.insert(0, os.getcwd())
        module_name = path
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppLoadError(f"cannot import {module_name!r}: {exc}") from exc
    except Exception as exc:
        raise AppLoadError(f"importing {module_name!r} failed: {type(exc).__name__}: "
                           f"{exc}") from exc
    try:
        app = getattr(module, attr)
    except AttributeError:
        raise AppLoadError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(app):
        raise AppLoadError(f"{spec} is not callable")
    return app


def detect_interface(app: Any) -> str:
    """'asgi' for an async callable (function, or object with an async __call__),
    else 'wsgi'."""
    if inspect.iscoroutinefunction(app):
        return "asgi"
    # an instance whose __call__ is async (Starlette, FastAPI, Django's ASGIHandler)
    call = inspect.getattr_static(type(app), "__call__", None)
    return "asgi" if inspect.iscoroutinefunction(call) else "wsgi"


def parse_bind(value: str) -> list[tuple[str | None, int | str]]:
    """`host:port,unix-path,[::]:port` -> [(host, port) | (None, path)]."""
    out: list[tuple[str | None, int | str]] = []
    for item in filter(None, (v.strip() for v in value.split(","))):
        if item.startswith("/") or item.startswith("unix:"):
            out.append((None, item.removeprefix("unix:")))
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{item!r} is not host:port or a UNIX socket path")
        out.append((host.strip("[]") or "0.0.0.0", int(port)))
    if not out:
        raise ValueError("empty")
    return out


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"tremolo: error: {message}\n")


def build_parser() -> Parser:
    parser = Parser(prog="python3 -m tremolo",
                    description="Serve an ASGI or WSGI application with tremolo.")
    parser.add_argument("app", metavar="APP", nargs="?",
                        help="module:attr, module (attr 'app'), or path/to/file.py[:attr]")
    parser.add_argument("--version", action="version", version=f"tremolo {__version__}")
    parser.add_argument("--bind", metavar="ADDRS",
                        help="host:port,unix-path,[::]:port (instead of --host/--port)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--interface", choices=("auto", "asgi", "wsgi"), default="auto")
    parser.add_argument("--root-path", default="", help="the ASGI root_path")
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--no-ws", action="store_true", help="disable WebSocket")
    parser.add_argument("--no-reuse-port", action="store_true")
    parser.add_argument("--no-ws-compression", action="store_true",
                        help="do not offer permessage-deflate")
    defaults = Options()
    for f in fields(Options):
        if f.name in HIDDEN or f.name in SWITCHES:
            continue
        kind = NUMBERS.get(f.name) or type(getattr(defaults, f.name))
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, metavar="VALUE",
                            type=kind if kind in (int, float) else str, default=None)
    return parser


def options_from(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for f in fields(Options):
        value = getattr(args, f.name, None)
        if value is not None and f.name not in HIDDEN:
            opts[f.name] = value
    opts["debug"] = args.debug
    opts["ws"] = not args.no_ws
    opts["reuse_port"] = not args.no_reuse_port
    opts["ws_compression"] = not args.no_ws_compression
    return opts


def serve(app: Any, *, interface: str = "auto", host: str | None = "127.0.0.1",
          port: int = 8000, bind: list[tuple[str | None, int | str]] | None = None,
          root_path: str = "", **options: Any) -> None:
    """Serves `app` until interrupted."""
    from .locks import ServerLock
    from .supervisor import serve as supervise

    if interface == "auto":
        interface = detect_interface(app)
    from .asgi import ASGIAdapter
    from .wsgi import WSGIAdapter

    adapter = ASGIAdapter if interface == "asgi" else WSGIAdapter

    listeners: list[tuple[str | None, int | str, dict[str, Any]]] = []
    if bind:
        (host, first), *rest = bind
        port = first if isinstance(first, int) else 0
        if not isinstance(first, int):
            listeners.append((None, first, {}))
            host, port = None, 0
        listeners.extend((h, p, {}) for h, p in rest)
    # The frameworks set their own body limits, as behind uvicorn and gunicorn; the
    # native API keeps the original's 2 MiB.
    options.setdefault("client_max_body_size", UNLIMITED)
    opts = Options.from_kwargs({"host": host, "port": port, **options})

    def factory(state: Any) -> Any:
        return adapter(app, state, root_path)

    supervise(factory, opts, listeners, ServerLock.create(opts.locks),
              primary=not (bind and host is None))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.app:
        parser.error("the APP argument is required (module:attr)")
    bind = None
    if args.bind:
        try:
            bind = parse_bind(args.bind)
        except ValueError as exc:
            parser.error(f"argument --bind: {exc}")
    try:
        app = load_app(args.app)
    except AppLoadError as exc:
        print(f"tremolo: error: APP: {exc}", file=sys.stderr)
        return 1
    try:
        serve(app, interface=args.interface, host=args.host, port=args.port, bind=bind,
              root_path=args.root_path, **options_from(args))
    except ConfigError as exc:
        name = str(exc).split(" ", 1)[0].rstrip(":")
        print(f"tremolo: error: argument --{name.replace('_', '-')}: {exc}", file=sys.stderr)
        return 2
    return 0
