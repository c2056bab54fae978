"""Reloading on code changes, for development: a watching process runs the server as a
child and starts a new one when a watched file changes. A change that does not
compile (a syntax error) is logged and the running server keeps serving the old code.

Files are watched with watchfiles when it is installed, else by polling their times.
"""

from __future__ import annotations

import base64
import fnmatch
import importlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .logs import SERVER

logger = logging.getLogger(SERVER)
#: set in the child's environment: the child serves instead of watching
CHILD = "TREMOLO_RELOAD_CHILD"
DEFAULT_INCLUDES = ("*.py",)
DEFAULT_EXCLUDES = (".*", "*~", "__pycache__", "*.pyc", ".git", "node_modules")
POLL_SECONDS = 0.5


def is_child() -> bool:
    return os.environ.get(CHILD) == "1"


class Watch:
    """Which files count: under `dirs`, matching an include, no part matching an
    exclude."""

    def __init__(self, dirs: Sequence[str], includes: Sequence[str],
                 excludes: Sequence[str]) -> None:
        self.dirs = [Path(d).resolve() for d in dirs] or [Path.cwd()]
        for d in self.dirs:
            if not d.is_dir():
                raise ValueError(f"reload_dirs: {str(d)!r} is not a directory")
        self.includes = tuple(includes) or DEFAULT_INCLUDES
        self.excludes = tuple(excludes)

    def wanted(self, path: Path) -> bool:
        if any(fnmatch.fnmatch(part, pattern) for part in path.parts
               for pattern in self.excludes):
            return False
        return any(fnmatch.fnmatch(path.name, pattern) for pattern in self.includes)

    def files(self) -> Iterator[Path]:
        for top in self.dirs:
            for root, dirs, names in os.walk(top):
                dirs[:] = [d for d in dirs
                           if not any(fnmatch.fnmatch(d, p) for p in self.excludes)]
                for name in names:
                    path = Path(root, name)
                    if self.wanted(path):
                        yield path

    def snapshot(self) -> dict[Path, float]:
        out = {}
        for path in self.files():
            try:
                out[path] = path.stat().st_mtime
            except OSError:
                continue
        return out

    def changes(self, stop: threading.Event) -> Iterator[set[Path]]:
        """Sets of changed files, until `stop` is set."""
        try:
            import watchfiles
        except ImportError:
            yield from self._poll(stop)
            return

        def keep(_: object, path: str) -> bool:
            return self.wanted(Path(path))
        for batch in watchfiles.watch(*self.dirs, watch_filter=keep, stop_event=stop,
                                      yield_on_timeout=False, rust_timeout=500):
            yield {Path(p) for _, p in batch}

    def _poll(self, stop: threading.Event) -> Iterator[set[Path]]:
        before = self.snapshot()
        while not stop.wait(POLL_SECONDS):
            now = self.snapshot()
            changed = {p for p in before.keys() | now.keys() if before.get(p) != now.get(p)}
            before = now
            if changed:
                yield changed


def compiles(paths: set[Path]) -> str | None:
    """None when every changed Python file compiles; else the error to show."""
    for path in sorted(paths):
        if path.suffix != ".py" or not path.exists():
            continue
        try:
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
        except OSError:
            continue  # gone or unreadable: the new server will say so
    return None


def run(argv: list[str], watch: Watch, env_extra: dict[str, str] | None = None) -> int:
    """Runs `argv` as the serving child and restarts it on changes until SIGINT or
    SIGTERM; the exit code is the last child's."""
    stop = threading.Event()
    env = {**os.environ, CHILD: "1", **(env_extra or {})}

    def start() -> subprocess.Popen[bytes]:
        # In a process group of its own: CTRL+C reaches the watcher alone, which then
        # stops the server with one SIGTERM (a graceful stop; a second signal would
        # force it). It still goes when the watcher dies (PR_SET_PDEATHSIG on Linux).
        return subprocess.Popen(argv, env=env, process_group=0, preexec_fn=_die_with_parent)
    child = start()

    def finish(signum: int, _frame: object) -> None:
        stop.set()

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)  # SIGHUP: the server reloads as it would without us
    first = child

    def refused() -> None:
        # a first child that refuses its settings (exit 2: a bad flag, a port in use)
        # is not mended by editing the code: the watcher ends too, instead of waiting
        if first.wait() == 2 and child is first:
            stop.set()
    threading.Thread(target=refused, daemon=True).start()
    previous = {sig: signal.signal(sig, finish) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, forward)
    logger.info("reloading on changes to %s in %s", ", ".join(watch.includes),
                ", ".join(map(str, watch.dirs)))
    try:
        for changed in watch.changes(stop):
            names = ", ".join(sorted(str(p.relative_to(Path.cwd())) if p.is_relative_to(
                Path.cwd()) else str(p) for p in changed))
            error = compiles(changed)
            if error is not None:
                logger.error("not reloading: %s does not compile (the old code keeps "
                             "serving):\n%s", names, error)
                continue
            logger.info("%s changed: reloading", names)
            _stop(child)
            child = start()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop(child)
    return child.returncode or 0


def _die_with_parent() -> None:
    if sys.platform == "linux":
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(60)  # its own shutdown_timeout bounds it
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(5)


def child_argv() -> list[str]:
    """The command that started this process, to run again as the child."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:  # python -m module
        name = spec.name.removesuffix(".__main__")
        return [sys.executable, "-m", name, *sys.argv[1:]]
    return [sys.executable, *sys.argv]


def started_by_multiprocessing() -> bool:
    """This process is a multiprocessing child (its sys.argv is its parent's, so
    running that again would start the parent's program)."""
    import multiprocessing

    return multiprocessing.parent_process() is not None


def locate(obj: object) -> tuple[str, str] | None:
    """(module, attribute) under which `obj` is reachable in an importable module."""
    for name, module in list(sys.modules.items()):
        if name in ("__main__", "__mp_main__") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is obj:
                return name, attr
    return None


def variable(module: str, attr: str) -> Any:
    """What `locate` found: `attr` of `module`, imported (again, in another process)."""
    return getattr(importlib.import_module(module), attr)


def app_command(app: object, args: dict[str, object]) -> tuple[list[str], dict[str, str]]:
    """The child that serves `app.run(**args)` when this process cannot be run
    again as a program: it imports the module that holds `app` (on this process's
    sys.path) and calls run() there; ValueError when no module holds it."""
    where = locate(app)
    if where is None:
        raise ValueError("reload=True in a process started by multiprocessing needs the "
                         "application in an importable module (a module-level variable), "
                         "so that the reloaded server can import it again")
    payload = base64.b64encode(pickle.dumps((sys.path, where, args))).decode()
    return ([sys.executable, "-c", "from tremolo.autoreload import serve_app; serve_app()"],
            {APP: payload})


#: set in the child's environment by app_command: what serve_app() runs
APP = "TREMOLO_RELOAD_APP"


def serve_app() -> None:
    """The child of app_command."""
    path, (module, attr), args = pickle.loads(base64.b64decode(os.environ.pop(APP)))
    sys.path[:] = path
    variable(module, attr).run(**args)
