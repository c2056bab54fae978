"""The core's WSGI path (rust/src/py/wsgi_call.rs, wsgi_cycle.rs): a request without a
body, start_response, and the body given whole, answered without the adapter's
Python. The server runs with its defaults (no download_rate), so the core answers
what it can; every case here is one the core must take, or hand on, exactly as the
Python path would."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tremolo.testing import serve_in_thread
from tremolo.wsgi import WSGIAdapter

from ..helpers import exchange, split_responses

closed: list[str] = []
failed: list[str] = []


class Body:
    """An iterable with close(), as Flask's and Django's responses are."""

    def __init__(self, parts: list[Any], name: str, fail_after: int | None = None) -> None:
        self.parts, self.name, self.fail_after = parts, name, fail_after

    def __iter__(self) -> Iterator[Any]:
        for i, part in enumerate(self.parts):
            if i == self.fail_after:
                raise RuntimeError("the iterator failed")
            yield part
        if self.fail_after == len(self.parts):
            raise RuntimeError("the iterator failed at its end")

    def close(self) -> None:
        closed.append(self.name)


def app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path == "/whole":  # Flask's and Django's way: one piece, as long as the length
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return Body([b"hello"], "whole")
    if path == "/longer":  # a piece past the Content-Length
        start_response("200 OK", [("Content-Length", "5")])
        return Body([b"hello", b"world"], "longer")
    if path == "/fails-after-whole":
        start_response("200 OK", [("Content-Length", "5")])
        return Body([b"hello"], "fails", fail_after=1)
    if path == "/empty":
        start_response("204 No Content", [])
        return Body([], "empty")
    if path == "/tuple":
        start_response("200 OK", [])
        return (b"a tuple",)
    if path == "/bytearray":
        start_response("200 OK", [])
        return [bytearray(b"a bytearray")]
    if path == "/twice":
        start_response("200 OK", [])
        try:
            start_response("200 OK", [])
        except RuntimeError as exc:
            failed.append(str(exc))
            raise
        return [b"unreachable"]
    if path == "/bad-status":
        start_response("OK", [])
        return [b"unreachable"]
    if path == "/bad-field":
        start_response("200 OK", [("X-Bad", "a\r\nInjected: 1")])
        return [b"unreachable"]
    if path == "/mismatch":
        start_response("200 OK", [("Content-Length", "9")])
        return [b"short"]
    if path == "/head":
        start_response("200 OK", [("Content-Length", "42")])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"x" * 42]
    if path == "/thread":
        start_response("200 OK", [])
        return [threading.current_thread().name.encode()]
    start_response("404 Not Found", [])
    return [b"not found"]


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve_in_thread(lambda s: WSGIAdapter(app, s), shutdown_timeout=2) as (_, p):
        yield p


def get(port: int, path: str, method: str = "GET") -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=10)


def wait_for(what: str, where: list[str]) -> bool:
    deadline = time.monotonic() + 2  # close() runs in the application's thread
    while what not in where and time.monotonic() < deadline:
        time.sleep(0.01)
    return what in where


def test_a_body_given_whole_goes_out_with_its_length(port: int) -> None:
    closed.clear()
    r = get(port, "/whole")
    assert r.status_code == 200 and r.content == b"hello"
    assert r.headers["content-length"] == "5" and "transfer-encoding" not in r.headers
    assert wait_for("whole", closed)  # its close() was called


def test_a_piece_past_the_content_length_cuts_the_response(port: int) -> None:
    closed.clear()
    out = exchange(port, b"GET /longer HTTP/1.1\r\nHost: t\r\n\r\n")  # until it closes
    head, _, body = out.partition(b"\r\n\r\n")
    # the head said 5 bytes, and no more ever follow it: the connection is cut (the
    # client sees the body short of its length, so it knows)
    assert b"content-length: 5" in head.lower() and b"hello".startswith(body)
    assert wait_for("longer", closed)


def test_an_iterator_failing_after_a_whole_first_piece_answers_500(port: int) -> None:
    closed.clear()
    r = get(port, "/fails-after-whole")
    assert r.status_code == 500  # nothing had gone out: the first piece was held
    assert wait_for("fails", closed)
    assert get(port, "/whole").status_code == 200  # the server goes on


def test_results_the_core_hands_on(port: int) -> None:
    r = get(port, "/empty")
    assert r.status_code == 204 and r.content == b""
    assert get(port, "/tuple").content == b"a tuple"
    assert get(port, "/bytearray").content == b"a bytearray"
    r = get(port, "/head", "HEAD")
    assert r.status_code == 200 and r.headers["content-length"] == "42" and r.content == b""
    assert get(port, "/head").content == b"x" * 42


def test_start_response_misuse_answers_500(port: int) -> None:
    failed.clear()
    assert get(port, "/twice").status_code == 500
    assert failed == ["start_response called twice without exc_info"]
    assert get(port, "/bad-status").status_code == 500
    r = get(port, "/bad-field")
    assert r.status_code == 500 and "injected" not in r.headers
    assert get(port, "/mismatch").status_code == 500


def test_keep_alive_and_pipelining_through_the_core(port: int) -> None:
    requests = b"".join(b"GET /whole HTTP/1.1\r\nHost: t\r\n\r\n" for _ in range(20))
    out = exchange(port, requests + b"GET /thread HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    answers = split_responses(out)
    assert [body for _, _, body in answers] == [b"hello"] * 20 + [answers[-1][2]]
    assert answers[-1][2].startswith(b"tremolo-wsgi-")  # the application ran in the pool
