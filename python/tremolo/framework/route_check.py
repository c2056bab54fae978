"""What is checked of an application's routes when a worker starts: route options
that nothing reads are logged, one line per route, so that a misspelt one
(`metods=` for `methods=`) does not pass in silence.

An option is read when the server reads it (routing.ROUTE_OPTIONS), when a class
view's `__init__` takes it (options are its arguments), or when the application's
code may read it from `request.ctx.options`: the handler declares it as a keyword
parameter, or its code or a middleware's names it (`options['lang']`,
`options.lang`). A name close to one the server reads is logged however it is
named elsewhere (`method=`, while handlers use `request.method`)."""

from __future__ import annotations

import difflib
import inspect
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .routing import ROUTE_OPTIONS

if TYPE_CHECKING:
    import logging

    from .app import App
    from .routing import Route


def log_unread_options(app: App, logger: logging.Logger) -> None:
    """Logs a warning for each route with options that nothing reads."""
    named = set[str]().union(*(_names(r.handler.func) for group in app.middlewares.values()
                               for items in group.values() for r in items))
    seen: set[int] = set()
    for where, route in _routes(app):
        if id(route) in seen:
            continue  # (one route mounted at several prefixes)
        seen.add(id(route))
        unread = [name for name in route.options if not _is_read(route, name, named)]
        if not unread:
            continue
        listed = ", ".join(map(_describe, unread))
        some = "option" if len(unread) == 1 else "options"
        if isinstance(route.view, type):
            logger.warning("route %s: %s %s: %s() does not take it, and each request "
                           "to it fails", where, some, listed, route.view.__name__)
        else:
            logger.warning("route %s: %s %s: read by nothing (the server reads %s; a "
                           "handler or middleware reads its own from request.ctx.options)",
                           where, some, listed, ", ".join(ROUTE_OPTIONS))


def _routes(app: App) -> Iterator[tuple[str, Route]]:
    router = app.router
    for path, route in router.static.items():
        yield path.decode("latin-1"), route
    for route in router.regex:
        assert route.pattern is not None
        yield route.pattern.pattern.decode("latin-1"), route


def _is_read(route: Route, name: str, named: set[str]) -> bool:
    if name in ROUTE_OPTIONS:
        return True
    if isinstance(route.view, type):
        return _takes(route.view, name)
    if _near_miss(name) is not None:
        return False
    handlers = [route.handler] if route.handler is not None else list(route.methods.values())
    return any(name in h.wants or name in _names(h.func) for h in handlers) \
        or name in named


def _takes(view: type, name: str) -> bool:
    """Whether the class's `__init__` (made with the options) takes `name`."""
    try:
        params = inspect.signature(view).parameters.values()
    except (TypeError, ValueError):
        return True  # (a signature Python cannot tell: not ours to judge)
    return any(p.kind is p.VAR_KEYWORD or (p.name == name and p.kind in (
        p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)) for p in params)


def _near_miss(name: str) -> str | None:
    close = difflib.get_close_matches(name, ROUTE_OPTIONS, n=1, cutoff=0.8)
    return close[0] if close else None


def _describe(name: str) -> str:
    close = _near_miss(name)
    return f"{name!r} (did you mean {close!r}?)" if close else repr(name)


def _names(func: Any) -> set[str]:
    """The names and strings in a function's code and in the code nested in it."""
    func = inspect.unwrap(getattr(func, "__func__", func))
    code = getattr(func, "__code__", None)
    out: set[str] = set()
    todo = [code] if isinstance(code, types.CodeType) else []
    while todo:
        c = todo.pop()
        out.update(c.co_names)
        for const in c.co_consts:
            if isinstance(const, str):
                out.add(const)
            elif isinstance(const, types.CodeType):
                todo.append(const)
    return out
