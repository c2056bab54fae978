"""Routes: static paths, regular expressions, and class-based views.

A static path matches with or without a trailing slash and with any query string.
A path starting with `^` or ending with `$` is a regular expression matched against
the request target (path and query); `$` also matches at the end of the path. Its
named groups reach the handler as keyword arguments and as `request.params.path`.
Later registrations win.
"""

from __future__ import annotations

import copy
import inspect
import re
import types
from collections.abc import Callable
from typing import Any

#: Keyword arguments the server itself provides to handlers.
SERVER_ARGS = ("request", "response", "app", "loop", "logger", "globals", "context", "lock")
#: The route options the server reads (native.py and here); any other reaches
#: `request.ctx.options` (and a class view's `__init__`) for the application's code.
ROUTE_OPTIONS = ("methods", "status", "content_type", "chunked", "rate", "sse", "websocket")
HTTP_METHODS = ("get", "head", "post", "put", "delete", "patch", "options", "trace", "connect")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class Handler:
    """A callable with what we learned from its signature once, at registration."""

    __slots__ = ("func", "is_async", "is_coroutine", "options", "takes_all", "wants")

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.is_async = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
        self.is_coroutine = inspect.iscoroutinefunction(func)
        params = list(inspect.signature(func).parameters.values())
        self.takes_all = any(p.kind is p.VAR_KEYWORD for p in params)
        self.wants = frozenset(p.name for p in params
                               if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        # keyword defaults are per-route options (status, content_type, rate, ...)
        self.options = {p.name: p.default for p in params
                        if p.default is not p.empty and p.name not in SERVER_ARGS}

    def kwargs(self, server: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments to call with: the server objects it takes, then
        `extra` (regex groups) where the names do not clash with them."""
        if self.takes_all:
            args = dict(server)
            for k, v in extra.items():
                args.setdefault(k, v)
            return args
        args = {k: v for k, v in server.items() if k in self.wants}
        for k, v in extra.items():
            if k in self.wants and k not in args:
                args[k] = v
        return args


def allowed_methods(value: Any) -> frozenset[bytes]:
    """The `methods=` route option: method names (str or bytes, any case), as the
    uppercase bytes a request's method is compared with."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise ValueError(f"methods= takes a list of HTTP methods, e.g. methods=['GET', "
                         f"'POST'], not {value!r}")
    if not value:
        raise ValueError("methods= is empty: the route would answer nothing but 405")
    names = set()
    for name in value:
        if name in ("*", b"*"):
            raise ValueError("'*' in methods= is not a method: leave methods= out for a "
                             "route that serves every method")
        raw = name.encode("latin-1", "replace") if isinstance(name, str) else name
        if not isinstance(raw, bytes) or not _TOKEN.fullmatch(raw):
            raise ValueError(f"{name!r} in methods= is not an HTTP method name")
        names.add(raw.upper())
    return frozenset(names)


class Route:
    """What a path leads to: one handler for every method (or for those `methods=`
    allows), or a view with one handler per method."""

    __slots__ = ("handler", "merged", "methods", "only", "options", "pattern", "plain",
                 "view")

    def __init__(self, target: Any, options: dict[str, Any],
                 pattern: re.Pattern[bytes] | None = None) -> None:
        self.pattern = pattern
        self.view: Any = None
        self.handler: Handler | None = None
        self.methods: dict[bytes, Handler] = {}
        #: the methods a function route serves (None: every one)
        self.only: frozenset[bytes] | None = None
        is_view = isinstance(target, (type, types.ModuleType)) or not callable(target)
        if "methods" in options:
            if is_view:
                raise ValueError(f"methods= is for a function route; {target!r} serves the "
                                 "methods it has functions for (get, post, ...)")
            options = dict(options)
            self.only = allowed_methods(options.pop("methods"))
        self.options = options
        if is_view:
            self.view = target
            for name in HTTP_METHODS:
                func = getattr(target, name, None)
                if callable(func):
                    self.methods[name.upper().encode()] = Handler(func)
            if not self.methods:
                raise ValueError(f"{target!r} has no method named after an HTTP method")
        else:
            self.handler = Handler(target)
        # the route's options with each handler's own defaults, merged once here
        handlers = [self.handler] if self.handler is not None else list(self.methods.values())
        self.merged = {h: {**options, **h.options} for h in handlers}
        #: the handler, when nothing but calling it is needed: a coroutine function
        #: for every method, without options (see NativeAdapter.handle)
        self.plain = self.handler if (
            self.handler is not None and self.handler.is_coroutine and pattern is None
            and not self.merged[self.handler] and self.only is None) else None

    def allowed(self) -> bytes:
        """The Allow field of its 405: HEAD wherever GET is (GET serves it)."""
        names = set(self.methods if self.only is None else self.only)
        if b"GET" in names:
            names.add(b"HEAD")
        return b", ".join(sorted(names))

    def resolve(self, method: bytes) -> tuple[Handler | None, Any]:
        """(handler, bound instance) for a method; (None, None) when not allowed."""
        if self.handler is not None:
            only = self.only
            if only is None or method in only or (method == b"HEAD" and b"GET" in only):
                return self.handler, None
            return None, None
        h = self.methods.get(method) or (self.methods.get(b"GET") if method == b"HEAD"
                                          else None)
        if h is None:
            return None, None
        if isinstance(self.view, type):
            # a class: one instance per request, given the route's options
            return h, self.view(**self.options)
        return h, self.view if not isinstance(self.view, types.ModuleType) else None


def is_regex(path: str) -> bool:
    return path.startswith("^") or path.endswith("$")


def compile_pattern(path: str) -> re.Pattern[bytes]:
    raw = path.encode("latin-1")
    if raw.endswith(b"$"):
        # `$` ends the path; a query string may follow
        raw = raw[:-1] + rb"(?:\?.*)?$"
    return re.compile(raw)


def normalize(path: str | bytes) -> bytes:
    key = path.encode("latin-1") if isinstance(path, str) else path
    key = key.split(b"?", 1)[0]
    return key.rstrip(b"/") or b"/"


class Router:
    def __init__(self) -> None:
        self.static: dict[bytes, Route] = {}
        self.regex: list[Route] = []  # newest first
        #: changes with every route added (and, from the App, every hook or
        #: middleware): what was learned of the routes before is out of date
        self.version = 0

    def add(self, target: Any, path: str = "/", options: dict[str, Any] | None = None,
            **more: Any) -> Route:
        """Routes `path` to `target` with `options` (and `more` options): also the
        original's `app.routes.add(func, path, kwargs, **options)`."""
        if not isinstance(path, str) or not path:
            raise ValueError("a route path must be a non-empty str")
        options = {**(options or {}), **more}
        self.version += 1
        if is_regex(path):
            route = Route(target, options, compile_pattern(path))
            self.regex.insert(0, route)
        else:
            route = Route(target, options)
            self.static[normalize(path)] = route
        return route

    def find(self, target: bytes) -> tuple[Route | None, dict[str, Any], Any]:
        """The route for `target`, its named groups (the handler's keyword
        arguments), and `request.params.path`: the named groups, or the unnamed
        ones as a tuple when there are no names (as the original)."""
        path = target.partition(b"?")[0]
        route = self.static.get(path)
        if route is None and len(path) > 1:
            route = self.static.get(path.rstrip(b"/") or b"/")
        if route is not None:
            return route, {}, None
        for route in self.regex:
            assert route.pattern is not None
            m = route.pattern.search(target)
            if m is not None:
                named = m.groupdict()
                return route, named, named or m.groups()
        return None, {}, None

    def merge(self, other: Router, prefix: bytes) -> None:
        """Adds `other`'s routes under `prefix` (for mount)."""
        self.version += 1
        for path, route in other.static.items():
            self.static[normalize(prefix + (path if path != b"/" else b""))] = route
        for route in reversed(other.regex):
            assert route.pattern is not None
            source = route.pattern.pattern.lstrip(b"^")
            if not source.startswith(b"/"):
                source = b"/.*" + source
            # a copy: the same application may be mounted at other prefixes too
            mounted = copy.copy(route)
            mounted.pattern = re.compile(b"^" + re.escape(prefix) + source)
            self.regex.insert(0, mounted)
