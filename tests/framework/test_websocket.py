"""The native WebSocket API (the original Tremolo's) over 127.0.0.1, with the
`websockets` client and a raw one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tremolo import Tremolo, _core
from tremolo.exceptions import (
    WebSocketClientClosed,
    WebSocketException,
    WebSocketServerClosed,
)
from tremolo.testing import serve_in_thread

from ..wsclient import RawWS, close_code_on_stop

app = Tremolo()
seen: dict[str, Any] = {}
room: set[Any] = set()


@app.route("/echo")
async def echo(websocket=None, **server):
    if websocket is None:
        return b"plain HTTP"
    async for message in websocket:
        await websocket.send(message)


@app.route("/types")
async def types(websocket=None, **server):
    await websocket.accept()
    message = await websocket.receive()
    await websocket.send(type(message).__name__)


@app.route("/frames")
async def frames(websocket=None, **server):
    await websocket.accept()
    got = [await websocket.recv() for _ in range(3)]
    await websocket.send(repr(got))


@app.route("/fragments")
async def fragments(websocket=None, **server):
    await websocket.accept()
    await websocket.send("Hel", fin=0)
    await websocket.send("lo", fin=1, opcode=0)
    await websocket.ping(b"are you there")
    await websocket.send(b"\x00\x01")


@app.route("/client-close")
async def client_close(websocket=None, **server):
    await websocket.accept()
    try:
        await websocket.receive()
    except WebSocketClientClosed as exc:
        seen["client_close"] = exc.code
        raise


@app.route("/send-after-close")
async def send_after_close(websocket=None, **server):
    await websocket.accept()
    try:
        await websocket.receive()
    except WebSocketClientClosed:
        await websocket.send("dropped")  # nothing happens, as in the original
        seen["send_after_close"] = True
        raise


@app.route("/other-closed")
async def other_closed(websocket=None, **server):
    await websocket.accept()
    await websocket.receive()
    raise WebSocketClientClosed(code=1001)  # as if another client's socket had closed


@app.route("/server-close")
async def server_close(websocket=None, **server):
    await websocket.accept()
    raise WebSocketServerClosed("going", code=4000)


@app.route("/fails")
async def fails(websocket=None, **server):
    await websocket.accept()
    raise RuntimeError("handler bug")


@app.route("/chat")
async def chat(request, websocket=None, **server):
    """A chat room: WebSocket clients get every message; a POST posts one."""
    if websocket is None:
        text = (await request.body()).decode()
        for ws in list(room):
            await ws.send(text)
        return f"sent to {len(room)}"
    await websocket.accept()
    room.add(websocket)
    try:
        async for message in websocket:
            for ws in list(room):
                await ws.send(message)
    finally:
        room.discard(websocket)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve_in_thread(app, ws_max_payload_size=1 << 20, ws_close_timeout=2,
                         shutdown_timeout=3) as (_, port):
        yield port


def url(port: int, path: str) -> str:
    return f"ws://127.0.0.1:{port}{path}"


@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo(port: int, compression: str | None) -> None:
    with connect(url(port, "/echo"), compression=compression, max_size=None) as ws:
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
        assert extensions == ("permessage-deflate; server_no_context_takeover" if compression
                              else None)
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        ws.send(b"\x00\xff" * 10)
        assert ws.recv(timeout=5) == b"\x00\xff" * 10
        big = "x" * 500_000
        ws.send(big)
        assert ws.recv(timeout=5) == big
        ws.send(["frag", "mented"])  # a fragmented message
        assert ws.recv(timeout=5) == "fragmented"
        ws.send("")
        assert ws.recv(timeout=5) == ""


def test_frames_sent_with_the_handshake_are_not_lost(port: int) -> None:
    """The takeover hands the bytes read after the upgrade request to the WebSocket."""
    early = _core.ws_frame("first", 1, True, b"abcd") + _core.ws_frame(b"second", 2, True,
                                                                      b"efgh")
    with RawWS(port, "/echo", early=early) as ws:
        assert ws.status == 101
        assert ws.recv_frame() == (True, 1, b"first")
        assert ws.recv_frame() == (True, 2, b"second")


def test_one_route_serves_http_and_websocket(port: int) -> None:
    assert httpx.get(f"http://127.0.0.1:{port}/echo").text == "plain HTTP"
    with connect(url(port, "/echo")) as ws:
        ws.send("ws")
        assert ws.recv(timeout=5) == "ws"


def test_receive_gives_str_or_bytearray(port: int) -> None:
    with connect(url(port, "/types")) as ws:
        ws.send("text")
        assert ws.recv(timeout=5) == "str"
    with connect(url(port, "/types")) as ws:
        ws.send(b"bin")
        assert ws.recv(timeout=5) == "bytearray"


def test_recv_reads_frames(port: int) -> None:
    with RawWS(port, "/frames") as ws:
        assert ws.status == 101
        ws.send("ab", fin=False)
        ws.send(b"", opcode=9)  # a ping: answered by the server, recv() gives b''
        ws.send("cd", opcode=0)
        assert ws.recv_frame() == (True, 10, b"")  # the pong
        assert ws.recv_frame() == (True, 1, b"[b'ab', b'', b'cd']")


def test_fragments_and_ping_from_the_server(port: int) -> None:
    with RawWS(port, "/fragments") as ws:
        assert ws.recv_frame() == (False, 1, b"Hel")
        assert ws.recv_frame() == (True, 0, b"lo")
        assert ws.recv_frame() == (True, 9, b"are you there")
        assert ws.recv_frame() == (True, 2, b"\x00\x01")
        assert ws.recv_close() == 1000  # the handler returned: closed with 1000


def test_client_close_code_reaches_the_handler(port: int) -> None:
    with connect(url(port, "/client-close")) as ws:
        ws.close(4321, "bye")
    for _ in range(100):
        if "client_close" in seen:
            break
        threading.Event().wait(0.02)
    assert seen["client_close"] == 4321


def test_send_after_the_client_closed_does_nothing(port: int) -> None:
    with connect(url(port, "/send-after-close")) as ws:
        ws.close()
    for _ in range(100):
        if "send_after_close" in seen:
            break
        threading.Event().wait(0.02)
    assert seen.get("send_after_close") is True


def test_a_client_closed_error_from_elsewhere_still_closes_this_socket(port: int) -> None:
    with connect(url(port, "/other-closed")) as ws, pytest.raises(ConnectionClosed) as info:
        ws.send("go")
        ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1000


def test_handler_closes_with_a_code(port: int) -> None:
    with connect(url(port, "/server-close")) as ws, pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4000


def test_handler_error_closes_with_1011(port: int) -> None:
    with connect(url(port, "/fails")) as ws, pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011


def test_chat_room(port: int) -> None:
    with connect(url(port, "/chat")) as a, connect(url(port, "/chat")) as b:
        for _ in range(100):  # both have joined once a message reaches both
            r = httpx.post(f"http://127.0.0.1:{port}/chat", content=b"hello")
            if r.text == "sent to 2":
                break
            threading.Event().wait(0.02)
        assert r.text == "sent to 2"
        assert a.recv(timeout=5) == "hello" and b.recv(timeout=5) == "hello"
        a.send("from a")
        assert b.recv(timeout=5) == "from a"


def test_handshake_errors(port: int) -> None:
    with RawWS(port, "/echo", version="8") as ws:
        assert ws.status == 426
        assert ws.headers[b"sec-websocket-version"] == b"13"
        assert ws.headers[b"upgrade"] == b"websocket"  # RFC 9110 §15.5.22
    with RawWS(port, "/echo", key=b"short") as ws:
        assert ws.status == 400
    # an upgrade with a body is not a WebSocket: the handler gets None
    r = httpx.post(f"http://127.0.0.1:{port}/echo", content=b"x",
                   headers={"Upgrade": "websocket", "Connection": "Upgrade",
                            "Sec-WebSocket-Key": "MDEyMzQ1Njc4OWFiY2RlZg==",
                            "Sec-WebSocket-Version": "13"})
    assert r.text == "plain HTTP"


def test_ws_false_answers_upgrades_as_http() -> None:
    with serve_in_thread(app, ws=False) as (_, port):
        with pytest.raises(InvalidStatus) as info, connect(url(port, "/echo")):
            pass
        assert info.value.response.status_code == 200
        assert info.value.response.body == b"plain HTTP"


def test_exceptions_are_importable_with_the_original_codes() -> None:
    assert WebSocketException().code == 1011
    assert WebSocketClientClosed().code == 1005
    assert issubclass(WebSocketServerClosed, WebSocketException)


def test_graceful_stop_closes_with_1001() -> None:
    assert close_code_on_stop(app, "/echo", shutdown_timeout=5) == 1001


@pytest.mark.slow
def test_create_frame() -> None:
    from tremolo.framework.websocket import WebSocket

    assert WebSocket.create_frame(b"Hello", opcode=1) == b"\x81\x05Hello"
    assert WebSocket.create_frame("Hel", fin=0) == b"\x01\x03Hel"
    masked = WebSocket.create_frame(b"abc", mask=True)
    assert masked[:2] == b"\x82\x83" and len(masked) == 9
    assert asyncio.iscoroutinefunction(WebSocket.accept)
