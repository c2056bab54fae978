"""Finding the application a command line names, and telling what it is: a Tremolo
application, an ASGI 3 application or a WSGI one."""

from __future__ import annotations

import importlib
import inspect
import os
import reprlib
import runpy
import sys
import sysconfig
import traceback
from collections.abc import Callable
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
    # none of them for a SyntaxError: where it is is in the exception itself
    trace = "".join(traceback.format_list(frames[own[0]:])) if own else ""
    if trace:
        trace = f"Traceback (most recent call last):\n{trace}"
    trace += "".join(traceback.format_exception_only(type(exc), exc))
    return f"importing {module_name!r} failed:\n{trace}"


def _locate(spec: str, app_dir: str | None) -> tuple[str, str, str, bool]:
    """(directory, module name, attribute, whether APP names a file) of a spec."""
    path, sep, attr = spec.rpartition(":")
    if not sep or (os.sep in attr or attr.endswith(".py")):
        path, attr = spec, "app"
    if path.endswith(".py") or os.sep in path:
        directory, filename = os.path.split(os.path.abspath(path))
        return directory, os.path.splitext(filename)[0], attr, True
    return os.path.abspath(app_dir or os.getcwd()), path, attr, False


def load_app(spec: str, *, factory: bool = False, app_dir: str | None = None) -> Any:
    """`module:attr`, `module` (attr `app`), `package.module:attr.sub`, or a file path
    with an optional `:attr`. With `factory`, the attribute is called to make the app."""
    directory, module_name, attr, is_file = _locate(spec, app_dir)
    if not attr:
        raise AppLoadError(f"{spec!r}: no attribute after ':'")
    if is_file and not os.path.isfile(os.path.join(directory, module_name + ".py")):
        raise AppLoadError(f"no such file: {spec.rpartition(':')[0] or spec}")
    if sys.path[:1] != [directory]:
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
        kind = type(target).__name__
        raise AppLoadError(f"{spec} is {'an' if kind[0] in 'aeiouAEIOU' else 'a'} {kind} "
                           f"({reprlib.repr(target)}), not an application{hint}")
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


# -- importing the code again (a reload: SIGHUP) ---------------------------------

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def forget_modules(directory: str) -> list[str]:
    """Forgets the modules imported from `directory` (the application's own code:
    not the standard library, the installed packages, or tremolo), so that the next
    import reads their files again. Returns their names."""
    base = os.path.abspath(directory) + os.sep
    libraries = {os.path.abspath(p) + os.sep for p in
                 (sysconfig.get_path(k) for k in ("stdlib", "platstdlib", "purelib",
                                                  "platlib")) if p}
    gone = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or name in ("__main__", "__mp_main__") or not path.endswith(".py"):
            continue
        path = os.path.abspath(path)
        if not path.startswith(base) or path.startswith(_PACKAGE_DIR) \
                or any(path.startswith(lib) for lib in libraries) \
                or f"{os.sep}site-packages{os.sep}" in path:
            continue
        del sys.modules[name]
        gone.append(name)
    importlib.invalidate_caches()
    return gone


def reimporter(spec: str, *, factory: bool, app_dir: str | None,
               make: Callable[[Any], Any]) -> Callable[[], Any]:
    """What a new worker of a rollout (SIGHUP) calls: imports APP's code again (the
    modules of its directory) and makes the adapter factory from the new app."""
    directory = _locate(spec, app_dir)[0]

    def renew() -> Any:
        forget_modules(directory)
        return make(load_app(spec, factory=factory, app_dir=app_dir))
    return renew


class Rerun(BaseException):
    """Raised by Tremolo.run() while a script is run again for a reload: the app it
    was called on is the new application (the rest of the script is not run).
    A BaseException, so that the script's own `except Exception` lets it through."""

    def __init__(self, app: Any) -> None:
        super().__init__("the application was found")
        self.app = app


_rerunning: list[bool] = []


def rerunning() -> bool:
    """Whether a script is being run again to find its application (see Rerun)."""
    return bool(_rerunning)


def script_rerunner() -> Callable[[], App] | None:
    """For an app started by `app.run()` in a script: what a new worker calls after a
    reload, running the script again (as __main__, its code imported again) up to
    its app.run(). None when there is no script to run again (an interactive
    session, python -c)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not os.path.isfile(path):
        return None
    path = os.path.abspath(path)

    def renew() -> App:
        forget_modules(os.path.dirname(path))
        _rerunning.append(True)
        try:
            runpy.run_path(path, run_name="__main__")
        except Rerun as found:
            return found.app  # type: ignore[no-any-return]
        except BaseException as exc:
            raise AppLoadError(_failure(path, exc)) from exc
        finally:
            _rerunning.clear()
        raise AppLoadError(f"{path} ran to its end without calling app.run()")
    return renew
