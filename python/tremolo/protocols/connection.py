"""What every adapter needs to know about a connection, worked out once when it opens:
the peer, whether the peer is a trusted proxy, TLS, the scheme and the server address."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from typing import Any

from .. import _core


class Trust:
    """Which peers are trusted proxies, and which of their proxy fields are believed:
    worked out once from the options (trusted_proxies, proxy_headers). The matching
    and the fields' rules are the core's (`_core.Proxies`, rust/src/forwarded.rs)."""

    def __init__(self, proxies: tuple[str, ...] | frozenset[str],
                 headers: str = "x-forwarded") -> None:
        self.everyone = "*" in proxies
        self.unix = self.everyone or "unix" in proxies
        # (ipaddress reads every form the option allows: a netmask, a hostmask)
        networks = [ipaddress.ip_network(p, strict=False) for p in proxies
                    if p not in ("*", "unix")]
        #: the header family believed: "x-forwarded", "forwarded" or "off"
        self.headers = headers
        self.proxies = _core.Proxies([(str(n.network_address), n.prefixlen) for n in networks],
                                     everyone=self.everyone, rfc7239=headers == "forwarded")

    def __call__(self, peer: str | None) -> bool:
        """Whether the peer at address `peer` is a trusted proxy. An IPv4 peer of
        a dual-stack listener (::ffff:192.0.2.1) is compared as the IPv4 address."""
        return self.proxies(peer)


#: the kernel's send buffer for a peer on the same host (nginx in front, a local
#: client), where no network delay needs a large one: left to Linux's autotuning (up
#: to 4 MiB), a large response was copied into the kernel whole at each write, and one
#: connection's MiB held up the others' (GET 1 MiB over loopback, 16 connections:
#: 7.5k against 5.5-6.3k requests/s, p99 3.3 against 5.4-6.2 ms). Remote peers keep
#: autotuning, which their bandwidth-delay product needs.
LOOPBACK_SNDBUF = 256 << 10


def on_loopback(host: str) -> bool:
    """Whether `host` (a peer's address as the socket gives it) is this host's
    loopback, IPv4 (also as a dual-stack listener writes it) or IPv6."""
    return host.startswith(("127.", "::ffff:127.")) or host == "::1"


def fit_send_buffer(transport: asyncio.BaseTransport, peer: tuple[str, int] | None) -> None:
    """Gives a loopback peer's TCP socket LOOPBACK_SNDBUF (see above)."""
    if peer is None or not on_loopback(peer[0]):
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # (a socket that is already gone has nothing to tune)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, LOOPBACK_SNDBUF)


class ConnectionInfo:
    """The facts of one connection. `peer` and `server` are (host, port), None on a
    UNIX socket; `trusted` says whether forwarded fields (X-Forwarded-For,
    X-Forwarded-Proto) from the peer may be believed."""

    __slots__ = ("peer", "secure", "server", "trust", "trusted")

    def __init__(self, transport: asyncio.BaseTransport, trust: Trust) -> None:
        peer = transport.get_extra_info("peername")
        self.peer: tuple[str, int] | None = (peer[0], peer[1]) if isinstance(peer, tuple) \
            else None
        sock = transport.get_extra_info("sockname")
        self.server: tuple[str, int] | None = (sock[0], sock[1]) if isinstance(sock, tuple) \
            else None
        self.secure: bool = transport.get_extra_info("sslcontext") is not None
        self.trust = trust
        # a UNIX socket peer (a proxy on the same host) is trusted with 'unix'
        self.trusted: bool = trust(self.peer[0]) if self.peer is not None else trust.unix

    def proxied(self, client: tuple[str, int], destination: tuple[str, int]) -> None:
        """The PROXY protocol named the connection's real ends: the client is now
        the peer, trusted only if it is a trusted proxy itself."""
        self.peer = client
        self.server = destination
        self.trusted = self.trust(client[0])

    @property
    def scheme(self) -> str:
        return "https" if self.secure else "http"

    @property
    def proxies(self) -> _core.Proxies | None:
        """The trusted proxies, if the peer is one whose fields are believed."""
        if not self.trusted or self.trust.headers == "off":
            return None
        return self.trust.proxies

    def forwarded(self, head: Any) -> tuple[tuple[str, int] | None, str, str | None]:
        """(client, scheme, host) of a request: the connection's own, or what a
        trusted proxy says in the header family believed (rust/src/forwarded.rs);
        host is None when no proxy says it."""
        proxies = self.proxies
        if proxies is None:
            return self.peer, self.scheme, None
        return head.forwarded(proxies, self.peer, self.scheme)  # type: ignore[no-any-return]
