"""Error handlers and middlewares as the original Tremolo runs them: which handler
receives which error and what it answers; what a middleware's return value does;
which middlewares serve a mounted application's paths."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tremolo import Tremolo
from tremolo.exceptions import (
    BadRequest,
    Forbidden,
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    NotFound,
    RequestTimeout,
    WebSocketServerClosed,
)
from tremolo.testing import serve_in_thread

from ..helpers import exchange, split_responses

seen: list[Any] = []


def plain_app() -> Tremolo:
    """No error handler of its own: the defaults answer."""
    app = Tremolo()

    @app.route("/forbidden")
    async def forbidden(**server: Any) -> bytes:
        raise Forbidden("go away")

    @app.route("/teapot")
    async def teapot(**server: Any) -> bytes:
        raise HTTPException("short and stout", code=418, message="I'm a teapot",
                            content_type="text/plain")

    @app.route("/bug")
    async def bug(**server: Any) -> bytes:
        raise ValueError("the database password is hunter2")

    class OnlyPost:
        async def post(self, **server: Any) -> bytes:
            return b"posted"

    app.add_route(OnlyPost, "/only-post")

    return app


def handled_app() -> Tremolo:
    """An @app.error(500) handler, which also receives the other errors."""
    app = Tremolo()

    @app.route("/forbidden")
    async def forbidden(**server: Any) -> bytes:
        raise Forbidden("go away", x_why="test")

    @app.route("/bug")
    async def bug(**server: Any) -> bytes:
        raise ZeroDivisionError("division by zero")

    @app.route("/quiet")
    async def quiet(**server: Any) -> bytes:
        raise HTTPException("own words", code=409, message="Conflict",
                            content_type="text/plain")

    @app.route("/broken-handler")
    async def broken(**server: Any) -> bytes:
        raise Forbidden

    @app.route("/restatus")
    async def restatus(**server: Any) -> bytes:
        raise Forbidden

    @app.route("/recode")
    async def recode(**server: Any) -> bytes:
        raise Forbidden('{"error": "forbidden"}')

    @app.error(500)
    async def error_500(request: Any, response: Any, exc: Any, **server: Any) -> Any:
        seen.append(exc)
        if request.path == b"/quiet":
            return None
        if request.path == b"/broken-handler":
            raise RuntimeError("the error handler's own bug")
        if request.path == b"/restatus":
            response.set_status(451, "Unavailable For Legal Reasons")
            return "legal"
        if request.path == b"/recode":
            # None after changing the exception: it is answered as it is now
            exc.code = 409
            exc.content_type = "application/json"
            response.set_header("X-Dropped", "yes")
            return None
        cause = type(exc.__cause__).__name__ if exc.__cause__ else "-"
        return f"{exc.code} {type(exc).__name__} cause={cause} [{exc}]"

    return app


def middleware_app() -> Tremolo:
    app = Tremolo()
    sub = Tremolo()
    bare = Tremolo()  # mounted without middlewares: the parent's serve it

    @app.route("/hello")
    async def hello(**server: Any) -> bytes:
        return b"hello"

    @app.route("/stream")
    async def stream(**server: Any) -> Any:
        seen.append("stream started")
        yield b"one"
        seen.append("stream continued")
        yield b"two"

    @app.route("/file")
    async def file(response: Any, **server: Any) -> None:
        await response.sendfile(os.path.abspath(__file__))

    @app.on_request
    async def parent_request(request: Any, **server: Any) -> None:
        seen.append("parent request " + request.path.decode())
        if request.path == b"/refused":
            raise Forbidden("refused by a middleware")

    @app.on_response
    async def parent_response(request: Any, response: Any, **server: Any) -> Any:
        seen.append("parent response " + request.path.decode())
        if request.path in (b"/hello", b"/stream", b"/file"):
            response.set_header("X-Replaced", "1")
            return b"replaced by a middleware"
        return None

    @sub.route("/inner")
    async def inner(**server: Any) -> bytes:
        return b"inner"

    @sub.on_request
    async def sub_request(request: Any, **server: Any) -> None:
        seen.append("sub request " + request.path.decode())

    @bare.route("/inner")
    async def bare_inner(**server: Any) -> bytes:
        return b"bare inner"

    app.mount("/sub", sub)
    app.mount("/bare", bare)
    return app


def options_app() -> Tremolo:
    """Middlewares and the options, as the original's own test server uses them."""
    app = Tremolo()

    @app.route("/made")
    async def made(status: Any = (201, b"Made"), **server: Any) -> bytes:
        return b"handler"

    @app.route("/made-yield")
    async def made_yield(status: Any = (202, b"Taken"), **server: Any) -> Any:
        yield b"handler"

    @app.on_request
    async def answer(request: Any, response: Any, **server: Any) -> Any:
        if request.method == b"FOO":
            response.set_status(405, "Method Not Allowed")
            response.set_content_type("text/plain")
            return (b"no %s here" % request.method,)
        response.set_header("X-Foo", "bar")
        return None

    @app.on_response
    async def replace(request: Any, response: Any, content_type: Any = b"text/x-mw",
                      **server: Any) -> Any:
        seen.append(("response", request.method, response.line[1]))
        if request.method == b"FOO":
            response.set_header("X-Late", "not sent")
            return b"not sent either"
        if response.line[1] == b"503":  # `/`, which the application does not route
            response.set_status(503, b"Under Maintenance")
            return "Under Maintenance"
        response.set_status(500, "Changed")
        return "middleware body"

    return app


