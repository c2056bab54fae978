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
        each port with SO_REUSEPORT."""
        from .supervisor import serve

        opts = Options.from_kwargs({"host": host, "port": port, "worker_num": worker_num,
                                    **options})
        serve(self.make_adapter, opts, self.listeners, ServerLock.create(opts.locks),
              what=f"{self.name or 'the application'} (Tremolo)")


Application = Tremolo
