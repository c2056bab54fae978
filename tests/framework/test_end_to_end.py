"""The native framework end to end: routing, views, errors, options, hooks,
middlewares, mount."""

from __future__ import annotations

import asyncio
import sys
import time
import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tremolo import Tremolo
from tremolo.exceptions import BadRequest, Forbidden, HTTPException
from tremolo.testing import serve_in_thread

from ..helpers import exchange, split_responses

events: list[str] = []
app = Tremolo()


@app.route("/static/path")
async def static_path(request: Any) -> bytes:
    return b"static " + request.query_string


@app.route(r"^/page/(?P<page_id>\d+)$")
async def page(request: Any, page_id: bytes = b"1", **server: Any) -> bytes:
    return b"page " + page_id + b" " + request.params.path["page_id"]


@app.route(r"^/items/(?P<name>[a-z]+)")
async def items_old(name: bytes) -> bytes:
    return b"old " + name


@app.route(r"^/items/(?P<name>[a-z]+)")  # later registrations win
async def items_new(name: bytes) -> bytes:
    return b"new " + name


@app.route("/dup")
async def dup_old() -> bytes:
    return b"old"


@app.route("/dup")
async def dup_new() -> bytes:
    return b"new"


class Model:
    def message(self) -> str:
        return "from the model"


@app.route("/view", model=Model)
class View:
    def __init__(self, model: type[Model], **options: Any) -> None:
        self.model = model()

    async def get(self, **server: Any) -> str:
        return self.model.message()

    async def post(self, request: Any, **server: Any) -> bytes:
        return b"posted " + await request.body()


class Counter:
    def __init__(self) -> None:
        self.n = 0

    async def get(self, **server: Any) -> bytes:
        self.n += 1
        return b"%d" % self.n


app.add_route(Counter(), "/instance")

module_view = types.ModuleType("module_view")


async def _module_delete(**server: Any) -> bytes:
    return b"deleted"


module_view.delete = _module_delete  # type: ignore[attr-defined]
app.add_route(module_view, "/module")


@app.route("/options")
async def with_options(request: Any, status: tuple[int, bytes] = (201, b"Made"),
                       content_type: str = "text/plain", flavour: str = "mint") -> bytes:
    return request.ctx.options["flavour"].encode()


@app.route("/unchunked")
async def unchunked(chunked: bool = False, **server: Any) -> Any:
    yield b"a"
    yield b"b"


@app.route("/forbidden")
async def forbidden() -> bytes:
    raise Forbidden("keep out", x_reason="test")


@app.route("/redirect")
async def redirect(response: Any) -> bytes:
    raise response.redirect("/static/path", 301)


@app.route("/timeout")
async def timeout() -> bytes:
    raise HTTPException(cause=TimeoutError("too slow"))


@app.route("/async-work")
async def async_work() -> bytes:
    await asyncio.sleep(0.01)
    return b"done"


@app.error(404)
async def custom_404(request: Any, **server: Any) -> bytes:
    return b"custom 404 for " + request.path


@app.error(500)
async def custom_500(exc: Any, request: Any, **server: Any) -> str | None:
    if request.path == b"/forbidden":
        return None  # the exception's own message
    return f"custom {exc.code}: {type(exc).__name__} from {type(exc.__cause__).__name__}"


@app.route("/crash")
async def crash() -> bytes:
    raise ValueError("boom")


# middlewares: lower priority first; equal response priorities unwind in reverse
@app.on_request
async def mw_request_a(request: Any, **server: Any) -> Any:
    events.append("request:a")
    if request.path == b"/halt":
        server["response"].set_status(403)
        return b"halted"
    if request.path == b"/halt-raise":
        raise BadRequest("halted by middleware")
    return None


@app.on_request(priority=1)
async def mw_request_first(**server: Any) -> None:
    events.append("request:first")


@app.on_response
async def mw_response_a(response: Any, **server: Any) -> None:
    events.append("response:a")
    response.set_header("X-Middleware", "a")


@app.on_response
async def mw_response_b(response: Any, request: Any, **server: Any) -> None:
    events.append("response:b")
    if request.path == b"/static/path":
        response.set_status(202)


@app.on_connect
async def on_connect(context: Any, **server: Any) -> None:
    context.opened = True
    events.append("connect")


@app.on_close
async def on_close(**server: Any) -> None:
    events.append("close")


