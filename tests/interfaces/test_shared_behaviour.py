"""Behaviour the three interfaces share, tested once over native, ASGI and WSGI, on
uvloop and asyncio: what the application sees of the target and of the client,
framing, HEAD, Content-Length checks, the server's error answers, limits, proxy
headers and body deadlines."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tremolo import Tremolo
from tremolo.asgi import ASGIAdapter
from tremolo.testing import serve_in_thread
from tremolo.wsgi import WSGIAdapter

from ..helpers import exchange, split_responses

native = Tremolo()


BIG = b"x" * (256 << 10)


@native.route("/big")
async def big(**server):
    return BIG


APP_FIELDS = [("Date", "Mon, 01 Jan 2024 00:00:00 GMT"), ("Server", "app/1")]


@native.route("/dated")
async def dated(response, **server):
    for name, value in APP_FIELDS:
        response.set_header(name, value)
    return b"dated"


@native.route("/length")
async def length(request, **server):
    return str(len(await request.body()))


@native.route("/stream")
async def stream(**server):
    yield b"one,"
    yield b"two"


@native.route("/short")
async def short(response, **server):
    response.set_header("Content-Length", "10")
    return b"12345"


@native.route("/seen")
async def seen(request, **server):
    return json.dumps({"path": request.path.decode(), "query": request.query_string.decode(),
                       "client": request.ip.decode(), "scheme": request.scheme.decode(),
                       "host": request.host.decode()})


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/length":
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one,", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})
        return
    if scope["path"] == "/short":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"12345"})
        return
    if scope["path"] == "/dated":
        await send({"type": "http.response.start", "status": 200, "headers": [
            (n.encode(), v.encode()) for n, v in APP_FIELDS]})
        await send({"type": "http.response.body", "body": b"dated"})
        return
    if scope["path"] == "/big":  # one message: the fast path
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": BIG})
        return
    body = json.dumps({"path": scope["raw_path"].decode(), "query": scope["query_string"].decode(),
                       "client": scope["client"][0] if scope["client"] else "",
                       "scheme": scope["scheme"],
                       "host": dict(scope["headers"]).get(b"host", b"").decode()})
    await send({"type": "http.response.start", "status": 200 if scope["path"] == "/seen"
                else 404, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    if environ["PATH_INFO"] == "/big":
        start_response("200 OK", [])
        return [BIG]
    if environ["PATH_INFO"] == "/length":
        size = len(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return [str(size).encode()]
    if environ["PATH_INFO"] == "/dated":
        start_response("200 OK", APP_FIELDS)
        return [b"dated"]
    if environ["PATH_INFO"] == "/stream":
        start_response("200 OK", [])
        return iter([b"one,", b"two"])
    if environ["PATH_INFO"] == "/short":
        start_response("200 OK", [("Content-Length", "10")])
        return [b"12345"]
    body = json.dumps({"path": environ["PATH_INFO"], "query": environ["QUERY_STRING"],
                       "client": environ["REMOTE_ADDR"], "scheme": environ["wsgi.url_scheme"],
                       "host": environ.get("HTTP_HOST", ""),
                       "user": environ.get("HTTP_X_USER")})
    start_response("200 OK" if environ["PATH_INFO"] == "/seen" else "404 Not Found", [])
    return [body.encode()]


TARGETS: dict[str, Any] = {
    "native": native,
    "asgi": lambda state: ASGIAdapter(asgi_app, state),
    "wsgi": lambda state: WSGIAdapter(wsgi_app, state),
}


@pytest.fixture(scope="module", params=[(i, loop) for i in TARGETS for loop in
                                        ("uvloop", "asyncio")], ids=lambda p: "-".join(p))
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    interface, loop = request.param
    with serve_in_thread(TARGETS[interface], loop=loop, shutdown_timeout=2,
                         trusted_proxies=("127.0.0.1", "10.0.0.0/8")) as (_, port):
        yield interface, port


def get(port: int, target: bytes, headers: bytes = b"") -> tuple[bytes, dict[str, Any]]:
    raw = exchange(port, b"GET " + target + b" HTTP/1.1\r\nHost: example.com\r\n" + headers
                   + b"Connection: close\r\n\r\n")
    status, _, body = split_responses(raw)[0]
    return status, json.loads(body)


@pytest.mark.parametrize("target, path, query", [
    (b"http://example.com/seen?q=1", "/seen", "q=1"),
    (b"HTTPS://example.com:8443/seen", "/seen", ""),
    (b"/seen?x", "/seen", "x"),
])
def test_absolute_form_targets_are_served_as_origin_form(
        server: tuple[str, int], target: bytes, path: str, query: str) -> None:
    _, port = server
    status, seen = get(port, target)
    assert status.startswith(b"HTTP/1.1 200"), status
    assert (seen["path"], seen["query"]) == (path, query)


@pytest.mark.parametrize("forwarded, client", [
    (b"", "127.0.0.1"),
    # the rightmost address that is not a trusted proxy is the client
    (b"X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n", "2.2.2.2"),
    (b"X-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.1.2.3\r\n", "2.2.2.2"),
    (b"X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 10.0.0.1\r\n", "1.1.1.1"),
    # what the client wrote itself cannot pass as an address
    (b"X-Forwarded-For: <script>\r\n", "127.0.0.1"),
    (b"X-Forwarded-For: 1.1.1.1, nonsense\r\n", "127.0.0.1"),
    (b"X-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n", "10.0.0.1"),
    (b"X-Forwarded-For: [2001:db8::1]\r\n", "2001:db8::1"),
])
def test_forwarded_client(server: tuple[str, int], forwarded: bytes, client: str) -> None:
    _, port = server
    _, seen = get(port, b"/seen", forwarded)
    assert seen["client"] == client


@pytest.mark.parametrize("fields, client, scheme, host", [
    (b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: public.test\r\n",
     "127.0.0.1", "https", "public.test"),
    (b"X-Forwarded-For: 203.0.113.5\r\nX-Forwarded-Proto: https\r\n",
     "203.0.113.5", "https", "example.com"),
    (b"X-Forwarded-Proto: gopher\r\nX-Forwarded-Host: a b\r\n",  # neither is valid
     "127.0.0.1", "http", "example.com"),
    # only the family configured is believed (x-forwarded by default): a client's
    # own Forwarded, which a proxy setting X-Forwarded-* passes through, is not
    (b"Forwarded: for=6.6.6.6;proto=https;host=evil.example\r\n",
     "127.0.0.1", "http", "example.com"),
    (b"Forwarded: for=198.51.100.8\r\nX-Forwarded-For: 203.0.113.9\r\n",
     "203.0.113.9", "http", "example.com"),
])
def test_proxy_fields(server: tuple[str, int], fields: bytes, client: str, scheme: str,
                      host: str) -> None:
    _, port = server
    _, seen = get(port, b"/seen", fields)
    assert (seen["client"], seen["scheme"], seen["host"]) == (client, scheme, host)


@pytest.fixture(scope="module", params=list(TARGETS))
def rfc7239_server(request: pytest.FixtureRequest) -> Iterator[int]:
    with serve_in_thread(TARGETS[request.param], shutdown_timeout=2,
                         trusted_proxies=("127.0.0.1", "10.0.0.0/8"),
                         proxy_headers="forwarded") as (_, port):
        yield port


@pytest.mark.parametrize("fields, client, scheme, host", [
    # RFC 7239: the rightmost untrusted hop, with the scheme and host it was seen with
    (b'Forwarded: for=198.51.100.7;proto=https;host=shop.test, for=10.0.0.9\r\n',
     "198.51.100.7", "https", "shop.test"),
    (b'Forwarded: for="[2001:db8::7]:4711";proto=https\r\n', "2001:db8::7", "https",
     "example.com"),
    (b"Forwarded: for=unknown;proto=https\r\n", "127.0.0.1", "https", "example.com"),
    # with proxy_headers=forwarded the X-Forwarded-* fields are a client's own
    (b"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n"
     b"X-Forwarded-Host: evil.example\r\n", "127.0.0.1", "http", "example.com"),
    (b"Forwarded: for=198.51.100.8\r\nX-Forwarded-For: 203.0.113.9\r\n",
     "198.51.100.8", "http", "example.com"),
])
def test_rfc7239_proxy_fields(rfc7239_server: int, fields: bytes, client: str, scheme: str,
                              host: str) -> None:
    _, seen = get(rfc7239_server, b"/seen", fields)
    assert (seen["client"], seen["scheme"], seen["host"]) == (client, scheme, host)


def test_proxy_fields_of_an_untrusted_peer_are_ignored() -> None:
    for interface in TARGETS:
        with serve_in_thread(TARGETS[interface], shutdown_timeout=2,
                             trusted_proxies=("10.9.9.9",)) as (_, port):
            _, seen = get(port, b"/seen", b"X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: "
                          b"https\r\nX-Forwarded-Host: evil.test\r\nForwarded: for=5.6.7.8\r\n")
        assert (seen["client"], seen["scheme"], seen["host"]) == (
            "127.0.0.1", "http", "example.com"), interface


def test_an_application_date_or_server_replaces_the_servers(
        server: tuple[str, int]) -> None:
    _, port = server
    raw = exchange(port, b"GET /dated HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    [(status, fields, body)] = split_responses(raw)
    assert status.startswith(b"HTTP/1.1 200") and body == b"dated"
    head = raw.partition(b"\r\n\r\n")[0].lower()
    assert head.count(b"\r\ndate: ") == 1 and head.count(b"\r\nserver: ") == 1
    assert fields[b"date"] == b"Mon, 01 Jan 2024 00:00:00 GMT"
    assert fields[b"server"] == b"app/1"


def request(port: int, raw: bytes) -> tuple[bytes, dict[bytes, bytes], bytes, bytes]:
    """(status line, fields, body, the raw answer) of one request on its own connection."""
    out = exchange(port, raw)
    status, fields, body = split_responses(out)[0] if out else (b"", {}, b"")
    return status, fields, body, out


def test_framing(server: tuple[str, int]) -> None:
    _, port = server
    # a body in one piece has a Content-Length; a streamed one is chunked on 1.1
    status, fields, body, _ = request(port, b"GET /big HTTP/1.1\r\nHost: t\r\n"
                                      b"Connection: close\r\n\r\n")
    assert status == b"HTTP/1.1 200 OK"
    assert fields[b"content-length"] == str(len(BIG)).encode() and body == BIG
    status, fields, body, _ = request(port, b"GET /stream HTTP/1.1\r\nHost: t\r\n"
                                      b"Connection: close\r\n\r\n")
    assert status == b"HTTP/1.1 200 OK"
    assert fields[b"transfer-encoding"] == b"chunked" and body == b"one,two"
    # and on HTTP/1.0, ended by closing the connection
    _, _, _, raw = request(port, b"GET /stream HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower() and body == b"one,two"
    # keep-alive: two requests on one connection, both answered in order
    raw = exchange(port, b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n"
                   b"GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    bodies = [b for _, _, b in split_responses(raw)]
    assert bodies == [BIG, b"one,two"]


@pytest.mark.parametrize("path", [b"/big", b"/stream"])
def test_head_has_the_fields_of_get_and_no_body(server: tuple[str, int], path: bytes) -> None:
    _, port = server
    raw = exchange(port, b"HEAD " + path + b" HTTP/1.1\r\nHost: t\r\n\r\n"
                   b"GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    if path == b"/big":
        assert b"content-length: %d" % len(BIG) in head.lower()
    assert rest.startswith(b"HTTP/1.1 200")  # no body came between the two answers


def test_a_content_length_the_body_does_not_fill_is_a_500(server: tuple[str, int]) -> None:
    _, port = server
    status, _, _, raw = request(port, b"GET /short HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 500"), raw
    assert b"12345" not in raw


def test_the_servers_own_error_answers(server: tuple[str, int]) -> None:
    """Worded as the original Tremolo words them (its texts where it has one for the
    fault, else "Bad Request" or the reason phrase), in text/html as it sends them."""
    _, port = server
    for raw, code, text in [
            (b"GET /seen HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", b"400", b"Bad Request"),
            (b"GET /seen HTTP/1.1\r\n\r\n", b"400", b"Bad Request"),
            (b" HTTP/\r\n\r\n", b"400", b"bad request: not a request"),
            (b"GET /seen HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
             b"400", b"ambiguous Content-Length"),
            (b"GET /seen HTTP/1.1\r\nHost: t\r\nContent-Length: \r\n\r\n", b"400",
             b"bad Content-Length"),
            (b"GET /seen HTTP/3.0\r\nHost: t\r\n\r\n", b"505", b"HTTP Version Not Supported"),
            (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", b"414",
             b"request header too large"),
            (b"GET /seen HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 9000 + b"\r\n\r\n", b"431",
             b"request header too large")]:
        status, fields, body, _ = request(port, raw)
        assert status.startswith(b"HTTP/1.1 " + code), (raw[:40], status)
        assert fields[b"content-type"] == b"text/html; charset=utf-8"
        assert body == text and fields[b"connection"] == b"close"


@pytest.mark.parametrize("interface", list(TARGETS))
def test_a_body_over_the_limit_is_413_and_the_log_names_the_option(
        interface: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with serve_in_thread(TARGETS[interface], shutdown_timeout=2,
                         client_max_body_size=1000) as (_, port):
        for extra, body in [(b"Content-Length: 1001\r\n", b"x" * 1001),
                            (b"Transfer-Encoding: chunked\r\n",
                             b"3e9\r\n" + b"x" * 1001 + b"\r\n0\r\n\r\n")]:
            caplog.clear()
            status, _, text, _ = request(port, b"POST /length HTTP/1.1\r\nHost: t\r\n"
                                         + extra + b"\r\n" + body)
            # the original's words; the option and its value go to the log
            assert status == b"HTTP/1.1 413 Payload Too Large", (interface, extra, status)
            assert text == b"Payload Too Large"
            assert any("larger than client_max_body_size (1000 bytes): raise it with "
                       "--client-max-body-size or $TREMOLO_CLIENT_MAX_BODY_SIZE (python3 -m "
                       "tremolo), or app.run(client_max_body_size=...)" in r.getMessage()
                       for r in caplog.records), (interface, extra)
        status, _, text, _ = request(port, b"POST /length HTTP/1.1\r\nHost: t\r\n"
                                     b"Connection: close\r\nContent-Length: 1000\r\n\r\n"
                                     + b"x" * 1000)
        assert status == b"HTTP/1.1 200 OK" and text == b"1000"


def test_wsgi_drops_fields_with_underscores() -> None:
    with serve_in_thread(TARGETS["wsgi"], shutdown_timeout=2) as (_, port):
        _, seen = get(port, b"/seen", b"X-User: real\r\nX_User: forged\r\n")
    assert seen["user"] == "real"


@pytest.mark.parametrize("interface", list(TARGETS))
def test_speed_limit_applies_to_every_interface(interface: str) -> None:
    """Off by default; when set, a whole body sent at once is paced as well."""
    import time

    import httpx

    with serve_in_thread(TARGETS[interface], shutdown_timeout=2) as (_, port):
        t0 = time.monotonic()
        assert len(httpx.get(f"http://127.0.0.1:{port}/big", timeout=10).content) == len(BIG)
        assert time.monotonic() - t0 < 0.5  # no limit by default
    with serve_in_thread(TARGETS[interface], shutdown_timeout=2,
                         download_rate=256 << 10) as (_, port):
        t0 = time.monotonic()
        r = httpx.get(f"http://127.0.0.1:{port}/big", timeout=10)
        elapsed = time.monotonic() - t0
    assert r.content == BIG and r.headers["content-length"] == str(len(BIG))
    assert 0.75 < elapsed < 1.5, f"{elapsed:.2f} s for 256 KiB at 256 KiB/s"


def trickle(port: int, pieces: int, size: int, pause: float, declared: int) -> tuple[bytes, float]:
    """Sends a body of `declared` bytes, `pieces` pieces of `size` bytes `pause`
    seconds apart; returns the answer's status line and when it came."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /length HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                     % declared)
        sock.setblocking(False)
        answer = b""
        for _ in range(pieces):
            try:
                answer += sock.recv(4096)
                break  # answered (or closed): stop sending
            except BlockingIOError:
                pass
            sock.sendall(b"x" * size)
            time.sleep(pause)
        sock.setblocking(True)
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.partition(b"\r\n")[0], time.monotonic() - start


