"""What every adapter needs to know about a connection, worked out once when it opens:
the peer, whether the peer is a trusted proxy, TLS, the scheme and the server address."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any


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
        self.trusted: bool = self.peer is not None and trusted(self.peer[0], proxies)

    @property
    def scheme(self) -> str:
        return "https" if self.secure else "http"

    def scheme_of(self, head: Any) -> str:
        """The request's scheme: the connection's, or X-Forwarded-Proto (http or
        https) when the peer is a trusted proxy."""
        if self.trusted:
            forwarded = head.get(b"x-forwarded-proto")
            if forwarded:
                value = forwarded.strip().lower()
                if value in (b"http", b"https"):
                    return "https" if value == b"https" else "http"
        return "https" if self.secure else "http"

    def client_of(self, head: Any) -> tuple[str, int] | None:
        """The request's client: the peer, or when the peer is a trusted proxy, the
        rightmost X-Forwarded-For address that is not a trusted proxy (the entries to
        its left are the client's own word). Only a valid IP address counts; when the
        chain has none, the peer stands. The port of a forwarded client is 0."""
        if not self.trusted:
            return self.peer
        hops = [h.strip() for v in head.get_all(b"x-forwarded-for")
                for h in v.decode("latin-1").split(",")]
        hops = [h for h in hops if h]
        for hop in reversed(hops):
            try:
                address = str(ipaddress.ip_address(hop.strip("[]")))
            except ValueError:
                return self.peer  # a broken chain: nothing left of it can be believed
            if not trusted(address, self.proxies):
                return (address, 0)
        if hops:  # every hop is a trusted proxy: the first of them is the client
            return (str(ipaddress.ip_address(hops[0].strip("[]"))), 0)
        return self.peer
