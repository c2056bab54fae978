"""A peer on the same host gets a bounded kernel send buffer (protocols/connection.py,
LOOPBACK_SNDBUF): over loopback a large response is otherwise copied into the kernel
whole at each write, and one connection's megabytes hold up the others'."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tremolo.config import Options
from tremolo.protocols import Exchange, FunctionAdapter, HTTPProtocol, ServerState
from tremolo.protocols.connection import LOOPBACK_SNDBUF, on_loopback

BODY = b"x" * (4 << 20)


@pytest.mark.parametrize("host, local", [
    ("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("192.0.2.1", False), ("::ffff:192.0.2.1", False), ("2001:db8::1", False),
    ("1270::1", False), ("::10", False),
])
def test_which_peers_are_on_loopback(host: str, local: bool) -> None:
    assert on_loopback(host) is local


async def _send_buffer_after_a_large_response(host: str) -> int:
    """SO_SNDBUF of the server's side of a connection from `host`, after it sent
    4 MiB (enough for Linux's autotuning to grow an untouched one)."""
    loop = asyncio.get_running_loop()
    state = ServerState(Options(), loop)

    async def big(ex: Exchange) -> None:
        ex.respond(200, [], BODY)

    made: list[HTTPProtocol] = []

    def factory() -> HTTPProtocol:
        made.append(HTTPProtocol(state, FunctionAdapter(big)))
        return made[-1]

    server = await loop.create_server(factory, host, 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        await asyncio.wait_for(reader.readexactly(len(BODY)), 10)
        transport = made[0].transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


async def test_a_loopback_peer_gets_a_bounded_send_buffer() -> None:
    # (Linux doubles what is set, and caps it at net.core.wmem_max)
    with open("/proc/sys/net/core/wmem_max") as f:
        cap = min(LOOPBACK_SNDBUF, int(f.read()))
    assert await _send_buffer_after_a_large_response("127.0.0.1") == 2 * cap


async def test_an_ipv6_loopback_peer_too() -> None:
    with open("/proc/sys/net/core/wmem_max") as f:
        cap = min(LOOPBACK_SNDBUF, int(f.read()))
    assert await _send_buffer_after_a_large_response("::1") == 2 * cap
