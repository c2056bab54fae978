"""The original's context classes: `globals` (WorkerContext) and `request.ctx`
(RequestContext) are tremolo's Context, a dict whose keys read as attributes."""

from ..framework.context import Context

WorkerContext = Context
RequestContext = Context

__all__ = ["RequestContext", "WorkerContext"]
