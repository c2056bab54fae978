"""The HAProxy PROXY protocol, v1 and v2, from trusted peers only, on native, ASGI and
WSGI alike: the client it names is the peer from then on."""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

import pytest

from tremolo import Tremolo
from tremolo.asgi import ASGIAdapter
from tremolo.testing import serve_in_thread
from tremolo.wsgi import WSGIAdapter

from ..helpers import exchange, split_responses

native = Tremolo()


@native.route("/who")
async def who(request: Any, **server: Any) -> str:
    return json.dumps([request.ip.decode(), request.client[0] if request.client else None])


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = json.dumps([scope["client"][0], scope["client"][0]]).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [json.dumps([environ["REMOTE_ADDR"], environ["REMOTE_ADDR"]]).encode()]


TARGETS: dict[str, Any] = {
    "native": native,
    "asgi": lambda state: ASGIAdapter(asgi_app, state),
    "wsgi": lambda state: WSGIAdapter(wsgi_app, state),
}
REQUEST = (b"GET /who HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 198.51.100.99\r\n"
           b"Connection: close\r\n\r\n")
V1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 55555 80\r\n"


def v2(source: str, port: int) -> bytes:
    body = socket.inet_aton(source) + socket.inet_aton("192.0.2.1") + struct.pack("!HH", port, 80)
    body += b"\x04\x00\x01\x00"  # a TLV (NOOP), skipped
    return b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + struct.pack("!H", len(body)) + body


def ask(port: int, data: bytes, pieces: int = 1) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        step = max(1, len(data) // pieces)
        for i in range(0, len(data), step):
            sock.sendall(data[i:i + step])
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize("interface", list(TARGETS))
def test_the_header_names_the_client(interface: str) -> None:
    with serve_in_thread(TARGETS[interface], shutdown_timeout=2,
                         proxy_protocol="auto") as (_, port):
        for header, pieces in ((V1, 1), (V1, 30), (v2("203.0.113.7", 4444), 1),
                               (v2("203.0.113.7", 4444), 40)):
            [(status, _, body)] = split_responses(ask(port, header + REQUEST, pieces))
            assert status == b"HTTP/1.1 200 OK"
            # the client it names, untrusted: its own X-Forwarded-For is not believed
            assert json.loads(body)[0] == "203.0.113.7"


def test_a_local_header_keeps_the_connection_s_own_addresses() -> None:
    local = b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"
    with serve_in_thread(native, shutdown_timeout=2, proxy_protocol="v2") as (_, port):
        [(status, _, body)] = split_responses(ask(port, local + REQUEST))
    assert status == b"HTTP/1.1 200 OK"
    assert json.loads(body)[0] == "198.51.100.99"  # the peer is a trusted proxy


@pytest.mark.parametrize("data", [
    REQUEST,  # no header from a peer that must send one
    b"PROXY TCP4 203.0.113.7 192.0.2.1 55555\r\n" + REQUEST,
    b"PROXY TCP4 999.0.113.7 192.0.2.1 55555 80\r\n" + REQUEST,
    b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + b"\x00" * 12 + REQUEST,
    b"PROXY " + b"9" * 200,
])
def test_a_bad_or_missing_header_closes_without_an_answer(data: bytes) -> None:
    with serve_in_thread(native, shutdown_timeout=2, proxy_protocol="auto") as (_, port):
        assert exchange(port, data) == b""


def test_versions_are_kept_apart_and_untrusted_peers_send_none() -> None:
    with serve_in_thread(native, shutdown_timeout=2, proxy_protocol="v2") as (_, port):
        assert exchange(port, V1 + REQUEST) == b""
    with serve_in_thread(native, shutdown_timeout=2, proxy_protocol="auto",
                         trusted_proxies=("10.1.1.1",)) as (_, port):
        # not a trusted peer: no header is read, and a PROXY line is not HTTP
        assert exchange(port, V1 + REQUEST).startswith(b"HTTP/1.1 400 ")
        [(_, _, body)] = split_responses(exchange(port, REQUEST))
        assert json.loads(body)[0] == "127.0.0.1"


def test_a_bad_setting_is_refused() -> None:
    from tremolo.config import ConfigError, Options

    with pytest.raises(ConfigError, match="proxy_protocol must be off, v1, v2 or auto"):
        Options.from_kwargs({"proxy_protocol": "v3"})
