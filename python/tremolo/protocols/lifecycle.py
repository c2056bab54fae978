"""The phases of a connection and of an exchange, and the rules that end them.

A connection (HTTPProtocol) is in exactly one phase:

    PROXY ──> HANDSHAKE ──> HTTP ──> LINGER
      │  └─────────────────>  │  └──> TAKEN   (a 101: another protocol owns it then)
    REFUSED                   └─────> CLOSED  (every phase ends here, in connection_lost)

- PROXY: reading the PROXY protocol header a trusted load balancer sends first
  (before TLS, as HAProxy and cloud load balancers send it);
- HANDSHAKE: the TLS handshake, on a TLS listener (bounded by request_timeout; the
  connection counts against limit_concurrency meanwhile);
- HTTP: reading requests and answering them, one exchange at a time;
- LINGER: answered before the request's body was read; what comes is dropped until
  the client closes (bounded in bytes and seconds), see HTTPProtocol.close_gently;
- TAKEN: handed over after a 101; the protocol that took it is a connection of its own;
- REFUSED: answered 503 on arrival (limit_concurrency); no application sees it;
- CLOSED: the transport is gone.

Closing is not a phase: `Flow.close()` stops writing and lets the buffer drain, and
the connection stays in its phase until the transport reports it lost. What bounds
every phase, closing or not, is checked once a tick by the worker's sweeper
(ServerState): each phase's clock (check_clocks), and for every connection a write
buffer that has not shrunk for request_timeout, which aborts it. So whatever the
client, the application or an exception does, a connection ends within its clock.

An exchange (one request and its response) is in one phase too; they only go forward:
RECEIVED (nothing sent) -> SENDING (the head went out) -> DONE (answered, cut short, or
taken over after a 101), with DETACHED between the last two when a handler returns
and leaves its started response to code of its own (the connection is then closed if
nothing finishes it within keepalive_timeout). `started` and `finished` are read
from the phase.
"""

from __future__ import annotations

#: connection phases
PROXY = "proxy"
HTTP = "http"
HANDSHAKE = "tls handshake"
LINGER = "lingering"
TAKEN = "taken over"
REFUSED = "refused"
CLOSED = "closed"

#: exchange phases, in the order they are reached
RECEIVED = 0
SENDING = 1
DETACHED = 2
DONE = 3
