"""`KeepAliveConnections`: a mapping that keeps at most `maxlen` entries, dropping
the oldest, as the original's (tremolo bounds idle keep-alive connections with
the `keepalive_connections` option in its server state instead)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["KeepAliveConnections"]


class KeepAliveConnections(OrderedDict[Any, Any]):
    def __init__(self, *args: Any, maxlen: int = 512, **kwargs: Any) -> None:
        if isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1:
            raise ValueError(f"maxlen must be a positive integer, not {maxlen!r}")
        self.maxlen = maxlen
        super().__init__(*args, **kwargs)

    def __setitem__(self, key: Any, value: Any) -> None:
        if key in self:
            self.move_to_end(key)
        super().__setitem__(key, value)
        while len(self) > self.maxlen:
            self.popitem(last=False)
