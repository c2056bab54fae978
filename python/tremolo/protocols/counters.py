"""What one worker counts for the metrics endpoint (--metrics): plain attributes the
connections add to, so that the cost on the hot path is a few integer additions. The
worker publishes a snapshot twice a second; the master adds up every worker's."""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

#: the upper bounds (seconds) of the request duration histogram's buckets
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    5.0, 10.0, 30.0, 60.0)


class Counters:
    __slots__ = ("bytes_in", "bytes_out", "connections", "duration_sum", "durations",
                 "interface", "loop_lag", "open", "rejected", "requests", "ws_closed",
                 "ws_in", "ws_opened", "ws_out")

    def __init__(self, interface: str = "") -> None:
        self.interface = interface
        self.connections = 0
        self.bytes_in = 0
        self.bytes_out = 0
        #: responses by the first digit of their status (index 1 to 5)
        self.requests = [0] * 6
        #: request durations: counts per bucket (the last one: above every bound)
        self.durations = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.ws_opened = 0
        self.ws_closed = 0
        self.ws_in = 0
        self.ws_out = 0
        #: "status reason" -> requests the server refused itself (parser, timeouts)
        self.rejected: dict[str, int] = {}
        #: seconds the event loop was late on a timer, last time it was measured
        self.loop_lag = 0.0
        #: connections open (set when a snapshot is taken)
        self.open = 0

    def request(self, status: int, seconds: float) -> None:
        self.requests[status // 100 if 100 <= status < 600 else 5] += 1
        self.durations[bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.duration_sum += seconds

    def reject(self, status: int, reason: str) -> None:
        key = f"{status} {reason}"
        self.rejected[key] = self.rejected.get(key, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}