@app.on_worker_start
async def start(globals: Any, **server: Any) -> None:
    globals.started = True
    events.append("worker_start")


@app.on_worker_stop
def stop(**server: Any) -> None:
    events.append("worker_stop")


@app.route("/globals")
async def show_globals(globals: Any, context: Any, **server: Any) -> bytes:
    return b"%r %r %r" % (globals.started, context.opened, globals.options["custom_knob"])


sub = Tremolo()


@sub.route("/hello")
async def sub_hello() -> bytes:
    return b"sub hello"


@sub.route(r"^/re/(?P<x>\d+)$")
async def sub_re(x: bytes) -> bytes:
    return b"sub re " + x


@sub.on_request
async def sub_mw(request: Any, **server: Any) -> None:
    events.append("sub:" + request.path.decode())


app.mount("/sub", sub)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    from tremolo.testing import serve_in_thread
    with serve_in_thread(app, shutdown_timeout=2, custom_knob="yes") as (_, p):
        yield p
    assert events[-1] == "worker_stop"


def get(port: int, path: str, method: str = "GET", **kw: Any) -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=5, **kw)


def test_static_routes(port: int) -> None:
    for path in ("/static/path", "/static/path/", "/static/path?x=1", "/static/path/?x=1"):
        r = get(port, path)
        assert r.content.startswith(b"static"), path
    assert get(port, "/static/path?a=b").content == b"static a=b"
    assert get(port, "/static").status_code == 404
    assert get(port, "/dup").content == b"new"


def test_regex_routes(port: int) -> None:
    assert get(port, "/page/12").content == b"page 12 12"
    assert get(port, "/page/12?q=1").content == b"page 12 12"
    assert get(port, "/page/x").status_code == 404
    assert get(port, "/items/abc").content == b"new abc"


def test_class_views(port: int) -> None:
    assert get(port, "/view").text == "from the model"
    assert get(port, "/view", "POST", content=b"x").content == b"posted x"
    r = get(port, "/view", "DELETE")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"
    r = get(port, "/view", "HEAD")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == str(len("from the model"))
    assert [get(port, "/instance").content for _ in range(2)] in ([b"1", b"2"], [b"2", b"3"])
    assert get(port, "/module", "DELETE").content == b"deleted"
    assert get(port, "/module").status_code == 405


