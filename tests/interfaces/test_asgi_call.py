"""The ASGI http cycle run by the core (rust/src/py/asgi.rs, call.rs): the scope it
makes from what a connection's requests share, and each way the application can
end, driven end to end over 127.0.0.1."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from typing import Any

import pytest

from tremolo.asgi import ASGIAdapter
from tremolo.testing import serve_in_thread

from ..helpers import exchange, split_responses


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/introspect":
        call: Any = asyncio.current_task().get_coro()  # type: ignore[union-attr]
        body = " ".join([type(call).__name__, inspect.getcoroutinestate(call),
                         call.cr_frame.f_code.co_name]).encode()
    else:
        body = json.dumps({
            "client": scope["client"], "scheme": scope["scheme"],
            "host": dict(scope["headers"]).get(b"host", b"").decode(),
            "state": scope["state"], "extensions": sorted(scope["extensions"]),
            "path": scope["path"], "query": scope["query_string"].decode()}).encode()
        # each request has its own copies: what this one adds is not the next one's
        scope["state"]["seen"] = scope["extensions"]["mine"] = True
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def scopes(port: int, *requests: bytes) -> list[dict[str, Any]]:
    """The scopes `app` saw for `requests`, sent pipelined on one connection (so
    all but the first are made from what the connection's requests share)."""
    raw = b"".join(requests) + b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    out = [json.loads(body) for _, _, body in split_responses(exchange(port, raw))]
    assert len(out) == len(requests) + 1
    return out[:-1]


PLAIN = b"GET /a?x=1 HTTP/1.1\r\nHost: example.org\r\n\r\n"
PROXIED = (b"GET /b HTTP/1.1\r\nHost: internal\r\nX-Forwarded-For: 203.0.113.9\r\n"
           b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\n\r\n")


@pytest.mark.parametrize("trusted", [True, False])
def test_each_request_of_a_connection_has_its_own_scope(trusted: bool) -> None:
    options = {} if trusted else {"trusted_proxies": "10.9.9.9"}
    with serve_in_thread(lambda s: ASGIAdapter(app, s), **options) as (_, port):
        first, second, proxied, after = scopes(port, PLAIN, PLAIN, PROXIED, PLAIN)
    assert first == second
    assert first["client"][0] == "127.0.0.1" and first["scheme"] == "http"
    assert first["host"] == "example.org" and first["query"] == "x=1"
    assert first["state"] == {} and "mine" not in first["extensions"]
    if trusted:  # the proxy's fields are believed for its request only
        assert proxied["client"] == ["203.0.113.9", 0] and proxied["scheme"] == "https"
        assert proxied["host"] == "shop.example"
    else:
        assert proxied["client"] == first["client"] and proxied["scheme"] == "http"
        assert proxied["host"] == "internal"
    assert after == first


async def respond(send: Any) -> None:
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"from a task"})


class AwaitableObject:
    def __init__(self, send: Any) -> None:
        self.send = send

    def __await__(self) -> Any:
        yield from self.send({"type": "http.response.start", "status": 202,
                              "headers": []}).__await__()
        yield from self.send({"type": "http.response.body", "body": b"object"}).__await__()


def odd_app(scope: dict[str, Any], receive: Any, send: Any) -> Any:
    if scope["type"] != "http":
        return asyncio.sleep(0)
    path = scope["path"]
    if path == "/object":
        return AwaitableObject(send)
    if path == "/raises":
        raise LookupError("raised by the call itself")
    if path == "/none":
        return None  # not awaitable: the application is broken
    return asyncio.ensure_future(respond(send))  # a Task: a Future, not a coroutine


def test_applications_that_are_not_coroutine_functions(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    with serve_in_thread(lambda s: ASGIAdapter(odd_app, s)) as (_, port):
        out = [split_responses(exchange(port, b"GET /%s HTTP/1.1\r\nHost: t\r\n"
                                               b"Connection: close\r\n\r\n" % path))[0]
               for path in (b"object", b"raises", b"none", b"task")]
    assert [(line.split()[1], body) for line, _, body in out] == [
        (b"202", b"object"), (b"500", b"Internal Server Error"),
        (b"500", b"Internal Server Error"), (b"201", b"from a task")]
    failures = [r for r in caplog.records if r.getMessage() == "ASGI application failed"]
    assert [type(r.exc_info[1]) for r in failures if r.exc_info] == [LookupError, TypeError]


def test_the_cycle_seen_from_inside_the_application() -> None:
    # what code that looks at the task's coroutine sees (anyio asks for its state):
    # the application's coroutine
    with serve_in_thread(lambda s: ASGIAdapter(app, s)) as (_, port):
        out = exchange(port, b"GET /introspect HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert out.endswith(b"\r\n\r\nRequestCall CORO_RUNNING app")
