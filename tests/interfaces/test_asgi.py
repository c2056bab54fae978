"""ASGI 3: the spec details with raw apps, then Starlette and FastAPI, over 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tremolo import _core
from tremolo.asgi import ASGIAdapter
from tremolo.testing import serve_in_thread

from ..helpers import exchange, split_responses

events: list[str] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "hi"
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                events.append("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path.startswith("/scope"):
        body = json.dumps({k: (v.decode("latin-1") if isinstance(v, bytes) else v)
                           for k, v in scope.items() if k not in ("headers", "asgi")}
                          | {"headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
                             "asgi": scope["asgi"]}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    elif path == "/echo":
        messages = []
        while True:
            msg = await receive()
            messages.append([len(msg.get("body", b"")), msg.get("more_body")])
            if not msg.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(messages).encode()})
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"b", b"c"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/length":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"6")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})
    elif path == "/too-long":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"abc"})
    elif path == "/too-short":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/injection":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-bad", b"a\r\nSet-Cookie: x=1")]})
        await send({"type": "http.response.body", "body": b"never"})
    elif path == "/crash-before":
        raise RuntimeError("before")
    elif path == "/crash-after":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("after")
    elif path == "/nothing":
        return
    elif path == "/start-twice":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.start", "status": 200, "headers": []})
    elif path == "/body-first":
        await send({"type": "http.response.body", "body": b"too early"})
    elif path == "/misuse-caught":
        with contextlib.suppress(RuntimeError):  # the server answers anyway
            await send({"type": "http.response.body", "body": b"too early"})
    elif path == "/secret-crash":
        raise RuntimeError("the database password is hunter2")
    elif path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "headers": [],
                    "trailers": True})
        await send({"type": "http.response.body", "body": b"data"})
        await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"42")]})
    elif path == "/pathsend":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": str(FILE["path"])})
    elif path == "/hint":
        await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hinted"})
    elif path == "/disconnect":
        first = await receive()  # the (empty) request body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        msg = await asyncio.wait_for(receive(), 2)
        events.extend([first["type"], msg["type"]])
    elif path == "/state":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["state"]["greeting"].encode()})


FILE: dict[str, Path] = {}


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    f = tmp_path_factory.mktemp("asgi") / "file.bin"
    f.write_bytes(b"f" * 100_000)

    def factory(state: Any) -> ASGIAdapter:
        adapter = ASGIAdapter(app, state, root_path="/root")
        return adapter

    with serve_in_thread(factory, shutdown_timeout=2, download_rate=1 << 40) as (_, p):
        FILE["path"] = f
        yield p
    assert "shutdown" in events


def get(port: int, path: str, method: str = "GET", **kw: Any) -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=5, **kw)


def test_scope(port: int) -> None:
    d = get(port, "/scope?q=%20x", headers={"X-Forwarded-Proto": "https",
                                             "X-Custom": "Value"}).json()
    assert d["type"] == "http" and d["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert d["http_version"] == "1.1" and d["method"] == "GET"
    assert d["path"] == "/scope" and d["raw_path"] == "/scope" and d["query_string"] == "q=%20x"
    assert d["root_path"] == "/root"
    assert d["scheme"] == "https"  # 127.0.0.1 is a trusted proxy by default
    assert ["x-custom", "Value"] in d["headers"]
    assert d["client"][0] == "127.0.0.1" and d["server"] == ["127.0.0.1", port]
    assert set(d["extensions"]) >= {"http.response.trailers", "http.response.pathsend",
                                    "http.response.early_hint"}
    assert d["state"] == {"greeting": "hi"}


def test_path_is_percent_decoded_utf8(port: int) -> None:
    out = exchange(port, b"GET /sc%6Fpe/caf%C3%A9%2Fx?y HTTP/1.1\r\nHost: t\r\n"
                         b"Connection: close\r\n\r\n")
    [(_, _, body)] = split_responses(out)
    d = json.loads(body)
    assert d["path"] == "/scope/caf\u00e9/x"
    assert d["raw_path"] == "/sc%6Fpe/caf%C3%A9%2Fx" and d["query_string"] == "y"


def test_receive_streams_the_body(port: int) -> None:
    raw = (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    [(_, _, body)] = split_responses(exchange(port, raw))
    messages = json.loads(body)
    assert sum(n for n, _ in messages) == 5 and messages[-1][1] is False
    assert all(more for _, more in messages[:-1])
    assert get(port, "/echo", "POST", content=b"x" * 10).json() == [[10, False]]
    assert get(port, "/echo").json() == [[0, False]]  # no body: one empty message


def test_framing(port: int) -> None:
    r = get(port, "/stream")
    assert r.content == b"abc" and r.headers["transfer-encoding"] == "chunked"
    assert "content-type" not in r.headers  # the server adds none
    r = get(port, "/length")
    assert r.content == b"abcdef" and r.headers["content-length"] == "6"
    raw = exchange(port, b"GET /stream HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body == b"abc" and b"Connection: close" in head
    assert b"Transfer-Encoding" not in head


@pytest.mark.parametrize("path", ["/too-long", "/too-short"])
def test_wrong_content_length_cuts_the_connection(port: int, path: str) -> None:
    out = exchange(port, f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    if path == "/too-long":
        assert out.startswith(b"HTTP/1.1 500 ")  # caught before anything was sent
    else:
        assert b"Content-Length: 5" in out and out.endswith(b"abc")  # cut short, closed


def test_errors(port: int) -> None:
    assert exchange(port, b"GET /injection HTTP/1.1\r\nHost: t\r\n\r\n").startswith(
        b"HTTP/1.1 500 ")
    assert get(port, "/crash-before").status_code == 500
    out = exchange(port, b"GET /crash-after HTTP/1.1\r\nHost: t\r\n\r\n")
    assert b"7\r\npartial\r\n" in out and not out.endswith(b"0\r\n\r\n")
    assert get(port, "/nothing").status_code == 500
    assert get(port, "/state").content == b"hi"  # the worker keeps serving


@pytest.mark.parametrize(("path", "text"), [
    ("/start-twice", b"already started or accepted"),
    ("/body-first", b"has not been started or accepted"),
    ("/misuse-caught", b"has not been started or accepted"),
    ("/secret-crash", b"Internal Server Error"),
    ("/nothing", b"Internal Server Error")])
def test_a_500_names_the_misuse_not_the_applications_error(
        port: int, path: str, text: bytes) -> None:
    """The original Tremolo's words for an application that broke the protocol (its
    users' tests compare them); an application's own exception text is never sent."""
    r = get(port, path)
    assert (r.status_code, r.reason_phrase, r.content) == (500, "Internal Server Error", text)
    assert r.headers["content-type"] == "text/html; charset=utf-8"


def test_extensions(port: int) -> None:
    raw = exchange(port, b"GET /trailers HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert raw.endswith(b"4\r\ndata\r\n0\r\nx-sum: 42\r\n\r\n")
    raw = exchange(port, b"GET /hint HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n")
    assert raw.endswith(b"hinted")


def test_pathsend(port: int) -> None:
    r = get(port, "/pathsend")
    assert r.content == b"f" * 100_000 and r.headers["content-length"] == "100000"
    assert r.headers["content-type"] == "application/octet-stream"


def test_disconnect_after_the_response(port: int) -> None:
    events.clear()
    assert get(port, "/disconnect").content == b"done"
    for _ in range(40):
        if events:
            break
        asyncio.run(asyncio.sleep(0.05))
    assert events == ["http.request", "http.disconnect"]


def test_lifespan_failure_stops_startup() -> None:
    async def failing(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    with pytest.raises(RuntimeError, match="no database"), \
            serve_in_thread(lambda s: ASGIAdapter(failing, s), shutdown_timeout=1):
        pass


def test_app_without_lifespan_still_serves() -> None:
    async def plain(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http", "no lifespan support"
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with serve_in_thread(lambda s: ASGIAdapter(plain, s), shutdown_timeout=1) as (_, p):
        assert httpx.get(f"http://127.0.0.1:{p}/", timeout=5).status_code == 204


@settings(max_examples=300, deadline=None)
@given(path=st.text(st.sampled_from("/%aAfF09zZ.~-_e8C3A9") | st.characters(
    min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#"), max_size=30),
       query=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                   exclude_characters="#"), max_size=10))
def test_scope_fields_match_the_standard_library(path: str, query: str) -> None:
    """The core fills the request's scope fields: the path is decoded exactly as
    urllib.parse.unquote(..., encoding="utf-8", errors="replace") decodes it."""
    target = ("/" + path + ("?" + query if query else "")).encode()
    parser = _core.RequestParser()
    head = parser.feed(b"GET " + target + b" HTTP/1.0\r\nHost: a\r\nX-Y: z\r\n\r\n")[0]
    base = {"type": "http", "client": None}
    asgi, state, extensions = {"version": "3.0"}, {"k": [1]}, {"x": {}}
    scope = head.scope(base, asgi, state, extensions)
    # each request gets its own copies (shallow, as the spec says of state)
    assert scope["asgi"] == asgi and scope["asgi"] is not asgi
    assert scope["state"] == state and scope["state"] is not state
    assert scope["state"]["k"] is state["k"]
    assert scope["extensions"] == extensions and scope["extensions"] is not extensions
    raw_path, _, query_string = target.partition(b"?")
    assert scope["path"] == unquote(raw_path.decode("latin-1"), encoding="utf-8",
                                    errors="replace")
    assert (scope["raw_path"], scope["query_string"]) == (raw_path, query_string)
    assert (scope["method"], scope["http_version"]) == ("GET", "1.0")
    assert scope["headers"] == [(b"host", b"a"), (b"x-y", b"z")]
    assert scope["type"] == "http" and base == {"type": "http", "client": None}
