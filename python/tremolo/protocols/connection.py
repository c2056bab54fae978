"""What every adapter needs to know about a connection, worked out once when it opens:
the peer, whether the peer is a trusted proxy, TLS, the scheme and the server address."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from .forwarded import forwarded


def trusted(peer: str | None, proxies: frozenset[str]) -> bool:
    """Whether `peer` is one of `proxies` (addresses, networks, or '*')."""
    if peer is None:
        return False
    if "*" in proxies or peer in proxies:
        return True
    try:
        addr = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any("/" in p and addr in ipaddress.ip_network(p, strict=False) for p in proxies)


class ConnectionInfo:
    """The facts of one connection. `peer` and `server` are (host, port), None on a
    UNIX socket; `trusted` says whether forwarded fields (X-Forwarded-For,
    X-Forwarded-Proto) from the peer may be believed."""

    __slots__ = ("peer", "proxies", "secure", "server", "trusted")

    def __init__(self, transport: asyncio.BaseTransport, proxies: frozenset[str]) -> None:
        peer = transport.get_extra_info("peername")
        self.peer: tuple[str, int] | None = (peer[0], peer[1]) if isinstance(peer, tuple) \
            else None
        sock = transport.get_extra_info("sockname")
        self.server: tuple[str, int] | None = (sock[0], sock[1]) if isinstance(sock, tuple) \
            else None
        self.secure: bool = transport.get_extra_info("sslcontext") is not None
        self.proxies = proxies
        # a UNIX socket peer (a proxy on the same host) is trusted with 'unix'
        self.trusted: bool = trusted(self.peer[0], proxies) if self.peer is not None \
            else "unix" in proxies or "*" in proxies

    def proxied(self, client: tuple[str, int], destination: tuple[str, int]) -> None:
        """The PROXY protocol named the connection's real ends: the client is now
        the peer, trusted only if it is a trusted proxy itself."""
        self.peer = client
        self.server = destination
        self.trusted = trusted(client[0], self.proxies)

    @property
    def scheme(self) -> str:
        return "https" if self.secure else "http"

    def forwarded(self, head: Any) -> tuple[tuple[str, int] | None, str, str | None]:
        """(client, scheme, host) of a request: the connection's own, or what a
        trusted proxy says (see forwarded.py); host is None when no proxy says it."""
        if not self.trusted:
            return self.peer, self.scheme, None
        client, scheme, host = forwarded(head, self.peer,
                                         lambda a: trusted(a, self.proxies))
        return client, scheme or self.scheme, host