def cors_app() -> Tremolo:
    """Fields every response needs (CORS, a request id), set by middlewares, and
    error answers."""
    app = Tremolo()

    @app.on_request
    async def cors(request: Any, response: Any, **server: Any) -> None:
        response.set_header("Access-Control-Allow-Origin", "*")
        response.set_header("X-Request-Id", "r-1")
        if request.path == b"/refused":
            raise Forbidden("refused by a middleware")

    @app.on_response
    async def stamp(request: Any, response: Any, **server: Any) -> Any:
        seen.append(("stamp", request.path, response.get_status()[0]))
        if request.path.startswith(b"/stamp-fails"):
            raise RuntimeError("a response middleware's bug")
        if request.path == b"/stamp-answers":
            return b"the middleware's own body"
        response.set_header("X-Stamp", "ran")
        return None

    @app.route("/ok")
    async def ok(**server: Any) -> bytes:
        return b"ok"

    @app.route("/forbidden")
    async def forbidden(response: Any, **server: Any) -> bytes:
        response.set_header("X-Handler", "for the answer it was making")
        raise Forbidden("go away")

    @app.route("/bad")
    async def bad(**server: Any) -> bytes:
        raise BadRequest("bad")

    @app.route("/bug")
    async def bug(**server: Any) -> bytes:
        raise ValueError("a bug")

    @app.route("/stamp-fails")
    async def stamp_fails(**server: Any) -> bytes:
        raise Forbidden("go away")

    @app.route("/stamp-fails-ok")
    async def stamp_fails_ok(**server: Any) -> bytes:
        return b"not sent"

    @app.route("/stamp-answers", status=201)
    async def stamp_answers(**server: Any) -> bytes:
        raise Forbidden("go away")

    class OnlyPost:
        async def post(self, **server: Any) -> bytes:
            return b"posted"

    app.add_route(OnlyPost, "/only-post")
    return app


@pytest.fixture(scope="module")
def ports() -> Iterator[dict[str, int]]:
    with serve_in_thread(plain_app()) as (_, a), serve_in_thread(handled_app()) as (_, b), \
            serve_in_thread(middleware_app()) as (_, c), \
            serve_in_thread(options_app()) as (_, d), serve_in_thread(cors_app()) as (_, e):
        yield {"plain": a, "handled": b, "middleware": c, "options": d, "cors": e}


def get(port: int, path: str, method: str = "GET") -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=5)


def test_without_a_handler_an_error_answers_its_own_message(ports: dict[str, int]) -> None:
    r = get(ports["plain"], "/forbidden")
    assert (r.status_code, r.content) == (403, b"go away")
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["connection"] == "close"
    r = get(ports["plain"], "/teapot")
    assert (r.status_code, r.reason_phrase, r.content) == (418, "I'm a teapot",
                                                           b"short and stout")
    assert r.headers["content-type"] == "text/plain"


def test_a_bug_answers_500_without_showing_its_message(ports: dict[str, int]) -> None:
    r = get(ports["plain"], "/bug")
    assert r.status_code == 500 and r.content == b"Internal Server Error"
    assert b"hunter2" not in r.content


