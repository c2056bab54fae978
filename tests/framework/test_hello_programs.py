"""The hello-world programs of the original Tremolo README, over real sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from ..helpers import exchange, free_port, split_responses

GET = b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"


def test_hello_with_httpx(hello_port: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{hello_port}", timeout=5) as client:
        for _ in range(20):  # one keep-alive connection
            r = client.get("/hello")
            assert r.status_code == 200
            assert r.text == "Hello world!"
            assert r.headers["content-type"] == "text/html; charset=utf-8"
            assert r.headers["content-length"] == "12"
            assert r.headers["server"] == "Tremolo"
            assert r.headers["date"].endswith(" GMT")
        assert client.get("/hello/?q=1").text == "Hello world!"
        assert client.get("/nothing-here").status_code == 404


def test_keep_alive_on_one_socket(hello_port: int) -> None:
    with socket.create_connection(("127.0.0.1", hello_port), timeout=5) as s:
        for _ in range(10):
            s.sendall(GET)
            data = b""
            while not data.endswith(b"Hello world!"):
                chunk = s.recv(4096)
                assert chunk, "server closed a keep-alive connection"
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 OK\r\n")


def test_pipelined_requests_answered_in_order(hello_port: int) -> None:
    targets = [b"/hello", b"/hello/", b"/hello?n=%d" % 3] * 30
    data = b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % t for t in targets)
    data += b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n"  # an error: answered, then closed
    responses = split_responses(exchange(hello_port, data))
    assert len(responses) == len(targets) + 1
    assert all(r[0] == b"HTTP/1.1 200 OK" and r[2] == b"Hello world!" for r in responses[:-1])
    assert responses[-1][0] == b"HTTP/1.1 404 Not Found"
    assert responses[-1][1][b"connection"] == b"close"


def test_pipelined_in_pieces(hello_port: int) -> None:
    data = GET * 5 + b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", hello_port), timeout=5) as s:
        for i in range(0, len(data), 7):
            s.sendall(data[i:i + 7])
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert [r[2] for r in split_responses(out)] == [b"Hello world!"] * 6


def test_http10(hello_port: int) -> None:
    out = exchange(hello_port, b"GET /hello HTTP/1.0\r\n\r\n")
    [(status, headers, body)] = split_responses(out)
    assert status == b"HTTP/1.1 200 OK" and body == b"Hello world!"
    assert headers[b"connection"] == b"close"
    keep = b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    out = exchange(hello_port, keep + b"GET /hello HTTP/1.0\r\n\r\n")
    first, second = split_responses(out)
    assert first[1][b"connection"] == b"keep-alive" and second[2] == b"Hello world!"


def test_head_sends_no_body(hello_port: int) -> None:
    out = exchange(hello_port, b"HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n" + GET, expect=b"world!")
    assert out.count(b"HTTP/1.1 200 OK") == 2
    head_response = out.split(b"HTTP/1.1 200 OK")[1]
    assert b"Content-Length: 12\r\n" in head_response
    assert b"Hello" not in head_response


@pytest.mark.parametrize(("raw", "status"), [
    (b"GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n"
     b"\r\n0\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\nHost: t\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\n\r\n", 400),
    (b"POST /hello HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n", 413),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    (b"GET /hello HTTP/1.1\r\nHost: t\r\n" + b"X-Fill: " + b"v" * 9000 + b"\r\n\r\n", 431),
    (b"GET /hello HTTP/2.0\r\nHost: t\r\n\r\n", 505),
])
def test_refused_requests(hello_port: int, raw: bytes, status: int) -> None:
    # the smuggled second request must never be answered
    out = exchange(hello_port, raw + GET)
    [(line, headers, _)] = split_responses(out)
    assert line.startswith(b"HTTP/1.1 %d " % status)
    assert headers[b"connection"] == b"close"


def test_good_request_then_bad_one(hello_port: int) -> None:
    out = exchange(hello_port, GET + b"GET /hello HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n")
    first, second = split_responses(out)
    assert first[2] == b"Hello world!"
    assert second[0] == b"HTTP/1.1 400 Bad Request"


def test_an_unread_body_ends_the_connection_after_its_answer(hello_port: int) -> None:
    """The hello handler never reads a body: it is answered, with Connection: close
    (as the original), and what follows the body is never taken for a request."""
    post = b"POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde"
    chunked = (b"POST /hello HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n0\r\n\r\n")
    last = b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    for first in (post, chunked):
        out = exchange(hello_port, first + last)
        assert [r[2] for r in split_responses(out)] == [b"Hello world!"]
        assert b"Connection: close\r\n" in out


def test_streamed_hello(stream_port: int) -> None:
    with httpx.Client(timeout=5) as client:
        r = client.get(f"http://127.0.0.1:{stream_port}/hello")
        assert r.status_code == 200 and r.text == "Hello world!"
        assert r.headers["transfer-encoding"] == "chunked"
    raw = exchange(stream_port, b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert raw.endswith(b"6\r\nHello \r\n6\r\nworld!\r\n0\r\n\r\n")
    raw = exchange(stream_port, b"GET /hello HTTP/1.0\r\n\r\n")  # no chunking on 1.0
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body == b"Hello world!" and b"Connection: close" in head
    assert b"Transfer-Encoding" not in head



def test_app_run_serves_until_interrupted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`app.run()` in its own process: serves, and stops cleanly on Ctrl-C."""
    port = free_port()
    script = tmp_path / "serve.py"
    script.write_text(
        "from tremolo import Tremolo\n"
        "app = Tremolo()\n"
        "@app.route('/hello')\n"
        "async def hello_world(**server):\n"
        "    return 'Hello world!', 'latin-1'\n"
        f"app.run('127.0.0.1', {port}, debug=True)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        assert f"on http://127.0.0.1:{port}" in line and "press CTRL+C to quit" in line
        deadline = time.monotonic() + 5
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/hello", timeout=2).text == "Hello world!"
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
