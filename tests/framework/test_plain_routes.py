"""Plain routes (Route.plain): the native request cycle run by PlainRoutes and
RequestCall in Rust (rust/src/py/call.rs, plain.rs). Every way out of that cycle is driven
here end to end: the short answer, each result it hands back to Python, errors,
waits, cancellation, the task's context, and routes and middlewares added while
serving."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import socket
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from tremolo import Tremolo
from tremolo.exceptions import Forbidden
from tremolo.testing import serve_in_thread
from tremolo.watchers import blocking_request

from ..helpers import exchange

app = Tremolo()
BIG = b"x" * 100_000
var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
seen: dict[str, Any] = {}


@app.route("/hello")
async def hello(**server: Any) -> bytes:
    return b"Hello world!"


@app.route("/head")
async def head(response: Any) -> bytes:
    response.set_status(201, "Made")
    response.set_header("X-One", "1")
    response.set_content_type("text/plain")
    return b"made"


@app.route("/nobody")
async def nobody(response: Any) -> bytes:
    response.set_status(204)
    response.set_header("X-Two", "2")
    return b""


@app.route("/close")
async def close(response: Any) -> bytes:
    response.keepalive = False  # (what close() sets, without closing at once)
    return b"bye"


@app.route("/str")
async def text() -> str:
    return "text é"


@app.route("/tuple")
async def pair() -> tuple[str, str]:
    return ("latin é", "latin-1")


@app.route("/big")
async def big() -> bytes:
    return BIG


@app.route("/stream")
async def stream() -> Any:
    async def parts() -> Any:
        yield b"a"
        yield "b"

    return parts()


@app.route("/nothing")
async def nothing() -> None:
    return None


@app.route("/forbidden")
async def forbidden() -> bytes:
    raise Forbidden("not you")


@app.route("/bug")
async def bug() -> bytes:
    raise ZeroDivisionError("internal detail")


@app.route("/late-bug")
async def late_bug() -> bytes:
    await asyncio.sleep(0.01)
    raise ZeroDivisionError("internal detail")


@app.route("/bad-type")
async def bad_type() -> Any:
    return 42


@app.route("/wait")
async def wait(request: Any) -> bytes:
    await asyncio.sleep(0.01)
    await asyncio.sleep(0)  # a bare yield: one loop turn
    return b"waited " + request.path


@app.route("/slow")
async def slow() -> bytes:
    await asyncio.sleep(30)
    return b"too late"


@app.route("/task")
async def task() -> bytes:
    current = asyncio.current_task()
    var.set("set by the handler")
    async with asyncio.timeout(5):
        await asyncio.sleep(0)
    with anyio.fail_after(5):
        await anyio.sleep(0)
    with anyio.move_on_after(0.01) as scope:
        await anyio.sleep(5)
    return f"{type(current).__name__} {scope.cancelled_caught} {var.get()}".encode()


@app.route("/context")
async def context() -> bytes:
    return var.get().encode()


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    with serve_in_thread(app, app_handler_timeout=0.5, buffer_size=65536) as (_, port):
        yield port


def test_the_routes_are_plain() -> None:
    # (a route with options, a regex or a view is not; see Route.plain)
    assert all(app.router.static[p].plain is not None
               for p in (b"/hello", b"/head", b"/wait", b"/task"))


def test_the_usual_answer(server: int) -> None:
    r = httpx.get(f"http://127.0.0.1:{server}/hello")
    assert (r.status_code, r.content) == (200, b"Hello world!")
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-length"] == "12"


def test_the_status_and_fields_the_handler_set(server: int) -> None:
    out = exchange(server, b"GET /head HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 201 Made"
    assert b"Content-Type: text/plain" in lines and b"X-One: 1" in lines
    assert body == b"made"
    out = exchange(server, b"GET /nobody HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 204 ") and b"X-Two: 2" in head
    assert b"Content-Type" not in head and body == b""


def test_a_head_request_gets_no_body(server: int) -> None:
    out = exchange(server, b"HEAD /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 12\r\n" in out
    assert out.endswith(b"\r\n\r\n")


def test_keep_alive_off_closes_after_the_answer(server: int) -> None:
    out = exchange(server, b"GET /close HTTP/1.1\r\nHost: t\r\n\r\n"
                   b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
    assert out.count(b"HTTP/1.1 ") == 1 and out.endswith(b"bye")
    assert b"Connection: close" in out


def test_other_results_go_through_python(server: int) -> None:
    base = f"http://127.0.0.1:{server}"
    assert httpx.get(f"{base}/str").content == "text é".encode()
    assert httpx.get(f"{base}/tuple").content == "latin é".encode("latin-1")
    assert httpx.get(f"{base}/big").content == BIG  # past buffer_size
    r = httpx.get(f"{base}/stream")
    assert r.content == b"ab" and r.headers["transfer-encoding"] == "chunked"
    # None with nothing sent: closed without an answer, as the original does
    assert exchange(server, b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n") == b""
    r = httpx.get(f"{base}/bad-type")
    assert r.status_code == 500 and b"internal" not in r.content


def test_errors_are_answered_by_the_error_handlers(server: int) -> None:
    base = f"http://127.0.0.1:{server}"
    r = httpx.get(f"{base}/forbidden")
    assert (r.status_code, r.content) == (403, b"not you")
    for path in ("/bug", "/late-bug"):
        r = httpx.get(base + path)
        assert r.status_code == 500 and b"internal detail" not in r.content


def test_a_handler_that_waits(server: int) -> None:
    with httpx.Client() as client:  # one connection, several waits in a row
        for _ in range(3):
            assert client.get(f"http://127.0.0.1:{server}/wait").content == b"waited /wait"


def test_a_handler_past_its_time_is_cancelled(server: int) -> None:
    r = httpx.get(f"http://127.0.0.1:{server}/slow", timeout=5)
    assert r.status_code >= 500
    assert httpx.get(f"http://127.0.0.1:{server}/hello").status_code == 200


def test_the_handler_runs_in_its_own_task_and_context(server: int) -> None:
    base = f"http://127.0.0.1:{server}"
    assert httpx.get(f"{base}/task").content == b"RequestTask True set by the handler"
    # what one handler set in its context is not the next one's
    assert httpx.get(f"{base}/context").content == b"unset"


def test_a_disconnect_while_waiting_ends_the_handler(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=5) as s:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
    assert httpx.get(f"http://127.0.0.1:{server}/hello").status_code == 200


def test_routes_and_middlewares_added_while_serving() -> None:
    live = Tremolo()

    @live.route("/a")
    async def a() -> bytes:
        return b"a"

    with serve_in_thread(live) as (_, port):
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/a").content == b"a"

        @live.route("/b")
        async def b() -> bytes:
            return b"b"

        assert httpx.get(f"{base}/b").content == b"b"  # the router's version changed

        @live.on_response
        async def mark(response: Any, **server: Any) -> None:
            response.set_header("X-Mark", "yes")

        # no route is plain once a middleware is there: it runs for /a too
        r = httpx.get(f"{base}/a")
        assert r.content == b"a" and r.headers["x-mark"] == "yes"


def test_a_handler_returning_another_awaitable() -> None:
    # A handler whose function says it is a coroutine function but returns another
    # awaitable (a wrapper, say): the adapter awaits it.
    odd = Tremolo()

    @odd.route("/odd")
    async def placeholder(**server: Any) -> bytes:
        return b""

    def returns_future(**server: Any) -> Any:
        future = server["loop"].create_future()
        future.set_result(b"from a future")
        return future

    handler = odd.router.static[b"/odd"].plain
    assert handler is not None
    handler.func = returns_future
    with serve_in_thread(odd) as (_, port):
        assert httpx.get(f"http://127.0.0.1:{port}/odd").content == b"from a future"


def test_the_cycle_seen_from_inside_its_handler(server: int) -> None:
    # what code that looks at the task's coroutine sees: the handler's coroutine's
    # state (anyio asks for it), and a cycle that refuses to be stepped twice
    assert httpx.get(f"http://127.0.0.1:{server}/introspect").content == \
        b"RequestCall CORO_RUNNING introspect ValueError TypeError AttributeError"


@app.route("/introspect")
async def introspect() -> bytes:
    call: Any = asyncio.current_task().get_coro()  # type: ignore[union-attr]
    out = [type(call).__name__, inspect.getcoroutinestate(call), call.cr_frame.f_code.co_name]
    for attempt in (lambda: call.send(None), lambda: call.send(1), lambda: call.no_such):
        try:
            attempt()
        except Exception as exc:
            out.append(type(exc).__name__)
    return " ".join(out).encode()


def test_a_blocked_loop_names_the_plain_route_blocking_it() -> None:
    # the worker's loop watch (watchers._watch_loop) names the request whose
    # handler blocks the loop: a plain route's handler has no frame of the adapter's
    blocked = Tremolo()
    inside = threading.Event()
    release = threading.Event()

    @blocked.route("/block")
    async def block() -> bytes:
        inside.set()
        release.wait(5)  # blocks the loop: a bug
        return b"done"

    with serve_in_thread(blocked) as (_, port), \
            socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /block?x=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        assert inside.wait(5)
        try:
            frames = sys._current_frames()
            loop_thread = next(ident for ident, top in frames.items() if any(
                f.f_code is block.__code__ for f, _ in traceback.walk_stack(top)))
            what, stack = blocking_request(frames[loop_thread])
        finally:
            release.set()
        assert s.recv(4096).endswith(b"done")
    assert what == "the handler of GET /block?x=1"
    assert stack[0].name == "block" and "release.wait" in (stack[0].line or "")