def test_default_404_and_405(ports: dict[str, int]) -> None:
    out = exchange(ports["plain"], b"GET /nowhere/<b> HTTP/1.1\r\nHost: t\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"Unable to find handler for /nowhere/&lt;b&gt;." in out
    r = get(ports["plain"], "/only-post")
    assert (r.status_code, r.content) == (405, b"Method Not Allowed")
    assert r.headers["allow"] == "POST"


def test_the_500_handler_receives_other_errors_as_http_exceptions(
        ports: dict[str, int]) -> None:
    seen.clear()
    r = get(ports["handled"], "/forbidden")
    assert r.status_code == 403 and r.headers["x-why"] == "test"
    assert r.content == b"403 Forbidden cause=- [go away]"
    r = get(ports["handled"], "/bug")
    assert r.status_code == 500
    assert r.content == b"500 InternalServerError cause=ZeroDivisionError [division by zero]"
    assert isinstance(seen[-1], InternalServerError)
    assert isinstance(seen[-1].__cause__, ZeroDivisionError)
    # 404 keeps its own default handler, as in the original
    r = get(ports["handled"], "/nowhere")
    assert r.status_code == 404 and b"Unable to find handler" in r.content


def test_a_handler_returning_none_answers_the_exception_itself(
        ports: dict[str, int]) -> None:
    r = get(ports["handled"], "/quiet")
    assert (r.status_code, r.reason_phrase, r.content) == (409, "Conflict", b"own words")
    assert r.headers["content-type"] == "text/plain"


def test_the_handler_may_change_the_status(ports: dict[str, int]) -> None:
    r = get(ports["handled"], "/restatus")
    assert (r.status_code, r.content) == (451, b"legal")


def test_an_exception_changed_by_its_handler_is_answered_as_it_is_now(
        ports: dict[str, int]) -> None:
    r = get(ports["handled"], "/recode")
    assert (r.status_code, r.reason_phrase) == (409, "Forbidden")
    assert r.headers["content-type"] == "application/json"
    assert r.content == b'{"error": "forbidden"}' and "x-dropped" not in r.headers


def test_a_failing_error_handler_answers_500(ports: dict[str, int]) -> None:
    r = get(ports["handled"], "/broken-handler")
    assert r.status_code == 500 and r.content == b"Internal Server Error"


def test_a_request_middleware_raising_answers_with_the_exception(
        ports: dict[str, int]) -> None:
    r = get(ports["middleware"], "/refused")
    assert (r.status_code, r.content) == (403, b"refused by a middleware")


@pytest.mark.parametrize("path", ["/hello", "/stream", "/file"])
def test_a_response_middleware_body_replaces_the_handlers(
        ports: dict[str, int], path: str) -> None:
    seen.clear()
    with httpx.Client(timeout=5) as client:
        for _ in range(2):  # the connection stays usable
            r = client.get(f"http://127.0.0.1:{ports['middleware']}{path}")
            assert (r.status_code, r.content) == (200, b"replaced by a middleware")
            assert r.headers["x-replaced"] == "1"
            assert r.headers["content-length"] == str(len(r.content))
    assert "stream continued" not in seen


@pytest.mark.parametrize(("path", "status"), [("/made", (201, "Made")),
                                              ("/made-yield", (202, "Taken")),
                                              ("/", (503, "Service Unavailable"))])
def test_a_response_middlewares_body_gets_the_options_again(
        ports: dict[str, int], path: str, status: tuple[int, str]) -> None:
    # the route's status option is applied again after the middleware changed it,
    # and the middleware's own content_type default applies, as in the original
    r = get(ports["options"], path)
    assert (r.status_code, r.reason_phrase) == status
    assert r.headers["content-type"] == "text/x-mw"
    assert r.content == (b"Under Maintenance" if path == "/" else b"middleware body")


def test_a_request_middlewares_answer_is_sent_as_it_is(ports: dict[str, int]) -> None:
    seen.clear()
    out = exchange(ports["options"], b"FOO /made HTTP/1.1\r\nHost: t\r\n\r\n"
                                     b"GET /made HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    [(line, fields, body), (line2, _, body2)] = split_responses(out)
    assert line == b"HTTP/1.1 405 Method Not Allowed" and body == b"no FOO here"
    assert fields[b"content-type"] == b"text/plain" and b"x-late" not in fields
    assert (line2, body2) == (b"HTTP/1.1 201 Made", b"middleware body")
    # the response middlewares ran after the answer was sent, as in the original
    assert seen == [("response", b"FOO", b"405"), ("response", b"GET", b"201")]


@pytest.mark.parametrize(("path", "method", "status"), [
    ("/nowhere", "GET", 404), ("/forbidden", "GET", 403), ("/bad", "GET", 400),
    ("/bug", "GET", 500), ("/only-post", "GET", 405), ("/refused", "GET", 403),
    ("/ok", "GET", 200)])
def test_an_error_answer_keeps_the_request_middlewares_fields(
        ports: dict[str, int], path: str, method: str, status: int) -> None:
    seen.clear()
    r = get(ports["cors"], path, method)
    assert r.status_code == status
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["x-request-id"] == "r-1"
    assert "x-handler" not in r.headers  # the handler's fields were for its own answer
    # and the response middlewares ran for it, once
    assert r.headers["x-stamp"] == "ran"
    assert seen == [("stamp", path.encode(), status)]


def test_a_response_middleware_failing_on_an_error_answer_does_not_loop(
        ports: dict[str, int]) -> None:
    seen.clear()
    r = get(ports["cors"], "/stamp-fails")
    # the error is answered as it was, without the failed middlewares
    assert (r.status_code, r.content) == (403, b"go away")
    assert r.headers["access-control-allow-origin"] == "*" and "x-stamp" not in r.headers
    assert seen == [("stamp", b"/stamp-fails", 403)]
    seen.clear()
    # failing on a handler's answer: that is a 500, answered without them
    r = get(ports["cors"], "/stamp-fails-ok")
    assert (r.status_code, r.content) == (500, b"Internal Server Error")
    assert seen == [("stamp", b"/stamp-fails-ok", 200)]


def test_a_response_middleware_body_replaces_an_error_answers_body(
        ports: dict[str, int]) -> None:
    r = get(ports["cors"], "/stamp-answers")
    # the route's status option is for its own answer, not the error's
    assert (r.status_code, r.content) == (403, b"the middleware's own body")
    assert r.headers["content-length"] == str(len(r.content))


def test_a_mounted_application_runs_only_its_own_middlewares(
        ports: dict[str, int]) -> None:
    seen.clear()
    assert get(ports["middleware"], "/sub/inner").content == b"inner"
    assert seen == ["sub request /sub/inner"]
    seen.clear()
    assert get(ports["middleware"], "/sub/missing").status_code == 404
    assert seen == ["sub request /sub/missing"]  # its prefix, routed or not
    seen.clear()
    get(ports["middleware"], "/subway")
    assert seen[0] == "parent request /subway"  # a prefix is whole path segments
    seen.clear()
    assert get(ports["middleware"], "/bare/inner").content == b"bare inner"
    assert seen == ["parent request /bare/inner", "parent response /bare/inner"]


# -- the exceptions themselves, as the original builds them --------------------


def test_a_cause_that_is_an_http_exception_is_reused_with_what_is_given() -> None:
    first = MethodNotAllowed("only GET", allow=b"GET")
    again = HTTPException("only POST", cause=first, allow=b"POST", code=499,
                          message="Odd", content_type="text/plain")
    assert again is first and again.__cause__ is None
    assert (again.args, again.options, again.code, again.message, again.content_type) == \
        (("only POST",), {"allow": b"POST"}, 499, "Odd", "text/plain")
    # nothing given: it keeps its own
    kept = HTTPException(cause=MethodNotAllowed("only GET", allow=b"GET"))
    assert (kept.args, kept.options, kept.headers) == (("only GET",), {"allow": b"GET"},
                                                       {"allow": b"GET"})
    timeout = RequestTimeout("slow")
    assert RequestTimeout("slower", cause=timeout) is timeout and timeout.args == ("slower",)


def test_websocket_exceptions_keep_their_cause() -> None:
    bug = ValueError("broken")
    closed = WebSocketServerClosed(cause=bug)
    assert type(closed) is WebSocketServerClosed and closed.__cause__ is bug
    assert closed.args == ("broken",) and closed.code == 1011
    denied = Forbidden("no")
    closed = WebSocketServerClosed("bye", cause=denied)
    assert closed.__cause__ is denied and closed.args == ("bye",)
    assert str(WebSocketServerClosed()) == "Internal Server Error"  # the original's


def test_options_can_be_replaced_and_only_exceptions_are_causes() -> None:
    error = NotFound("x")
    error.options = {"x_a": "1"}
    assert error.headers == {"x_a": "1"}
    cancelled = HTTPException(cause=asyncio.CancelledError("stop"))
    assert type(cancelled) is InternalServerError and cancelled.__cause__ is None
    assert cancelled.args == ()