def test_route_options(port: int) -> None:
    r = get(port, "/options")
    assert (r.status_code, r.reason_phrase) == (201, "Made")
    assert r.headers["content-type"] == "text/plain" and r.content == b"mint"
    out = exchange(port, b"GET /unchunked HTTP/1.1\r\nHost: t\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert body == b"ab"


def test_errors(port: int) -> None:
    r = get(port, "/forbidden")
    assert r.status_code == 403 and r.headers["x-reason"] == "test"
    assert r.content == b"keep out" and r.headers["connection"] == "close"
    r = get(port, "/redirect", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/static/path"
    assert "connection" not in r.headers  # a redirect keeps the connection
    r = get(port, "/timeout")  # the 500 handler receives the errors without one
    assert r.status_code == 408
    assert r.content == b"custom 408: RequestTimeout from TimeoutError"
    r = get(port, "/nowhere")
    assert r.status_code == 404 and r.content == b"custom 404 for /nowhere"
    r = get(port, "/crash")
    assert r.status_code == 500
    assert r.content == b"custom 500: InternalServerError from ValueError"
    assert get(port, "/async-work").content == b"done"


def test_middlewares(port: int) -> None:
    events.clear()
    r = get(port, "/static/path")
    assert r.status_code == 202  # a response middleware changed it
    assert r.headers["x-middleware"] == "a"
    order = [e for e in events if e.startswith(("request", "response"))]
    assert order == ["request:first", "request:a", "response:b", "response:a"]
    r = get(port, "/halt")
    assert r.status_code == 403 and r.content == b"halted"
    r = get(port, "/halt-raise")
    assert r.status_code == 400 and b"halted by middleware" in r.content


def test_hooks_and_globals(port: int) -> None:
    events.clear()
    assert get(port, "/globals").content == b"True True 'yes'"
    for _ in range(50):
        if "close" in events:
            break
        asyncio.run(asyncio.sleep(0.02))
    assert "connect" in events and "close" in events


def test_mount(port: int) -> None:
    events.clear()
    assert get(port, "/sub/hello").content == b"sub hello"
    assert get(port, "/sub/re/7").content == b"sub re 7"
    assert get(port, "/hello").status_code == 404
    assert "sub:/sub/hello" in events
    events.clear()
    get(port, "/static/path")
    assert not any(e.startswith("sub:") for e in events)  # only under its prefix


def test_mount_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        app.mount("no-slash", Tremolo())
    with pytest.raises(ValueError):
        app.mount("/self", app)
    with pytest.raises(ValueError):
        app.error(399)
    with pytest.raises(ValueError):
        app.add_hook(lambda: None, "nope")


def test_pipelined_through_the_framework(port: int) -> None:
    reqs = b"".join(b"GET /page/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(20))
    out = exchange(port, reqs + b"GET /dup HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    bodies = [r[2] for r in split_responses(out)]
    assert bodies == [b"page %d %d" % (i, i) for i in range(20)] + [b"new"]


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("Linux only")


def test_a_declined_upgrade_does_not_stall_the_connection() -> None:
    """curl --http2 -d abc URL1 URL2: an h2c upgrade with a body the handler does not
    read, then another request on the same connection; and an upgrade pipelined
    behind another request. Every answer comes at once."""
    import socket
    import time

    app = Tremolo()

    @app.route("/a")
    async def a(request, **server):
        await request.body()  # (a body left unread would end the connection)
        return b"A"

    with serve_in_thread(app, request_timeout=30) as (_, port):
        upgrade = (b"POST /a HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                   b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
                   b"Content-Length: 3\r\n\r\nabc")
        plain = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
        for first, second in ((upgrade, plain), (plain, upgrade.replace(b"abc", b"")
                                                  .replace(b"3\r\n", b"0\r\n"))):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                t0 = time.monotonic()
                s.sendall(first)
                got = b""
                while got.count(b"HTTP/1.1 200") < 1:
                    got += s.recv(65536)
                s.sendall(second + plain)
                while got.count(b"HTTP/1.1 200") < 3:
                    chunk = s.recv(65536)
                    assert chunk, got
                    got += chunk
                assert time.monotonic() - t0 < 2, "a request waited behind the upgrade"


def test_pipelined_body_data_is_bounded_in_bytes() -> None:
    """While a request is answered, the body of the one pipelined behind it waits in
    the client and the kernel, not in the server: reading pauses past a few buffers."""
    import socket
    import time

    app = Tremolo()

    @app.route("/slow")
    async def slow(**server):
        await asyncio.sleep(1.5)
        return b"slow"

    with serve_in_thread(app, client_max_body_size=1 << 30) as (_, port), \
            socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 268435456\r\n\r\n")
        s.setblocking(False)
        chunk, sent, deadline = b"b" * 65536, 0, time.monotonic() + 1
        while time.monotonic() < deadline:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
    assert sent < 16 << 20, f"the server took {sent >> 20} MiB of a body it was not reading"


def test_a_bad_body_after_the_answer_closes_without_a_second_answer() -> None:
    app = Tremolo()

    @app.route("/a")
    async def a(**server):
        return b"answered without reading"

    with serve_in_thread(app) as (_, port):
        raw = exchange(port, b"POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                             b"\r\n5\r\nhello\r\nzz\r\n", timeout=3)
    assert raw.count(b"HTTP/1.1 ") == 1 and raw.startswith(b"HTTP/1.1 200"), raw


def test_an_early_413_is_read_by_a_client_still_sending() -> None:
    """The answer comes before the body is read. Closing outright would make the
    kernel reset the connection under a client still sending (and it may lose the
    answer); the server ends its side and drops what comes for a while instead."""
    import socket
    import time

    app = Tremolo()

    @app.route("/up")
    async def up(request, **server):
        return await request.body()

    with serve_in_thread(app, client_max_body_size=1000) as (_, port), \
            socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):  # the answer, then the server's end (FIN)
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 413 Payload Too Large\r\n"), answer
        assert answer.endswith(b"\r\n\r\nPayload Too Large")  # the original's words
        for _ in range(4):  # the body goes on: read and dropped, no reset
            s.sendall(b"z" * 65536)
            time.sleep(0.05)


def test_an_unsendable_return_value_is_a_500_with_a_named_error(
        caplog: pytest.LogCaptureFixture) -> None:
    app = Tremolo()

    @app.route("/dict")
    async def gives_a_dict(**server):
        return {"not": "bytes"}

    with serve_in_thread(app) as (_, port):
        r = httpx.get(f"http://127.0.0.1:{port}/dict", timeout=5)
    assert r.status_code == 500
    assert any("gives_a_dict" in rec.getMessage() + str(rec.exc_info and rec.exc_info[1])
               and "dict" in str(rec.exc_info and rec.exc_info[1])
               for rec in caplog.records if rec.levelname == "ERROR")


def test_raw_response_and_request_context() -> None:
    app = Tremolo()

    @app.route("/raw")
    async def raw(request, response, **server):
        request.context.note = "same"
        assert request.ctx.note == "same" and request.context is request.ctx
        await response.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nmy own")

    with serve_in_thread(app) as (_, port):
        out = exchange(port, b"GET /raw HTTP/1.1\r\nHost: t\r\n\r\n", timeout=3)
    assert out == b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nmy own"


def test_cookie_values_cannot_break_the_field_and_round_trip() -> None:
    app = Tremolo()

    @app.route("/set")
    async def set_(response, **server):
        response.set_cookie("sess", "a b; Path=/admin; HttpOnly,é")
        return b"ok"

    @app.route("/get")
    async def get_(request, **server):
        return request.cookies["sess"][0]

    with serve_in_thread(app) as (_, port), \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
        field = c.get("/set").headers["set-cookie"]
        name_value, *attributes = field.split("; ")
        assert name_value.startswith("sess=") and " " not in name_value
        assert [a.split("=")[0] for a in attributes] == ["Path"]  # nothing injected
        assert c.get("/get", headers={"Cookie": name_value}).text == \
            "a b; Path=/admin; HttpOnly,é"
    with pytest.raises(ValueError, match="token"):
        from tremolo.framework.response import Response

        Response.set_cookie(types.SimpleNamespace(), "bad name", "x")  # type: ignore[arg-type]


def test_root_without_a_route_is_503_as_the_original() -> None:
    app = Tremolo()

    @app.route("/other")
    async def other(**server):
        return b"other"

    with serve_in_thread(app) as (_, port), \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
        r = c.get("/")
        assert (r.status_code, r.text) == (503, "Service Unavailable")
        assert c.get("/nowhere").status_code == 404

    @app.route("/")
    async def root(**server):
        return b"mine"

    with serve_in_thread(app) as (_, port):
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "mine"


# -- the lock handlers receive ---------------------------------------------------


def test_a_lock_wait_is_bounded_and_gives_back_what_it_takes_late() -> None:
    from tremolo.locks import ServerLock

    lock = ServerLock.create(2)

    async def scenario() -> None:
        assert lock(3).name == 1  # the original's modulo
        await lock.acquire()
        with pytest.raises(TimeoutError):  # 0 only tries
            await lock.acquire(timeout=0)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await lock(0, timeout=0.2).acquire()
        assert 0.15 < time.monotonic() - start < 2
        # a waiter cancelled while its thread waits: the lock released meanwhile is
        # taken by that thread and given back, not kept by nobody
        waiter = asyncio.ensure_future(lock.acquire(timeout=5))
        await asyncio.sleep(0.1)
        waiter.cancel()
        lock.release()
        await asyncio.sleep(0.2)
        await lock.acquire(timeout=1)
        lock.release()
        lock.release()  # not held: nothing happens, as in the original
        async with lock(1):
            with pytest.raises(TimeoutError):
                await lock(1).acquire(timeout=0)
        await lock(1).acquire(timeout=0)

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_a_handler_sees_a_held_lock_time_out() -> None:
    app = Tremolo()

    async def hold(lock: Any) -> None:
        async with lock:
            await asyncio.sleep(0.3)

    @app.route("/getlock")
    async def get_lock(lock: Any, **server: Any) -> Any:
        async with lock:
            yield b"Lock"
        async with lock(5):
            yield b" "
        holder = asyncio.get_running_loop().create_task(hold(lock))
        await asyncio.sleep(0.1)
        try:
            await lock.acquire(timeout=0)
            yield b"was free"
        except TimeoutError:
            yield b"was acquired!"
        await holder

    with serve_in_thread(app) as (_, port):
        r = httpx.get(f"http://127.0.0.1:{port}/getlock", timeout=5)
    assert (r.status_code, r.content) == (200, b"Lock was acquired!")
