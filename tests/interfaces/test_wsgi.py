"""WSGI (PEP 3333) behind the real server: environ, input, framing, frameworks."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tremolo.testing import serve_in_thread
from tremolo.wsgi import WSGIAdapter

from ..helpers import exchange, split_responses

closed: list[str] = []
FILE: dict[str, Path] = {}


class Body:
    def __init__(self, parts: list[bytes], name: str) -> None:
        self.parts, self.name = parts, name

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.parts)

    def close(self) -> None:
        closed.append(self.name)


def app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path == "/environ":
        keys = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
                "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "CONTENT_TYPE",
                "CONTENT_LENGTH", "HTTP_X_CUSTOM", "HTTP_COOKIE", "wsgi.url_scheme",
                "wsgi.multithread", "wsgi.run_once"]
        body = json.dumps({k: environ.get(k) for k in keys}
                          | {"version": list(environ["wsgi.version"]),
                             "thread": threading.current_thread().name}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/input":
        stream = environ["wsgi.input"]
        first = stream.readline()
        sized = stream.read(3)
        lines = stream.readlines()
        start_response("200 OK", [])
        return [json.dumps([first.decode(), sized.decode(), [x.decode() for x in lines]])
                .encode()]
    if path == "/hop-by-hop":
        start_response("200 OK", [("Transfer-Encoding", "chunked"), ("Keep-Alive", "timeout=9"),
                                  ("Connection", "close"), ("X-Kept", "1")])
        return [b"bye"]
    if path == "/iter-input":
        start_response("200 OK", [])
        return [b"|".join(environ["wsgi.input"])]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body([b"one ", b"two ", b"three"], "stream")
    if path == "/length":
        start_response("200 OK", [("Content-Length", "6")])
        return Body([b"abc", b"def"], "length")
    if path == "/write":
        write = start_response("201 Created", [("X-Way", "write")])
        write(b"written ")
        return [b"and returned"]
    if path == "/exc-info":
        try:
            raise ValueError("oops")
        except ValueError:
            start_response("200 OK", [])
            start_response("500 Internal Server Error", [("X-Error", "1")], sys.exc_info())
        return [b"recovered"]
    if path == "/crash":
        raise RuntimeError("boom")
    if path == "/file":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(FILE["path"], "rb"))
    if path == "/slow-client":
        start_response("200 OK", [])

        def gen() -> Iterator[bytes]:
            for _ in range(1024):  # 64 MiB
                yield b"s" * 65536
                closed.append("chunk")
        return gen()
    start_response("404 Not Found", [])
    return [b"not found"]


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    FILE["path"] = tmp_path_factory.mktemp("wsgi") / "f.bin"
    FILE["path"].write_bytes(b"w" * 200_000)
    with serve_in_thread(lambda s: WSGIAdapter(app, s, root_path="/app"),
                         shutdown_timeout=2, download_rate=1 << 40) as (_, p):
        yield p


def get(port: int, path: str, method: str = "GET", **kw: Any) -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=10, **kw)


def test_environ(port: int) -> None:
    d = get(port, "/app/environ?x=%20y", headers={"X-Custom": "v", "Cookie": "a=1"}).json()
    assert d["REQUEST_METHOD"] == "GET" and d["SCRIPT_NAME"] == "/app"
    assert d["PATH_INFO"] == "/environ" and d["QUERY_STRING"] == "x=%20y"
    assert d["SERVER_NAME"] == "127.0.0.1" and d["SERVER_PORT"] == str(port)
    assert d["SERVER_PROTOCOL"] == "HTTP/1.1" and d["REMOTE_ADDR"] == "127.0.0.1"
    assert d["HTTP_X_CUSTOM"] == "v" and d["HTTP_COOKIE"] == "a=1"
    assert d["wsgi.url_scheme"] == "http" and d["wsgi.multithread"] is True
    assert d["version"] == [1, 0] and d["thread"].startswith("tremolo-wsgi")
    d = get(port, "/app/environ", "POST", content=b"xy",
            headers={"Content-Type": "text/plain"}).json()
    assert d["CONTENT_TYPE"] == "text/plain" and d["CONTENT_LENGTH"] == "2"


def test_path_info_is_latin1_of_the_decoded_bytes(port: int) -> None:
    out = exchange(port, b"GET /caf%C3%A9 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 404 ")  # PATH_INFO was "/caf\xc3\xa9", not /environ


def test_hop_by_hop_fields_are_the_servers(port: int) -> None:
    out = exchange(port, b"GET /app/hop-by-hop HTTP/1.1\r\nHost: t\r\n\r\n"
                         b"GET /app/environ HTTP/1.1\r\nHost: t\r\n\r\n")
    [(status, fields, body)] = split_responses(out)  # closed after the first answer
    assert status.startswith(b"HTTP/1.1 200 ") and body == b"bye"
    assert fields[b"x-kept"] == b"1" and fields[b"connection"] == b"close"
    assert b"transfer-encoding" not in fields and b"keep-alive" not in fields


def test_input(port: int) -> None:
    r = get(port, "/app/input", "POST", content=b"line one\nabcrest 1\nrest 2\n")
    assert r.json() == ["line one\n", "abc", ["rest 1\n", "rest 2\n"]]
    raw = (b"POST /app/iter-input HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n4\r\na\nb\n\r\n2\r\nc\n\r\n0\r\n\r\n")
    [(_, _, body)] = split_responses(exchange(port, raw))
    assert body == b"a\n|b\n|c\n"


def test_framing_and_close(port: int) -> None:
    closed.clear()
    r = get(port, "/app/stream")
    assert r.content == b"one two three" and r.headers["transfer-encoding"] == "chunked"
    r = get(port, "/app/length")
    assert r.content == b"abcdef" and r.headers["content-length"] == "6"
    deadline = time.monotonic() + 2  # close() runs in the app's thread, after the bytes
    while len(closed) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert closed == ["stream", "length"]  # close() always called
    r = get(port, "/app/write")
    assert r.status_code == 201 and r.content == b"written and returned"
    r = get(port, "/app/environ")
    assert "content-length" in r.headers  # a one-chunk body gets a length


def test_errors(port: int) -> None:
    r = get(port, "/app/exc-info")
    assert r.status_code == 500 and r.headers["x-error"] == "1" and r.content == b"recovered"
    assert get(port, "/app/crash").status_code == 500
    assert get(port, "/app/environ").status_code == 200  # keeps serving


def test_file_wrapper(port: int) -> None:
    r = get(port, "/app/file")
    assert r.content == FILE["path"].read_bytes() and r.headers["content-length"] == "200000"


def test_slow_client_backpressures_the_iterator(port: int) -> None:
    import socket
    closed.clear()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        s.sendall(b"GET /app/slow-client HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(1.0)
        produced = closed.count("chunk")
        # what the kernel's socket buffers absorb (a few MiB), not the 64 MiB it has
        assert produced < 150, "the iterator ran ahead of a client that does not read"


# -- real frameworks -------------------------------------------------------

def test_flask() -> None:
    from flask import Flask, request

    flask_app = Flask("t")

    @flask_app.route("/hello/<name>")
    def hello(name: str) -> Any:
        return {"hello": name, "q": request.args.get("q")}

    @flask_app.post("/upload")
    def upload() -> Any:
        f = request.files["f"]
        return {"name": f.filename, "size": len(f.read()), "field": request.form["x"]}

    with serve_in_thread(lambda s: WSGIAdapter(flask_app, s), shutdown_timeout=2) as (_, p):
        base = f"http://127.0.0.1:{p}"
        assert httpx.get(f"{base}/hello/ann?q=1", timeout=5).json() == {"hello": "ann", "q": "1"}
        r = httpx.post(f"{base}/upload", data={"x": "y"}, files={"f": ("a.txt", b"z" * 5000)},
                       timeout=10)
        assert r.json() == {"name": "a.txt", "size": 5000, "field": "y"}
        assert httpx.get(f"{base}/missing", timeout=5).status_code == 404


def test_flask_streams_as_it_produces_and_reads_chunked_bodies() -> None:
    from flask import Flask, Response, request, stream_with_context

    flask_app = Flask("t")

    @flask_app.route("/stream")
    def stream() -> Response:
        def parts() -> Iterator[str]:
            for i in range(3):
                yield f"part {i}\n"
                time.sleep(0.4)
        return Response(stream_with_context(parts()), mimetype="text/plain")

    @flask_app.post("/upload")
    def upload() -> str:
        return str(len(request.get_data()))

    def chunks() -> Iterator[bytes]:
        yield b"abc"
        yield b"defg"

    with serve_in_thread(lambda s: WSGIAdapter(flask_app, s), shutdown_timeout=2) as (_, p):
        t0 = time.monotonic()
        arrivals = []
        with httpx.stream("GET", f"http://127.0.0.1:{p}/stream", timeout=5) as r:
            for line in r.iter_lines():
                arrivals.append((line, time.monotonic() - t0))
        assert [a for a, _ in arrivals] == ["part 0", "part 1", "part 2"]
        assert arrivals[0][1] < 0.3, "the first part waited for the next one"
        r = httpx.post(f"http://127.0.0.1:{p}/upload", content=chunks(), timeout=5)
        assert r.text == "7"


def test_a_body_too_slow_for_flask_answers_408() -> None:
    """A body read that times out is the client's fault: 408, whatever the framework
    made of the exception (Flask would answer 500)."""
    import socket

    from flask import Flask, request

    flask_app = Flask("t")

    @flask_app.post("/upload")
    def upload() -> str:
        return str(len(request.get_data()))

    with serve_in_thread(lambda s: WSGIAdapter(flask_app, s), request_timeout=0.5,
                         shutdown_timeout=2) as (_, p), \
            socket.create_connection(("127.0.0.1", p), timeout=5) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer


def test_bottle() -> None:
    import bottle

    bottle_app = bottle.Bottle()

    @bottle_app.route("/hi/<name>")
    def hi(name: str) -> str:
        return f"hi {name}"

    with serve_in_thread(lambda s: WSGIAdapter(bottle_app, s), shutdown_timeout=2) as (_, p):
        assert httpx.get(f"http://127.0.0.1:{p}/hi/bob", timeout=5).text == "hi bob"


def _check_file_answers(url: str, data: bytes) -> None:
    """GET, HEAD, Range and a conditional GET of one file, as any client would."""
    with httpx.Client(timeout=5) as client:
        for _ in range(2):  # and the connection stays usable after each
            r = client.get(url)
            assert r.status_code == 200 and r.content == data
            assert r.headers["content-length"] == str(len(data))
            assert len(r.headers.get_list("date")) == 1
            r = client.head(url)
            assert r.status_code == 200 and r.content == b""
            assert r.headers["content-length"] == str(len(data))
            r = client.get(url, headers={"Range": "bytes=10-99"})
            assert r.status_code == 206 and r.content == data[10:100]
            r = client.get(url, headers={"Range": "bytes=-50"})
            assert r.status_code == 206 and r.content == data[-50:]
            r = client.get(url, headers={"If-Modified-Since": r.headers["last-modified"]})
            assert r.status_code == 304 and r.content == b""


def test_flask_send_file_and_bottle_static_file(tmp_path: Path) -> None:
    import bottle
    from flask import Flask, send_file, send_from_directory

    data = os.urandom(300_000)
    (tmp_path / "big.bin").write_bytes(data)
    flask_app = Flask("t")

    @flask_app.route("/f/<name>")
    def from_directory(name: str) -> Any:
        return send_from_directory(tmp_path, name)

    @flask_app.route("/send-file")
    def whole() -> Any:
        return send_file(tmp_path / "big.bin")

    bottle_app = bottle.Bottle()

    @bottle_app.route("/s/<name>")
    def static(name: str) -> Any:
        return bottle.static_file(name, root=str(tmp_path))

    with serve_in_thread(lambda s: WSGIAdapter(flask_app, s), shutdown_timeout=2) as (_, p):
        _check_file_answers(f"http://127.0.0.1:{p}/f/big.bin", data)
        _check_file_answers(f"http://127.0.0.1:{p}/send-file", data)
    with serve_in_thread(lambda s: WSGIAdapter(bottle_app, s), shutdown_timeout=2) as (_, p):
        _check_file_answers(f"http://127.0.0.1:{p}/s/big.bin", data)


@pytest.mark.slow
def test_django_wsgi_and_asgi() -> None:
    import django
    from django.conf import settings
    from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
    from django.urls import path

    def view(request: Any) -> Any:
        return JsonResponse({"path": request.path, "method": request.method,
                             "q": request.GET.get("q")})

    def echo(request: Any) -> Any:
        return HttpResponse(request.body, content_type="application/octet-stream")

    def streamed(request: Any) -> Any:
        def parts() -> Iterator[bytes]:
            for i in range(3):
                yield b"part %d\n" % i
                time.sleep(0.5)
        return StreamingHttpResponse(parts(), content_type="text/plain")

    urls = types.ModuleType("tremolo_test_urls")
    urls.urlpatterns = [path("view/", view), path("echo/", echo),  # type: ignore[attr-defined]
                        path("stream/", streamed)]
    sys.modules["tremolo_test_urls"] = urls
    if not settings.configured:
        settings.configure(ROOT_URLCONF="tremolo_test_urls", ALLOWED_HOSTS=["*"], DEBUG=False,
                           SECRET_KEY="test", MIDDLEWARE=[])
        django.setup()
    from django.core.asgi import get_asgi_application
    from django.core.wsgi import get_wsgi_application

    from tremolo.asgi import ASGIAdapter

    for factory, wsgi in ((lambda s: WSGIAdapter(get_wsgi_application(), s), True),
                          (lambda s: ASGIAdapter(get_asgi_application(), s), False)):
        with serve_in_thread(factory, shutdown_timeout=2) as (_, p):
            base = f"http://127.0.0.1:{p}"
            r = httpx.get(f"{base}/view/?q=x", timeout=10)
            assert r.json() == {"path": "/view/", "method": "GET", "q": "x"}
            r = httpx.post(f"{base}/echo/", content=b"d" * 70_000, timeout=10)
            assert r.content == b"d" * 70_000
            if not wsgi:
                continue  # Django's ASGI handler consumes a sync iterator whole first
            t0 = time.monotonic()
            with httpx.stream("GET", f"{base}/stream/", timeout=10) as streamed_r:
                lines = streamed_r.iter_lines()
                first = next(lines)
                assert first == "part 0" and time.monotonic() - t0 < 0.25, \
                    "the first part waited for the rest"
                assert list(lines) == ["part 1", "part 2"]


def test_pep3333_under_wsgiref_validator() -> None:
    """wsgiref.validate checks both sides of every call: the environ and wsgi.input
    the server gives (types, required keys, input's methods), start_response, the
    iterable and its close(). An application breaking a rule it checks makes the
    request fail (500); every one here must pass."""
    from wsgiref.validate import validator

    def compliant(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        path = environ["PATH_INFO"]
        stream = environ["wsgi.input"]
        if path == "/lines":
            data = [stream.readline(), stream.read(3), *stream.readlines()]
            start_response("200 OK", [("Content-Type", "text/plain")])
            return iter([b"|".join(data)])
        if path == "/iter":
            data = list(stream)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return iter([b"|".join(data)])
        if path == "/big":
            size = 0
            while piece := stream.read(65536):
                size += len(piece)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return iter([str(size).encode()])
        if path == "/stream":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return iter([b"one ", b"two"])
        body = repr(sorted(k for k in environ if k.isupper())).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return iter([body])

    with serve_in_thread(lambda s: WSGIAdapter(validator(compliant), s),
                         shutdown_timeout=2) as (_, p):
        r = get(p, "/env?q=1", headers={"X-A": "b"})
        assert r.status_code == 200, r.text
        assert "'QUERY_STRING'" in r.text and "'HTTP_X_A'" in r.text
        assert get(p, "/env", "HEAD").status_code == 200
        r = get(p, "/lines", "POST", content=b"a\nbcdef\ng\n")
        assert r.status_code == 200 and r.content == b"a\n|bcd|ef\n|g\n"
        r = get(p, "/iter", "POST", content=iter([b"x\ny", b"\n"]))  # chunked
        assert r.status_code == 200 and r.content == b"x\n|y\n"
        body = b"z" * 300_000  # past wsgi_input_buffer: the rest streams from the loop
        r = get(p, "/big", "POST", content=body)
        assert r.status_code == 200 and r.content == b"300000"
        r = get(p, "/stream")
        assert r.status_code == 200 and r.content == b"one two"
