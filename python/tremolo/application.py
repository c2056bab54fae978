"""`Tremolo`: the native framework's application with `run()`, which starts the
process supervisor. It lives above the framework so that the framework never imports
the layers that run it."""

from __future__ import annotations

from typing import Any

from .config import Options
from .framework import App
from .locks import ServerLock

__all__ = ["Application", "Tremolo"]


class Tremolo(App):
    """A web application: routes, hooks and middlewares (see `App`), and `run()`."""

    def run(self, host: str | None = None, port: int = 0, *, worker_num: int = 1,
            **options: Any) -> None:
        """Serves until interrupted (Ctrl-C or SIGTERM), draining in-flight requests.

        worker_num=0 serves in this process; N starts N worker processes sharing
        each port with SO_REUSEPORT. reload=True (with reload_dirs, reload_includes,
        reload_excludes) restarts the program when its code changes."""
        from . import loading, logs, reload
        from .supervisor import serve

        if self.mounted_in is not None:
            raise RuntimeError("cannot run this application: it is mounted in another; "
                               "run that one")
        if host is None and not self.listeners:
            raise ValueError("with host=None, app.listen() must be called first (or give "
                             "run() a host, e.g. app.run('127.0.0.1', 8000))")
        if loading.rerunning():
            raise loading.Rerun(self)  # a new worker runs the script again (SIGHUP)

        watching = options.pop("reload", False)
        dirs = options.pop("reload_dirs", ())
        includes = options.pop("reload_includes", ())
        excludes = options.pop("reload_excludes", reload.DEFAULT_EXCLUDES)
        opts = Options.from_kwargs({"host": host, "port": port, "worker_num": worker_num,
                                    **options})
        if watching and not reload.is_child():
            # this process watches; a copy of the program serves, and is replaced
            # when a watched file changes
            logs.configure(opts.log_level, opts.log_fmt, opts.log_config)
            argv, env = reload.child_argv(), dict[str, str]()
            if reload.started_by_multiprocessing():
                argv, env = reload.app_command(self, {
                    "host": host, "port": port, "worker_num": worker_num, "reload": True,
                    "reload_dirs": dirs, "reload_includes": includes,
                    "reload_excludes": excludes, **options})
            raise SystemExit(reload.run(argv, reload.Watch(dirs, includes, excludes), env))
        rerun = loading.script_reloader()
        # host=None: the listeners alone (as the original)
        serve(self.make_adapter, opts, self.listeners, ServerLock.create(opts.locks),
              primary=host is not None,
              what=f"{self.name or 'the application'} (Tremolo)",
              renew=None if rerun is None else lambda: rerun().make_adapter)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # An application held by a module is pickled as that module's variable (a
        # multiprocessing child then imports it, routes and all, instead of getting
        # a copy made of its pieces).
        from .reload import locate, variable

        where = locate(self)
        if where is None:
            return super().__reduce_ex__(protocol)
        return variable, where


Application = Tremolo
