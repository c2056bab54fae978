"""Route options: `methods=` limits what a function route serves (405 with Allow for
the rest, as a class view answers), and an option nothing reads is logged when the
worker starts, one line per route, naming it (a misspelt `metods=` or `method=`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tremolo import Tremolo
from tremolo.testing import serve_in_thread

from ..helpers import exchange, split_responses

app = Tremolo()


@app.route("/post-only", methods=["POST"])
async def post_only(request: Any, **server: Any) -> bytes:
    return b"posted " + await request.body()


@app.route("/read", methods=("get", b"put"))
async def read(request: Any, **server: Any) -> bytes:
    return b"served " + request.method


@app.route(r"^/re/(?P<n>\d+)$", methods={"DELETE"})
async def regex(n: bytes = b"", **server: Any) -> bytes:
    return b"deleted " + n


@app.route("/plain-post", methods=["POST"])
def plain_post(**server: Any) -> bytes:
    return b"plain posted"


@app.route("/any")
async def any_method(request: Any, **server: Any) -> bytes:
    return request.method


class OnlyGet:
    async def get(self, **server: Any) -> bytes:
        return b"view"


app.add_route(OnlyGet, "/view")


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve_in_thread(app) as (_, p):
        yield p


def call(port: int, method: str, path: str, body: bytes = b"") -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{port}{path}", content=body, timeout=5)


@pytest.mark.parametrize(("method", "path", "answer"), [
    ("POST", "/post-only", b"posted x"), ("GET", "/read", b"served GET"),
    ("PUT", "/read", b"served PUT"), ("DELETE", "/re/7", b"deleted 7"),
    ("POST", "/plain-post", b"plain posted"), ("DELETE", "/any", b"DELETE")])
def test_a_route_serves_the_methods_it_allows(port: int, method: str, path: str,
                                              answer: bytes) -> None:
    r = call(port, method, path, b"x" if method == "POST" else b"")
    assert (r.status_code, r.content) == (200, answer)


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/post-only", "POST"), ("DELETE", "/post-only", "POST"),
    ("HEAD", "/post-only", "POST"), ("OPTIONS", "/post-only", "POST"),
    ("POST", "/read", "GET, HEAD, PUT"), ("GET", "/re/7", "DELETE"),
    ("GET", "/plain-post", "POST"),
    # a class view answers the same way
    ("POST", "/view", "GET, HEAD")])
def test_other_methods_get_405_with_allow(port: int, method: str, path: str,
                                          allow: str) -> None:
    r = call(port, method, path)
    assert r.status_code == 405 and r.reason_phrase == "Method Not Allowed"
    assert r.headers["allow"] == allow
    assert r.headers["connection"] == "close"


def test_head_is_served_wherever_get_is(port: int) -> None:
    r = call(port, "HEAD", "/read")
    assert (r.status_code, r.content) == (200, b"")
    assert r.headers["content-length"] == str(len(b"served HEAD"))


def test_the_405_is_answered_as_every_error(port: int) -> None:
    out = exchange(port, b"GET /post-only HTTP/1.1\r\nHost: t\r\n\r\n")
    [(line, fields, body)] = split_responses(out)
    assert line == b"HTTP/1.1 405 Method Not Allowed"
    # spelled as the other fields, and the exception's escaped message as HTML, as
    # every error without a handler of its own (and the original's 405)
    assert b"\r\nAllow: POST\r\n" in out
    assert (fields[b"content-type"], body) == (b"text/html; charset=utf-8",
                                               b"Method Not Allowed")


@pytest.mark.parametrize(("value", "message"), [
    ("POST", "takes a list of HTTP methods"), (b"POST", "takes a list of HTTP methods"),
    ([], "is empty"), (["GET", "BAD METHOD"], "is not an HTTP method name"),
    ([1], "is not an HTTP method name"), (None, "takes a list of HTTP methods"),
    # from a hostile review: a codec's error, and '*' taken as a method named *
    (["\u20ac"], "is not an HTTP method name"), (["*"], "leave methods= out")])
def test_methods_that_are_not_a_list_of_names_are_refused(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Tremolo().route("/x", methods=value)(any_method)


def test_methods_is_refused_for_a_class_view() -> None:
    with pytest.raises(ValueError, match="methods= is for a function route"):
        Tremolo().add_route(OnlyGet, "/v", methods=["GET"])


def warnings_at_start(app: Tremolo, caplog: pytest.LogCaptureFixture) -> list[str]:
    with caplog.at_level(logging.WARNING), serve_in_thread(app) as (_, port):
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code in (200, 503)
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
            and "route " in r.getMessage()]


def test_an_option_nothing_reads_is_logged_at_start(caplog: pytest.LogCaptureFixture) -> None:
    checked = Tremolo()

    @checked.route("/typo", metods=["POST"])
    async def typo(**server: Any) -> bytes:
        return b""

    @checked.route("/near", method="POST", status=201)
    async def near(request: Any, **server: Any) -> bytes:
        return request.method  # ('method' is named here: a near miss is logged still)

    @checked.route("/unread", junk=1, other=2, rate=1 << 20)
    async def unread(**server: Any) -> bytes:
        return b""

    @checked.route("/own", lang="fr", theme="dark", flavour="plain")
    async def own(request: Any, flavour: str = "", **server: Any) -> bytes:
        return request.ctx.options["lang"]  # theme: read by the middleware

    @checked.on_request
    async def themed(request: Any, **server: Any) -> None:
        request.ctx.theme = request.ctx.options.get("theme")

    class View:
        def __init__(self, size: int = 0) -> None:
            self.size = size

        async def get(self, **server: Any) -> bytes:
            return b""

    checked.add_route(View, "/view", size=3, colour="red")
    lines = warnings_at_start(checked, caplog)
    assert len(lines) == 4, lines  # one line per route
    typo_line, near_line, unread_line, view_line = sorted(
        lines, key=lambda m: ["/typo", "/near", "/unread", "/view"].index(m.split()[1][:-1]))
    assert "route /typo: option 'metods' (did you mean 'methods'?)" in typo_line
    assert "route /near: option 'method' (did you mean 'methods'?)" in near_line
    assert "route /unread: options 'junk', 'other':" in unread_line
    assert "read by nothing" in unread_line and "request.ctx.options" in unread_line
    assert "route /view: option 'colour': View() does not take it" in view_line


def test_routes_whose_options_are_read_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    fine = Tremolo()

    @fine.route("/", methods=["GET"], status=200, content_type="text/plain", chunked=True,
                rate=1 << 20)
    async def index(**server: Any) -> bytes:
        return b""

    @fine.route("/events", sse=True, websocket=True)
    async def events(**server: Any) -> bytes:
        return b""

    assert warnings_at_start(fine, caplog) == []
