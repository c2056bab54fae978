"""Finding the application a command line names, and telling what it is: a Tremolo
application, an ASGI 3 application or a WSGI one."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from typing import Any

from .framework import App

INTERFACES = ("auto", "tremolo", "asgi", "asgi3", "wsgi")


class AppLoadError(Exception):
    """APP could not be imported, found or understood; the message says why."""


def _import(module_name: str, directory: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name or module_name.startswith(f"{exc.name}."):
            raise AppLoadError(f"no module named {module_name!r} in {directory} or the "
                               "installed packages (--app-dir names another directory)"
                               ) from None
        raise AppLoadError(_failure(module_name, exc)) from exc
    except BaseException as exc:  # SyntaxError, a KeyError at import time, SystemExit...
        raise AppLoadError(_failure(module_name, exc)) from exc


def _failure(module_name: str, exc: BaseException) -> str:
    """Importing failed inside the application: the whole traceback, from the first
    frame of the application's own code, so the file and line are there."""
    frames = list(traceback.extract_tb(exc.__traceback__))
    own = [i for i, f in enumerate(frames)
           if f.filename != __file__ and not f.filename.startswith("<frozen")
           and "importlib" not in f.filename]
    if own:
        frames = frames[own[0]:]
    lines = "".join(traceback.format_list(frames))
    lines += "".join(traceback.format_exception_only(type(exc), exc))
    return f"importing {module_name!r} failed:\nTraceback (most recent call last):\n{lines}"


def load_app(spec: str, *, factory: bool = False, app_dir: str | None = None) -> Any:
    """`module:attr`, `module` (attr `app`), `package.module:attr.sub`, or a file path
    with an optional `:attr`. With `factory`, the attribute is called to make the app."""
    path, sep, attr = spec.rpartition(":")
    if not sep or (os.sep in attr or attr.endswith(".py")):
        path, attr = spec, "app"
    if not attr:
        raise AppLoadError(f"{spec!r}: no attribute after ':'")
    if path.endswith(".py") or os.sep in path:
        directory, filename = os.path.split(os.path.abspath(path))
        if not os.path.isfile(os.path.join(directory, filename)):
            raise AppLoadError(f"no such file: {path}")
        module_name = os.path.splitext(filename)[0]
    else:
        directory = os.path.abspath(app_dir or os.getcwd())
        module_name = path
    sys.path.insert(0, directory)
    if not module_name:
        raise AppLoadError(f"{spec!r}: no module before ':'")
    target: Any = _import(module_name, directory)
    for name in attr.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise AppLoadError(f"module {module_name!r} has no attribute {attr!r}") from None
    if factory:
        if not callable(target):
            raise AppLoadError(f"{spec} is not callable: --factory needs a function")
        try:
            target = target()
        except Exception as exc:
            raise AppLoadError(_failure(f"{spec}()", exc)) from exc
    if not callable(target) and not isinstance(target, App):
        hint = " (is it a factory? then --factory)" if inspect.isfunction(target) else ""
        raise AppLoadError(f"{spec} is a {type(target).__name__}, not an application{hint}")
    return target


def _positional(func: Any) -> int | None:
    """How many positional arguments a call takes, or None when it cannot be told."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def detect_interface(app: Any) -> str:
    """'tremolo', 'asgi' or 'wsgi'. An async callable (or an object whose __call__ is
    async) is ASGI; otherwise the number of arguments says it: three (scope, receive,
    send) is ASGI, two (environ, start_response) is WSGI. AppLoadError explains what
    cannot be told."""
    if isinstance(app, App):
        return "tremolo"
    if inspect.isclass(app):
        raise AppLoadError(f"{app.__name__} is a class, not an application: pass an instance "
                           "(module:app), or --factory if calling it makes the app "
                           "(ASGI 2 single-callable classes are not supported)")
    if inspect.iscoroutinefunction(app):
        return "asgi"
    call = inspect.getattr_static(type(app), "__call__", None)
    if inspect.iscoroutinefunction(call):
        return "asgi"  # Starlette, FastAPI, Django's ASGIHandler
    count = _positional(app)
    if count == 3:
        return "asgi"  # a plain function returning a coroutine, a wrapper, a partial
    if count == 2:
        return "wsgi"
    raise AppLoadError(f"cannot tell whether {app!r} is an ASGI or a WSGI application "
                       f"(its call takes {'any number of' if count is None else count} "
                       "positional arguments): say --interface asgi or --interface wsgi")
