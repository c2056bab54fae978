"""Proxies are believed only as configured: the address they come from, the header
family the operator names, and an IPv4 proxy on a dual-stack listener as IPv4."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tremolo.protocols.connection import Trust

from ..helpers import exchange, split_responses
from .server import serve

APP = '''
async def app(scope, receive, send):
    body = f"{scope['client'][0]} {scope['scheme']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
'''


def test_an_ipv4_mapped_peer_is_compared_as_ipv4() -> None:
    trust = Trust(("127.0.0.1", "10.0.0.0/8"))
    assert trust("::ffff:127.0.0.1") and trust("::ffff:10.1.2.3") and trust("127.0.0.1")
    assert not trust("::ffff:192.0.2.1") and not trust("::1") and not trust("garbage")
    assert Trust(("::1",))("::1") and not Trust(("::1",))("::ffff:127.0.0.1")
    # an interface (a link-local peer's) is not part of the address
    assert Trust(("fe80::/10",))("fe80::1%eth0") and not Trust(("fe80::/10",))("fec0::1")


def _network(version: int) -> st.SearchStrategy[str]:
    bits = 32 if version == 4 else 128
    return st.tuples(st.integers(0, 2 ** bits - 1), st.integers(0, bits)).map(
        lambda t: str(ipaddress.ip_network((t[0], t[1]), strict=False)))


@given(networks=st.lists(st.one_of(_network(4), _network(6)), max_size=4),
       peer=st.one_of(st.integers(0, 2 ** 32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
                      st.integers(0, 2 ** 128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))))
def test_trust_agrees_with_ipaddress(networks: list[str], peer: str) -> None:
    # the core's matching (rust/src/forwarded.rs) against the standard library's;
    # a peer holds no memory: a client can name any address, nothing grows
    address = ipaddress.ip_address(peer)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    expected = any(address in ipaddress.ip_network(n) for n in networks)
    assert Trust(tuple(networks))(peer) is expected


@pytest.mark.parametrize("proxy_protocol", [False, True])
def test_a_dual_stack_listener_believes_its_ipv4_proxies(tmp_path: Path,
                                                          proxy_protocol: bool) -> None:
    """--host :: sees an IPv4 peer as ::ffff:127.0.0.1; its X-Forwarded-For and its
    PROXY header are believed as from 127.0.0.1 (they were silently ignored)."""
    args = ["--host", "::", "--forwarded-allow-ips", "127.0.0.1", "--interface", "asgi"]
    if proxy_protocol:
        args += ["--proxy-protocol", "v1"]
    with serve(tmp_path, APP, *args) as srv:
        request = (b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.5\r\n"
                   b"X-Forwarded-Proto: https\r\nConnection: close\r\n\r\n")
        if proxy_protocol:
            request = b"PROXY TCP4 198.51.100.9 127.0.0.1 5555 80\r\n" + request
        [(status, _, body)] = split_responses(exchange(srv.port, request))
        assert status.startswith(b"HTTP/1.1 200")
        # through the PROXY header the client is 198.51.100.9, itself untrusted
        assert body == (b"198.51.100.9 http" if proxy_protocol else b"203.0.113.5 https")
