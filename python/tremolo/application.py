"""`Tremolo`: the native framework's application with `run()`, which starts the
process supervisor. It lives above the framework so that the framework never imports
the layers that run it."""

from __future__ import annotations

import sys
from typing import Any

from .config import ConfigError, Options
from .framework import App

__all__ = ["Application", "Tremolo"]


class Tremolo(App):
    """A web application: routes, hooks and middlewares (see `App`), and `run()`."""

    def run(self, host: str | None = None, port: int = 8000, *, worker_num: int = 1,
            **options: Any) -> None:
        """Serves until interrupted (Ctrl-C or SIGTERM), draining in-flight requests.

        worker_num=0 serves in this process; N starts N worker processes sharing
        each port with SO_REUSEPORT. port is 8000 unless given, as on the command
        line (the original's was 0: any free port). reload=True (with reload_dirs,
        reload_includes, reload_excludes) restarts the program when its code
        changes. A setting that cannot work (a bad value, a port in use) ends the
        program with one line that names it, exit 2, as on the command line."""
        from . import loading

        if self.mounted_in is not None:
            raise RuntimeError("cannot run this application: it is mounted in another; "
                               "run that one")
        if host is None and not self.listeners:
            raise ValueError("with host=None, app.listen() must be called first (or give "
                             "run() a host, e.g. app.run('127.0.0.1', 8000))")
        if loading.rerunning():
            raise loading.Rerun(self)  # a new worker runs the script again (SIGHUP)
        try:
            self._run(host, {"port": port, "worker_num": worker_num, **options})
        except ConfigError as exc:
            # the fault is the setting's, not the program's: no traceback
            print(f"tremolo: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    def _run(self, host: str | None, options: dict[str, Any]) -> None:
        from . import autoreload, launch, loading

        watching = options.pop("reload", False)
        dirs = options.pop("reload_dirs", ())
        includes = options.pop("reload_includes", ())
        excludes = options.pop("reload_excludes", autoreload.DEFAULT_EXCLUDES)
        opts = Options.from_kwargs({"host": host, **options})
        if watching and not autoreload.is_child():
            # this process watches; a copy of the program serves, and is replaced
            # when a watched file changes
            argv, env = autoreload.child_argv(), dict[str, str]()
            if autoreload.started_by_multiprocessing():
                argv, env = autoreload.app_command(self, {
                    "host": host, "reload": True, "reload_dirs": dirs,
                    "reload_includes": includes, "reload_excludes": excludes, **options})
            raise SystemExit(launch.restart_on_change(
                autoreload.Watch(dirs, includes, excludes), argv, opts.log_level,
                opts.log_fmt, opts.log_config, env))
        rerun = loading.script_rerunner()
        # host=None: the listeners alone (as the original)
        launch.start(self.make_adapter, opts, self.listeners, primary=host is not None,
                     what=f"{self.name or _program()} (Tremolo)",
                     renew=None if rerun is None else lambda: rerun().make_adapter)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # An application held by a module is pickled as that module's variable (a
        # multiprocessing child then imports it, routes and all, instead of getting
        # a copy made of its pieces).
        from .autoreload import locate, variable

        where = locate(self)
        if where is None:
            return super().__reduce_ex__(protocol)
        return variable, where


def _program() -> str:
    """What the start line calls an application without a name: its program."""
    import os

    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "the application"


Application = Tremolo
