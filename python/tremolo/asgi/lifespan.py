"""The ASGI lifespan protocol: startup before serving, shutdown after."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

ASGI = {"version": "3.0", "spec_version": "2.4"}


class LifespanFailed(RuntimeError):
    """The application said its startup failed: the server must not serve it."""


class Lifespan:
    def __init__(self, app: Any, logger: logging.Logger, timeout: float,
                 mode: str = "auto") -> None:
        #: auto: used when the application supports it; on: required; off: not used
        self.mode = mode
        self.app = app
        self.logger = logger
        self.timeout = timeout
        self.state: dict[str, Any] = {}
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[Any] | None = None
        self.supported = True

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": dict(ASGI), "state": self.state}
        try:
            await self.app(scope, self.inbox.get, self._send)
        except BaseException as exc:
            if self.outbox.empty():
                # no lifespan support: serve without it, as the spec allows
                self.supported = False
                self.logger.debug("the application does not support lifespan (%r)", exc)
                await self.outbox.put({"type": "lifespan.unsupported"})
            raise
        finally:
            if self.outbox.empty():
                await self.outbox.put({"type": "lifespan.unsupported"})

    async def _send(self, message: dict[str, Any]) -> None:
        await self.outbox.put(message)

    async def startup(self) -> None:
        if self.mode == "off":
            self.supported = False
            return
        self.task = asyncio.get_running_loop().create_task(self._run())
        self.task.add_done_callback(lambda t: t.cancelled() or t.exception())
        await self.inbox.put({"type": "lifespan.startup"})
        message = await asyncio.wait_for(self.outbox.get(), self.timeout)
        kind = message["type"]
        if kind == "lifespan.startup.failed":
            raise LifespanFailed(message.get("message") or "startup failed")
        if kind == "lifespan.unsupported":
            if self.mode == "on":
                raise LifespanFailed("the application does not support the lifespan "
                                     "protocol (--lifespan on requires it)")
            return
        if kind != "lifespan.startup.complete":
            raise LifespanFailed(f"unexpected lifespan message {kind!r}")

    async def shutdown(self) -> None:
        if not self.supported or self.task is None or self.task.done():
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        try:
            message = await asyncio.wait_for(self.outbox.get(), self.timeout)
        except TimeoutError:
            self.logger.error("the application did not finish its shutdown in %ss",
                              self.timeout)
            self.task.cancel()
            return
        if message["type"] == "lifespan.shutdown.failed":
            self.logger.error("application shutdown failed: %s", message.get("message", ""))
