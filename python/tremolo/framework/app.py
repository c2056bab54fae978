"""The native framework's application: routes, hooks, middlewares and error
handlers. One `NativeAdapter` per worker serves them; `tremolo.Tremolo` adds `run()`,
which needs the process supervisor above this layer."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

from ..sockets import Address
from .context import Context
from .routing import Handler, Router, normalize

__all__ = ["App"]

HOOKS = ("worker_start", "worker_stop", "connect", "close")
MIDDLEWARES = ("request", "response")
# For these, equal priorities run newest first (they unwind what the others did).
REVERSED = ("worker_stop", "close", "response")

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class Registered:
    """A hook or middleware: its handler and priority (the mount point a middleware
    serves is its key in `app.middlewares`).

    It also reads as the original's tuple, `(priority, func)` for a hook and
    `(priority, func, options)` for a middleware, since programs written for it
    look into `app.hooks` and `app.middlewares` that way."""

    __slots__ = ("handler", "is_middleware", "priority", "seq")
    counter = itertools.count()

    def __init__(self, func: Callable[..., Any], priority: int, *,
                 is_middleware: bool = False) -> None:
        self.handler = Handler(func)
        self.priority = priority
        self.is_middleware = is_middleware
        self.seq = next(self.counter)

    def _as_tuple(self) -> tuple[Any, ...]:
        if self.is_middleware:
            return (self.priority, self.handler.func, self.handler.options)
        return (self.priority, self.handler.func)

    def __getitem__(self, index: Any) -> Any:
        return self._as_tuple()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._as_tuple())

    def __len__(self) -> int:
        return 2 + self.is_middleware

    def __repr__(self) -> str:
        return repr(self._as_tuple())


async def index(status: tuple[int, bytes] = (503, b"Service Unavailable"),
                **server: Any) -> bytes:
    """What `/` answers in an application that has no route for it: 503, as the
    original (a server that is up but serves nothing there yet)."""
    return b"Service Unavailable"


def _sort(items: list[Registered], name: str) -> None:
    # Kept in the original's order (ascending priorities; those in REVERSED
    # descending), which programs inspecting `app.hooks` see; `in_order` gives the
    # order they run in: lower priorities first, and among equal priorities the
    # REVERSED kinds newest first.
    if name in REVERSED:
        items.sort(key=lambda r: (-r.priority, r.seq))
    else:
        items.sort(key=lambda r: (r.priority, r.seq))


def in_order(items: list[Registered], name: str) -> list[Registered]:
    """The hooks or middlewares of kind `name` in the order they run."""
    return items[::-1] if name in REVERSED else items


class App:
    """A web application: routes, hooks, middlewares and its listeners."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        #: the routes; `app.routes.add(func, path)` as in the original
        self.routes = self.router = Router()
        self.router.add(index, "/", {})  # until the application routes `/` itself
        self.error_handlers: dict[int, Handler] = {}
        self.hooks: dict[str, list[Registered]] = {n: [] for n in HOOKS}
        # mount point (its path segments, () for this application) -> its
        # middlewares; a request runs only the group of the longest mount point it
        # falls under (a mounted application's, or this one's), as the original
        self.middlewares: dict[tuple[bytes, ...], dict[str, list[Registered]]] = {
            (): {n: [] for n in MIDDLEWARES}}
        #: this application's own middlewares (not those of mounted ones)
        self.own_middlewares = self.middlewares[()]
        #: where app.listen() said to listen, each with its options
        self.listeners: list[tuple[Address, dict[str, Any]]] = []
        self.globals = Context()
        # where this application is mounted, and what it mounted (see mount)
        self.mounted_in: App | None = None
        self._mounts: set[tuple[int, bytes]] = set()
        self._joined: set[int] = set()

    # -- routes --------------------------------------------------------------

    def route(self, path: str, **options: Any) -> Decorator:
        """Registers a function, a class-based view, an instance or a module."""
        def decorator(target: Any) -> Any:
            self.add_route(target, path, **options)
            return target
        return decorator

    def add_route(self, target: Any, path: str = "/", **options: Any) -> None:
        self.router.add(target, path, options)

    def error(self, code: int, func: Callable[..., Any] | None = None) -> Any:
        """Registers the handler of error pages with status `code` (400-511)."""
        if not isinstance(code, int) or not 400 <= code <= 511:
            raise ValueError(f"{code!r} is not in the supported range: 400-511")

        def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
            self.error_handlers[code] = Handler(f)
            return f
        return decorator(func) if callable(func) else decorator

    # -- hooks and middlewares -----------------------------------------------

    def add_hook(self, func: Callable[..., Any], name: str = "worker_start",
                 priority: int = 999) -> None:
        if name not in self.hooks:
            raise ValueError(f"{name!r} is not one of: {', '.join(HOOKS)}")
        self.hooks[name].append(Registered(func, priority))
        _sort(self.hooks[name], name)
        self.router.version += 1  # (see NativeAdapter.handle)

    def add_middleware(self, func: Callable[..., Any], name: str = "request",
                       priority: int = 999, *, prefix: tuple[bytes, ...] = ()) -> None:
        if name not in MIDDLEWARES:
            raise ValueError(f"{name!r} is not one of: {', '.join(MIDDLEWARES)}")
        group = self.middlewares.setdefault(prefix, {n: [] for n in MIDDLEWARES})
        group[name].append(Registered(func, priority, is_middleware=True))
        _sort(group[name], name)
        self.router.version += 1  # (see NativeAdapter.handle)

    def middlewares_for(self, path: bytes) -> tuple[tuple[bytes, ...],
                                                    dict[str, list[Registered]]]:
        """The mount point and middlewares that serve `path`: those of the
        innermost mounted application it is under that has any, else this
        application's."""
        parts = tuple(p for p in path.split(b"/") if p)
        for n in range(len(parts), 0, -1):
            group = self.middlewares.get(parts[:n])
            if group is not None:
                return parts[:n], group
        return (), self.own_middlewares

    def _decorator(self, add: Callable[..., None], name: str, args: tuple[Any, ...],
                   priority: int) -> Any:
        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            add(func, name, priority)
            return func
        if len(args) == 1 and callable(args[0]):
            return decorator(args[0])  # used bare: @app.on_request
        return decorator

    def hook(self, name: str, *args: Any, priority: int = 999) -> Any:
        return self._decorator(self.add_hook, name, args, priority)

    def middleware(self, name: str, *args: Any, priority: int = 999) -> Any:
        return self._decorator(self.add_middleware, name, args, priority)

    def on_worker_start(self, *args: Any, priority: int = 999) -> Any:
        return self.hook("worker_start", *args, priority=priority)

    def on_worker_stop(self, *args: Any, priority: int = 999) -> Any:
        return self.hook("worker_stop", *args, priority=priority)

    def on_connect(self, *args: Any, priority: int = 999) -> Any:
        return self.hook("connect", *args, priority=priority)

    def on_close(self, *args: Any, priority: int = 999) -> Any:
        return self.hook("close", *args, priority=priority)

    def on_request(self, *args: Any, priority: int = 999) -> Any:
        return self.middleware("request", *args, priority=priority)

    def on_response(self, *args: Any, priority: int = 999) -> Any:
        return self.middleware("response", *args, priority=priority)

    # -- composition ---------------------------------------------------------

    def mount(self, prefix: str, app: App) -> None:
        """Serves `app`'s routes under `prefix`, with its middlewares (when it has
        any, they replace this application's for paths under `prefix`); its hooks
        and listeners join this application's once, however often it is mounted.
        Mounting the same application at the same prefix again does nothing."""
        if not isinstance(prefix, str) or not prefix.startswith("/") or len(prefix) > 255:
            raise ValueError("a mount prefix starts with '/' and is at most 255 long")
        if app is self or not isinstance(app, App):
            raise ValueError("mount takes another Tremolo application")
        base = normalize(prefix)
        base = b"" if base == b"/" else base
        if (id(app), base) in self._mounts:
            return
        self._mounts.add((id(app), base))
        app.mounted_in = self
        self.router.merge(app.router, base)
        self.error_handlers = {**app.error_handlers, **self.error_handlers}
        parts = tuple(p for p in base.split(b"/") if p)
        for point, group in app.middlewares.items():
            for name, items in group.items():
                for r in items:
                    self.add_middleware(r.handler.func, name, r.priority,
                                        prefix=parts + point)
        if id(app) in self._joined:
            return
        self._joined.add(id(app))
        for name, hooks in app.hooks.items():
            for h in hooks:
                self.add_hook(h.handler.func, name, h.priority)
        for address, options in app.listeners:
            self.listen_at(address, **options)

    # -- serving -------------------------------------------------------------

    def listen(self, port: int | str, host: str | None = None, **options: Any) -> bool:
        """Adds a listener: a TCP port (host None: the run() host), or a UNIX socket
        path given as `port`. Options here override run()'s for this listener."""
        return self.listen_at(Address.listen(port, host), **options)

    def listen_at(self, address: Address, **options: Any) -> bool:
        """Adds a listener at `address`, unless it is one already."""
        if any(a == address for a, _ in self.listeners):
            return False
        self.listeners.append((address, options))
        return True

    def make_adapter(self, state: Any) -> Any:
        from .native import NativeAdapter
        return NativeAdapter(self, state)
