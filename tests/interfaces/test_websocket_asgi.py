"""ASGI websocket (spec 2.4) over 127.0.0.1: the scope, the lifecycle, and the
bugs other servers have had (close codes, disconnects, close before accept, send
after the client left); then Starlette and FastAPI."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tremolo.asgi import ASGIAdapter
from tremolo.testing import serve_in_thread

from ..helpers import exchange
from ..wsclient import RawWS, close_code_on_stop

log: dict[str, Any] = {}


def note(key: str, value: Any) -> None:
    log.setdefault(key, []).append(value)


def wait_for(key: str, timeout: float = 5.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while key not in log:
        assert time.monotonic() < deadline, f"{key} never happened"
        time.sleep(0.01)
    return log[key]  # type: ignore[no-any-return]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            event = (await receive())["type"]
            await send({"type": event + ".complete"})
            if event == "lifespan.shutdown":
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"http"})
        return
    path = scope["path"]
    assert (await receive())["type"] == "websocket.connect"
    if path == "/scope":
        await send({"type": "websocket.accept", "subprotocol": scope["subprotocols"][-1],
                    "headers": [(b"x-extra", b"1")]})
        keep = ("type", "scheme", "path", "raw_path", "query_string", "root_path",
                "subprotocols", "http_version", "extensions", "client", "server")
        await send({"type": "websocket.send", "text": json.dumps(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in scope.items()
             if k in keep} | {"method": "method" in scope})})
        await send({"type": "websocket.close"})
    elif path == "/echo":
        await send({"type": "websocket.accept"})
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                note("echo_disconnect", (msg["code"], msg.get("reason", "")))
                return
            if msg.get("text") is not None:
                await send({"type": "websocket.send", "text": msg["text"]})
            else:
                await send({"type": "websocket.send", "bytes": msg["bytes"]})
    elif path == "/close-code":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4002, "reason": "app says bye"})
        note("after_close", await receive())
    elif path == "/deny":
        await send({"type": "websocket.close"})
        note("deny_receive", await receive())
    elif path == "/deny-response":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"entry"})
    elif path == "/late-accept":
        await asyncio.sleep(0.3)  # the client is gone by now
        try:
            await send({"type": "websocket.accept"})
            note("late", await receive())
        except OSError as exc:
            note("late", type(exc).__name__)
    elif path == "/send-after-disconnect":
        await send({"type": "websocket.accept"})
        msg = await receive()
        note("sad_receive", msg["type"])
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            note("sad_send", isinstance(exc, OSError))
    elif path == "/no-accept":
        return
    elif path == "/send-first":
        await send({"type": "websocket.send", "text": "before the accept"})
    elif path == "/accept-twice":
        await send({"type": "websocket.accept"})
        try:
            await send({"type": "websocket.accept"})
        except RuntimeError as exc:
            note("accept_twice", str(exc))
        await send({"type": "websocket.close"})
    elif path == "/fails":
        await send({"type": "websocket.accept"})
        raise RuntimeError("app bug")


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve_in_thread(lambda state: ASGIAdapter(app, state), ws_close_timeout=2) \
            as (_, port):
        yield port


def url(port: int, path: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{port}{path}{query}"


def test_scope(port: int) -> None:
    with connect(url(port, "/scope", "?a=1"), subprotocols=["one", "two"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "two"
        assert ws.response.headers["x-extra"] == "1"
        scope = json.loads(ws.recv(timeout=5))
    assert scope["type"] == "websocket" and scope["scheme"] == "ws"
    assert scope["path"] == "/scope" and scope["raw_path"] == "/scope"
    assert scope["query_string"] == "a=1" and scope["subprotocols"] == ["one", "two"]
    assert scope["http_version"] == "1.1" and scope["root_path"] == ""
    assert "websocket.http.response" in scope["extensions"]
    assert scope["client"][0] == "127.0.0.1" and scope["server"][1] == port
    assert scope["method"] is False  # a websocket scope has no method


@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo_and_client_close_code(port: int, compression: str | None) -> None:
    log.pop("echo_disconnect", None)
    with connect(url(port, "/echo"), compression=compression) as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
        ws.send(b"\x01" * 100_000)
        assert ws.recv(timeout=5) == b"\x01" * 100_000
        ws.close(4100, "client reason")
    assert wait_for("echo_disconnect") == [(4100, "client reason")]


def test_disconnect_codes_without_a_close(port: int) -> None:
    log.pop("echo_disconnect", None)
    with RawWS(port, "/echo") as ws:
        ws.send(b"", opcode=8)  # a close without a code
        assert ws.recv_close() == 1005
    assert wait_for("echo_disconnect") == [(1005, "")]
    log.pop("echo_disconnect")
    with RawWS(port, "/echo") as ws:
        ws.send("x")
        assert ws.recv_frame() == (True, 1, b"x")
    # the connection dropped without a close
    assert wait_for("echo_disconnect") == [(1006, "the client closed the connection")] or \
        log["echo_disconnect"][0][0] == 1006


def test_app_close_code_and_reason_reach_the_client(port: int) -> None:
    with connect(url(port, "/close-code")) as ws, pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=5)
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4002, "app says bye")
    # the application gets its disconnect after the server's close
    assert wait_for("after_close")[0]["type"] == "websocket.disconnect"


def test_close_before_accept_is_403_and_does_not_hang(port: int) -> None:
    t0 = time.monotonic()
    with pytest.raises(InvalidStatus) as info, connect(url(port, "/deny"), open_timeout=5):
        pass
    assert info.value.response.status_code == 403
    assert info.value.response.body == b"connection rejected"  # the original's words
    assert time.monotonic() - t0 < 2
    assert wait_for("deny_receive")[0]["type"] == "websocket.disconnect"


def test_denial_response(port: int) -> None:
    with pytest.raises(InvalidStatus) as info, connect(url(port, "/deny-response")):
        pass
    assert info.value.response.status_code == 401
    assert info.value.response.body == b"no entry"


def test_accept_after_the_client_left(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /late-accept HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
    # gone before the application accepts
    result = wait_for("late")[0]
    assert result == "ConnectionClosed" or result["type"] == "websocket.disconnect"


def test_send_after_disconnect_raises_an_oserror(port: int) -> None:
    with connect(url(port, "/send-after-disconnect")) as ws:
        ws.close()
    assert wait_for("sad_receive") == ["websocket.disconnect"]
    assert wait_for("sad_send") == [True]


def test_app_returning_without_accept_is_500(port: int) -> None:
    with pytest.raises(InvalidStatus) as info, connect(url(port, "/no-accept")):
        pass
    assert info.value.response.status_code == 500


def test_misuse_is_named_as_the_original_names_it(port: int) -> None:
    with pytest.raises(InvalidStatus) as info, connect(url(port, "/send-first")):
        pass
    assert info.value.response.status_code == 500
    assert info.value.response.body == b"has not been started or accepted"
    with connect(url(port, "/accept-twice")) as ws, pytest.raises(ConnectionClosed):
        ws.recv(timeout=5)
    assert wait_for("accept_twice") == ["already started or accepted"]


def test_app_failure_after_accept_closes_with_1011(port: int) -> None:
    with connect(url(port, "/fails")) as ws, pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011


def test_invalid_handshakes_do_not_reach_the_app(port: int) -> None:
    with RawWS(port, "/echo", version="7") as ws:
        assert ws.status == 426 and ws.headers[b"sec-websocket-version"] == b"13"
        assert ws.headers[b"upgrade"] == b"websocket"  # RFC 9110 §15.5.22
    with RawWS(port, "/echo", key=b"AAAA") as ws:
        assert ws.status == 400
    upgrade = (b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               b"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\n\r\n")
    for head in (b"POST /echo HTTP/1.1\r\nHost: t\r\n", b"GET /echo HTTP/1.0\r\n"):
        answer = exchange(port, head + upgrade, expect=b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400"), answer


def test_no_ws_serves_upgrades_as_http() -> None:
    with serve_in_thread(lambda state: ASGIAdapter(app, state), ws=False) as (_, port), \
            pytest.raises(InvalidStatus) as info, connect(url(port, "/echo")):
        pass
    assert info.value.response.status_code == 200 and info.value.response.body == b"http"


def test_graceful_stop_gives_the_app_a_disconnect() -> None:
    log.pop("echo_disconnect", None)
    assert close_code_on_stop(lambda state: ASGIAdapter(app, state), "/echo",
                              shutdown_timeout=5) == 1001
    assert wait_for("echo_disconnect")[0][0] == 1001


def test_starlette_and_fastapi() -> None:
    fast = FastAPI()

    @fast.websocket("/ws/{name}")
    async def fast_ws(websocket: WebSocket, name: str) -> None:
        await websocket.accept()
        try:
            while True:
                data = await websocket.receive_json()
                await websocket.send_json({"hello": name, **data})
        except WebSocketDisconnect as exc:
            note("fastapi_disconnect", exc.code)

    async def star_ws(websocket: Any) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text.upper())

    star = Starlette(routes=[WebSocketRoute("/up", star_ws)])
    with serve_in_thread(lambda state: ASGIAdapter(fast, state)) as (_, port):
        with connect(url(port, "/ws/ann")) as ws:
            ws.send(json.dumps({"n": 1}))
            assert json.loads(ws.recv(timeout=5)) == {"hello": "ann", "n": 1}
        assert wait_for("fastapi_disconnect") == [1000]
        with pytest.raises(InvalidStatus) as info, connect(url(port, "/nowhere")):
            pass
        assert info.value.response.status_code == 403  # FastAPI closes unknown routes
    with serve_in_thread(lambda state: ASGIAdapter(star, state)) as (_, port), \
            connect(url(port, "/up")) as ws:
        ws.send("shout")
        assert ws.recv(timeout=5) == "SHOUT"


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_wss_over_tls(certificate: tuple[Path, Path], loop: str) -> None:
    """The takeover works on TLS transports (the loop's SSL protocol hands its
    application side over too), and the scope says wss with the tls extension."""
    cert, key = certificate
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    with serve_in_thread(lambda state: ASGIAdapter(app, state), loop=loop,
                         ssl={"cert": str(cert), "key": str(key)}) as (_, port):
        with connect(f"wss://127.0.0.1:{port}/scope", ssl=ctx,
                     subprotocols=["x"]) as ws:  # type: ignore[list-item]
            scope = json.loads(ws.recv(timeout=5))
        assert scope["scheme"] == "wss" and "tls" in scope["extensions"]
        with connect(f"wss://127.0.0.1:{port}/echo", ssl=ctx) as ws:
            ws.send("secret" * 1000)
            assert ws.recv(timeout=5) == "secret" * 1000
