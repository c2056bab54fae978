"""The request and response APIs, over real sockets."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tremolo import Tremolo
from tremolo.testing import serve_in_thread

from ..helpers import exchange, split_responses

app = Tremolo()


@app.route("/info")
async def info(request: Any) -> str:
    return json.dumps({
        "method": request.method.decode(), "url": request.url.decode(),
        "path": request.path.decode(), "qs": request.query_string.decode(),
        "version": request.version.decode(), "host": request.host.decode(),
        "query": request.query, "cookies": request.cookies,
        "accept": [v.decode() for v in request.headers.getlist(b"accept")],
        "raw_accept": [v.decode() for v in request.headers.get(b"accept", [])],
        "ip": request.ip.decode(), "scheme": request.scheme.decode(),
        "client_host": request.client[0], "content_type": request.content_type.decode(),
        "content_length": request.content_length, "uid": len(request.uid()),
        "uid16": len(request.uid(16)),
    })


@app.route("/read")
async def read(request: Any) -> bytes:
    first = await request.read(3)
    second = await request.read(4)
    rest = await request.body()
    return b"|".join([first, second, rest])


@app.route("/json")
async def read_json(request: Any) -> str:
    data = await request.json()
    return json.dumps({"got": data})


@app.route("/cookie")
async def cookie(response: Any) -> bytes:
    response.set_cookie("a", "1", expires=60, httponly=True, samesite="Lax", secure=True)
    response.set_cookie("b", "2", domain="example.com")
    response.append_header("X-Multi", "1")
    response.append_header("X-Multi", "2")
    response.set_header("X-Replaced", "old")
    response.set_header("x-replaced", "new")
    return b"ok"


@app.route("/stream")
async def stream(response: Any) -> None:
    response.set_content_type("text/plain")
    await response.write(b"one ")
    await response.write("two ")
    await response.end(b"three")


@app.route("/send")
async def send(response: Any) -> None:
    await response.write(None, chunked=True)  # the head only
    await response.send(b"3\r\nraw\r\n0\r\n\r\n")
    response.close(keepalive=True)


@app.route("/status")
async def status(response: Any) -> bytes:
    response.set_status(418, "Short And Stout")
    assert response.get_status() == (418, b"Short And Stout")
    return b"tea"


@app.route("/bad-header")
async def bad_header(response: Any) -> bytes:
    response.set_header("X-Bad", "a\r\nInjected: yes")
    return b"never"


@app.route("/sync-body")
def sync_body(request: Any, response: Any) -> bytes:
    response.set_header("X-Sync", "yes")
    return b"sync got " + request.body()


@app.route("/sync-stream")
def sync_stream(request: Any) -> bytes:
    return b",".join(request.stream())


@app.route("/framing")
async def framing(request: Any, response: Any) -> Any:
    """A handler setting the fields the server owns (?case=...)."""
    case = request.query.get("case", [""])[0]
    if case == "right-length":
        response.set_header("Content-Length", "5")
        response.set_header("Transfer-Encoding", "gzip")
        response.set_header("Keep-Alive", "timeout=99")
        return b"hello"
    if case == "wrong-length":
        response.set_header("Content-Length", "5")
        return b"hello world"
    if case == "close":
        response.set_header("Connection", "close")
        return b"bye"
    response.set_header("Content-Length", "10" if case == "stream" else "20")

    async def body() -> Any:
        yield b"01234"
        yield b"56789"

    return body()


@app.route("/tuple")
async def tuple_body(request: Any) -> Any:
    """The tuples the original takes: (str, encoding), or bytes first, whose
    encoding is then unused (`return request.ip, b'latin-1'`)."""
    kind = request.query_string
    if kind == b"str":
        return "\xe9t\xe9", "latin-1"
    if kind == b"bytearray":
        return (bytearray(b"array"),)
    return request.path, b"latin-1"


@app.route("/line")
async def line(request: Any, response: Any) -> bytes:
    before = response.line
    response.set_status(404, "Nope")
    return b"%r %r" % (before, response.line)


@app.route("/go")
async def go(request: Any, response: Any) -> None:
    code = request.query_string
    raise response.redirect("/there", code=int(code)) if code.isdigit() \
        else response.redirect("/there")


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve_in_thread(app, shutdown_timeout=2) as (_, p):
        yield p


def get(port: int, path: str, method: str = "GET", **kw: Any) -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=5, **kw)


def test_request_fields(port: int) -> None:
    r = get(port, "/info?a=1&b=2&a=3", headers={
        "Cookie": "x=1; y=\"two\"", "Accept": "text/html, text/plain",
        "Content-Type": "text/plain; charset=utf-8"})
    d = r.json()
    assert d["method"] == "GET" and d["url"] == "/info?a=1&b=2&a=3"
    assert d["path"] == "/info" and d["qs"] == "a=1&b=2&a=3" and d["version"] == "1.1"
    assert d["host"] == f"127.0.0.1:{port}"
    assert d["query"] == {"a": ["1", "3"], "b": ["2"]}
    assert d["cookies"] == {"x": ["1"], "y": ["two"]}
    assert d["accept"] == ["text/html", "text/plain"]
    assert d["raw_accept"] == ["text/html, text/plain"]
    assert d["ip"] == "127.0.0.1" and d["scheme"] == "http"
    assert d["content_type"] == "text/plain; charset=utf-8"
    assert d["content_length"] == 0 and d["uid"] == 32 and d["uid16"] == 16


def test_forwarded_headers_from_a_trusted_proxy(port: int) -> None:
    # 127.0.0.1 is trusted by default: the headers are believed, and the client is
    # the rightmost address that is not a trusted proxy (10.0.0.1 is not one here)
    d = get(port, "/info", headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1",
                                    "X-Forwarded-Proto": "https"}).json()
    assert d["ip"] == "10.0.0.1" and d["scheme"] == "https"


def test_forwarded_headers_from_an_untrusted_peer() -> None:
    with serve_in_thread(app, shutdown_timeout=2, trusted_proxies="10.0.0.0/8") as (_, p):
        d = get(p, "/info", headers={"X-Forwarded-For": "203.0.113.9",
                                     "X-Forwarded-Proto": "https"}).json()
    assert d["ip"] == "127.0.0.1" and d["scheme"] == "http"


def test_read_n_and_body_lose_nothing(port: int) -> None:
    assert get(port, "/read", "POST", content=b"abcdefghij").content == b"abc|defg|hij"
    raw = (b"POST /read HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n2\r\nab\r\n2\r\ncd\r\n6\r\nefghij\r\n0\r\n\r\n")
    [(_, _, body)] = split_responses(exchange(port, raw))
    assert body == b"abc|defg|hij"
    assert get(port, "/read", "POST", content=b"ab").content == b"ab||"


def test_json(port: int) -> None:
    assert get(port, "/json", "POST", json={"k": [1, 2]}).json() == {"got": {"k": [1, 2]}}
    r = get(port, "/json", "POST", content=b"{not json")
    assert r.status_code == 400


def test_response_fields(port: int) -> None:
    r = get(port, "/cookie")
    cookies = r.headers.get_list("set-cookie")
    assert cookies[0].startswith("a=1; Expires=") and "Max-Age=60" in cookies[0]
    expires = cookies[0].split("Expires=")[1].split(";")[0]  # an IMF-fixdate a minute on
    assert abs(email.utils.parsedate_to_datetime(expires).timestamp() - time.time() - 60) < 5
    assert expires.endswith(" GMT") and len(expires) == 29
    assert cookies[0].endswith("Path=/; Secure; HttpOnly; SameSite=Lax")
    assert cookies[1] == "b=2; Path=/; Domain=example.com"
    assert r.headers.get_list("x-multi") == ["1", "2"]
    assert r.headers.get_list("x-replaced") == ["new"]
    r = get(port, "/status")
    assert (r.status_code, r.reason_phrase, r.content) == (418, "Short And Stout", b"tea")


def test_streaming_responses(port: int) -> None:
    r = get(port, "/stream")
    assert r.content == b"one two three" and r.headers["transfer-encoding"] == "chunked"
    assert r.headers["content-type"] == "text/plain"
    out = exchange(port, b"GET /send HTTP/1.1\r\nHost: t\r\n\r\nGET /status HTTP/1.1\r\n"
                         b"Host: t\r\nConnection: close\r\n\r\n")
    assert [r[2] for r in split_responses(out)] == [b"raw", b"tea"]


def test_header_injection_is_refused(port: int) -> None:
    out = exchange(port, b"GET /bad-header HTTP/1.1\r\nHost: t\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 500 ") and b"Injected" not in out


def test_framing_fields_set_by_a_handler_are_the_servers(port: int) -> None:
    def ask(case: str) -> bytes:
        return exchange(port, b"GET /framing?case=%s HTTP/1.1\r\nHost: t\r\n"
                              b"Connection: close\r\n\r\n" % case.encode())

    # a right Content-Length is written once; transfer codings and keep-alive
    # parameters are the server's to say, and left out
    out = ask("right-length")
    head = out.partition(b"\r\n\r\n")[0].lower()
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"\r\n\r\nhello")
    assert head.count(b"content-length") == 1
    assert b"transfer-encoding" not in head and b"keep-alive" not in head
    # a wrong one is the handler's error, never two lengths on the wire
    out = ask("wrong-length")
    assert out.startswith(b"HTTP/1.1 500 ") and out.lower().count(b"content-length") == 1
    # Connection: close from a handler closes the connection after the response
    out = exchange(port, b"GET /framing?case=close HTTP/1.1\r\nHost: t\r\n\r\n"
                         b"GET /status HTTP/1.1\r\nHost: t\r\n\r\n")
    assert [r[2] for r in split_responses(out)] == [b"bye"]
    # a streamed body frames by the handler's Content-Length instead of chunks
    out = ask("stream")
    assert b"Content-Length: 10\r\n" in out and out.endswith(b"\r\n\r\n0123456789")
    assert b"chunked" not in out
    # ...and one that falls short is cut: the client sees the connection close
    out = ask("short")
    assert b"Content-Length: 20\r\n" in out and out.endswith(b"\r\n\r\n0123456789")


def test_sync_handlers_use_request_without_await(port: int) -> None:
    r = get(port, "/sync-body", "POST", content=b"payload")
    assert r.content == b"sync got payload" and r.headers["x-sync"] == "yes"
    raw = (b"POST /sync-stream HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n")
    [(_, _, body)] = split_responses(exchange(port, raw))
    assert body in (b"a,b", b"ab")  # pieces as they arrived


@app.route("/big")
async def big(request: Any) -> bytes:
    return b"x" * 100_000 if request.query_string != b"stream" else b""


@app.route("/big-stream")
async def big_stream(**server: Any) -> Any:
    yield b"a" * 70_000
    yield b"b" * 10


def test_large_bodies_are_framed_right(port: int) -> None:
    r = get(port, "/big")
    assert r.content == b"x" * 100_000 and r.headers["content-length"] == "100000"
    r = get(port, "/big", "HEAD")
    assert r.content == b"" and r.headers["content-length"] == "100000"
    r = get(port, "/big-stream")
    assert r.content == b"a" * 70_000 + b"b" * 10
    out = exchange(port, b"GET /big-stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert b"\r\n11170\r\n" + b"a" * 70_000 + b"\r\na\r\nbbbbbbbbbb\r\n0\r\n\r\n" in out


def test_too_many_query_fields_is_the_clients_error(port: int) -> None:
    query = "&".join(f"k{i}=v" for i in range(101))
    r = get(port, f"/info?{query}")
    assert r.status_code == 400 and "query fields" in r.text
    assert get(port, "/info?" + "&".join(f"k{i}=v" for i in range(100))).status_code == 200


def test_tuples_with_bytes_first_are_bodies(port: int) -> None:
    assert get(port, "/tuple").content == b"/tuple"
    assert get(port, "/tuple?str").content == b"\xe9t\xe9"
    assert get(port, "/tuple?bytearray").content == b"array"


def test_response_line_reads_as_the_originals(port: int) -> None:
    r = get(port, "/line")
    assert (r.status_code, r.content) == (
        404, b"[b'HTTP/1.1', b'200', b'OK'] [b'HTTP/1.1', b'404', b'Nope']")
    out = exchange(port, b"GET /line HTTP/1.0\r\n\r\n")
    assert b"[b'HTTP/1.0', b'200', b'OK']" in out


def test_redirect_codes_as_the_original(port: int) -> None:
    def status(target: str, version: str = "1.1") -> bytes:
        out = exchange(port, f"GET {target} HTTP/{version}\r\nHost: t\r\n"
                             "Connection: close\r\n\r\n".encode())
        assert b"\r\nLocation: /there\r\n" in out
        return out.split(b"\r\n", 1)[0].split(b" ", 1)[1]

    assert status("/go") == b"302 Found"
    assert status("/go?301", "1.0") == b"301 Moved Permanently"
    assert status("/go?303") == b"303 See Other"
    assert status("/go?303", "1.0") == b"302 Found"  # 303 is HTTP/1.1's
    assert status("/go?307") == b"307 Temporary Redirect"
    assert status("/go?300") == b"302 Found"  # not a redirect's code
