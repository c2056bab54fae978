"""The walking skeleton of the native API: results, handler kinds, errors, bodies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tremolo import Tremolo
from tremolo.exceptions import BadRequest, HTTPException, NotFound
from tremolo.testing import serve_in_thread

from ..helpers import exchange, split_responses

app = Tremolo()
seen: dict[str, Any] = {}


@app.route("/bytes")
async def r_bytes(**server: Any) -> bytes:
    return b"raw"


@app.route("/str")
async def r_str(**server: Any) -> str:
    return "caf\u00e9"


@app.route("/latin1")
async def r_latin1(**server: Any) -> tuple[str, str]:
    return "caf\u00e9", "latin-1"


@app.route("/none")
async def r_none(**server: Any) -> None:
    return None


@app.route("/written")
async def r_written(response: Any) -> None:
    await response.write(b"written")


@app.route("/plain")
def r_plain(**server: Any) -> bytes:
    seen["plain_thread"] = threading.current_thread()
    return b"plain"


@app.route("/plain-gen")
def r_plain_gen(**server: Any) -> Iterator[bytes]:
    yield b"a"
    yield b"b"


@app.route("/only-request")
async def r_only_request(request: Any) -> bytes:
    return request.path + b" " + request.query_string


@app.route("/kwargs")
async def r_kwargs(**server: Any) -> bytes:
    return b",".join(sorted(k.encode() for k in server))


@app.route("/echo")
async def r_echo(request: Any, response: Any) -> bytes:
    response.set_content_type(b"application/octet-stream")
    response.set_header(b"X-Length", str(request.content_length))
    return await request.body()


@app.route("/not-found")
async def r_not_found(**server: Any) -> bytes:
    raise NotFound("no such thing")


@app.route("/bad")
async def r_bad(**server: Any) -> bytes:
    raise BadRequest


@app.route("/teapot")
async def r_teapot(**server: Any) -> bytes:
    raise HTTPException("short and stout", code=418, message="I'm a teapot")


@app.route("/crash")
async def r_crash(**server: Any) -> bytes:
    raise RuntimeError("secret detail")


@app.route("/inject")
async def r_inject(response: Any) -> bytes:
    response.set_header(b"X-Evil", b"a\r\nSet-Cookie: stolen=1")
    return b"never"


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve_in_thread(app, shutdown_timeout=2) as (_, p):
        yield p


@pytest.fixture(scope="module")
def debug_port() -> Iterator[int]:
    with serve_in_thread(app, shutdown_timeout=2, debug=True) as (_, p):
        yield p


def get(port: int, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(kw.pop("method", "GET"), f"http://127.0.0.1:{port}{path}",
                         timeout=5, **kw)


def test_return_values(port: int) -> None:
    assert get(port, "/bytes").content == b"raw"
    assert get(port, "/str").content == "caf\u00e9".encode()
    assert get(port, "/latin1").content == b"caf\xe9"
    # the original's documented rule: returning None without having sent anything
    # closes the connection without an answer
    assert exchange(port, b"GET /none HTTP/1.1\r\nHost: t\r\n\r\n") == b""
    # after streaming with response.write(), None just ends the response
    out = exchange(port, b"GET /written HTTP/1.1\r\nHost: t\r\n\r\nGET /bytes HTTP/1.1\r\n"
                         b"Host: t\r\nConnection: close\r\n\r\n")
    assert [r[2] for r in split_responses(out)] == [b"written", b"raw"]


def test_plain_handlers_run_off_the_loop(port: int) -> None:
    assert get(port, "/plain").content == b"plain"
    assert seen["plain_thread"] is not threading.main_thread()
    assert seen["plain_thread"].name != "tremolo-test-server"
    r = get(port, "/plain-gen")
    assert r.content == b"ab" and r.headers["transfer-encoding"] == "chunked"


def test_handler_gets_what_it_declares(port: int) -> None:
    assert get(port, "/only-request?x=1").content == b"/only-request x=1"
    assert get(port, "/kwargs").content == \
        b"app,context,globals,lock,logger,loop,prefix,request,response"


def test_request_body(port: int) -> None:
    r = get(port, "/echo", method="POST", content=b"x" * 5000)
    assert r.content == b"x" * 5000 and r.headers["x-length"] == "5000"
    assert r.headers["content-type"] == "application/octet-stream"
    raw = exchange(port, b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    [(_, headers, body)] = split_responses(raw)
    assert body == b"abcde" and headers[b"x-length"] == b"-1"


def test_http_exceptions(port: int) -> None:
    r = get(port, "/not-found")
    assert r.status_code == 404 and b"no such thing" in r.content
    assert r.headers["connection"] == "close"
    assert get(port, "/bad").status_code == 400
    r = get(port, "/teapot")
    assert (r.status_code, r.reason_phrase, r.content) == (418, "I'm a teapot",
                                                           b"short and stout")


def test_unexpected_errors_hide_details_unless_debug(port: int, debug_port: int) -> None:
    r = get(port, "/crash")
    assert r.status_code == 500 and b"secret detail" not in r.content
    r = get(debug_port, "/crash")
    assert r.status_code == 500 and b"secret detail" in r.content
    assert get(port, "/bytes").content == b"raw"  # the worker keeps serving


def test_header_injection_is_never_written(port: int) -> None:
    raw = exchange(port, b"GET /inject HTTP/1.1\r\nHost: t\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 500 ")
    assert b"stolen" not in raw and b"never" not in raw


def test_limits_come_from_options() -> None:
    small = {"client_max_body_size": 10, "client_max_header_size": 512,
             "max_request_line": 100, "max_chunk_line": 20}
    with serve_in_thread(app, shutdown_timeout=2, **small) as (_, p):
        ok = exchange(p, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n"
                         b"Connection: close\r\n\r\n0123456789")
        assert ok.startswith(b"HTTP/1.1 200 ")
        for raw, status in [
            (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n", 413),
            (b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
            (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"v" * 600 + b"\r\n\r\n", 431),
            (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"1;" + b"e" * 30 + b"\r\nx\r\n0\r\n\r\n", 400),
        ]:
            assert exchange(p, raw).startswith(b"HTTP/1.1 %d " % status), raw[:40]