@pytest.mark.parametrize("interface", list(TARGETS))
def test_a_body_that_stops_coming_is_408_in_the_originals_words(interface: str) -> None:
    with serve_in_thread(TARGETS[interface], shutdown_timeout=2, request_timeout=0.5) \
            as (_, port):
        status, _, body, _ = request(port, b"POST /length HTTP/1.1\r\nHost: t\r\n"
                                     b"Content-Length: 10\r\n\r\nab")
    assert status == b"HTTP/1.1 408 Request Timeout" and body == b"0: recv timeout"


@pytest.mark.slow
@pytest.mark.parametrize("interface", list(TARGETS))
def test_a_body_slower_than_body_min_rate_is_408(interface: str) -> None:
    """Each piece comes well inside request_timeout, but the body as a whole is far
    slower than body_min_rate: it is cut off a little after the grace, not after
    one request_timeout per piece."""
    with serve_in_thread(TARGETS[interface], shutdown_timeout=2, request_timeout=1.0,
                         body_min_rate=100) as (_, port):
        status, took = trickle(port, pieces=40, size=10, pause=0.25, declared=10_000)
        assert status.startswith(b"HTTP/1.1 408"), status
        assert took < 4, took
        # an honest slow client (1 KB/s, 2 s in all) is served
        status, _ = trickle(port, pieces=8, size=250, pause=0.25, declared=2000)
        assert status == b"HTTP/1.1 200 OK"

