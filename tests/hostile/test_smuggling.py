"""Request smuggling and response splitting (issue 17 §5).

Smuggling: each vector hides a second request (`GET /smuggled/...`) where a parser
that reads framing differently from its neighbour would see one: CL.TE, TE.CL,
obfuscated Transfer-Encoding, two Content-Lengths, odd chunk sizes, obs-fold, bare
LF, bare CR. Sent through a real nginx that keeps its upstream connections to tremolo
alive (a smuggled request would be answered on a pooled connection, to the next
client), no request reaches the application that nginx did not answer to its sender,
and the clients after it get their own answers. Sent straight to tremolo, each is
refused with 400 or 501, alone, and the connection closed.

Response splitting: an application (native, ASGI, WSGI) that copies a client's value
into a response header's name or value, a redirect's Location or a reason phrase never
makes the server write a line of the client's: a CR, LF, NUL or other control byte
(or, where the server encodes text, a character that is not Latin-1) is answered 500
and the connection closed after it; bytes 0x80-0xFF pass as obs-text, in their
header, and the connection stays in use."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import eventually, free_port, start_nginx, stop_process

from .server import Server, serve

pytestmark = pytest.mark.external  # nginx

# -- smuggling -----------------------------------------------------------------------

#: logs every request it is given: method, path, body length, connection
SEEN = '''
import os
from tremolo import Tremolo

app = Tremolo()
LOG = os.environ["SEEN_LOG"]


@app.route("^/.*")
async def seen(request, **server):
    body = await request.body()
    with open(LOG, "a") as f:
        f.write(f"{request.method.decode()} {request.path.decode()} {len(body)} "
                f"{id(request.exchange.protocol)}\\n")
    return request.path
'''

#: keep-alive to tremolo, with the request body buffered (the default, as
#: docs/deployment.md has it) and passed on as it comes
NGINX = """
    upstream app {{
        server unix:{sock};
        keepalive 4;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location /unbuffered/ {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
        }}
    }}
"""


def smuggled(name: str) -> bytes:
    return b"GET /smuggled/" + name.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"


def post(prefix: bytes, name: str, fields: bytes, body: bytes) -> bytes:
    return (b"POST " + prefix + b"v/" + name.encode() + b" HTTP/1.1\r\nHost: x\r\n" + fields
            + b"\r\n" + body)


#: Transfer-Encoding fields, plain and obfuscated
TRANSFER_ENCODINGS = {
    "te-plain": b"Transfer-Encoding: chunked",
    "te-xchunked": b"Transfer-Encoding: xchunked",
    "te-chunked-identity": b"Transfer-Encoding: chunked, identity",
    "te-tab": b"Transfer-Encoding:\tchunked",
    "te-trailing-space": b"Transfer-Encoding: chunked ",
    "te-case": b"Transfer-Encoding: cHuNkEd",
    "te-space-before-colon": b"Transfer-Encoding : chunked",
    "te-vtab": b"Transfer-Encoding: \x0bchunked",
    "te-duplicate": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x",
    "te-twice": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
    "te-identity-first": b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked",
    "te-obs-fold": b"Transfer-Encoding:\r\n chunked",
    "te-bare-lf": b"X-Foo: bar\nTransfer-Encoding: chunked",
    "te-bare-cr": b"X-Foo: bar\rTransfer-Encoding: chunked",
    "te-nul": b"Transfer-Encoding: chunked\x00",
}
#: those that are valid chunked framing (RFC 9112: OWS around a value, coding names
#: case-insensitive): alone, without a Content-Length, they are one request
VALID_TE = {"te-plain", "te-tab", "te-trailing-space", "te-case"}

#: chunk sizes a strict parser refuses (int(x, 16) takes the first three)
CHUNK_SIZES = {
    "chunk-unicode-digit": "\u0663".encode(),
    "chunk-plus": b"+5",
    "chunk-underscore": b"0_5",
    "chunk-0x": b"0x5",
    "chunk-not-hex": b"5g",
    "chunk-overflow": b"1" + b"0" * 16 + b"5",
    "chunk-trailing-space": b"5 ",
}


def vectors(prefix: bytes) -> dict[str, tuple[bytes, bool]]:
    """name -> (bytes, whether tremolo itself must refuse them)."""
    out: dict[str, tuple[bytes, bool]] = {}
    for name, te in TRANSFER_ENCODINGS.items():
        # CL.TE: the length covers the whole chunked body, the smuggled request
        # included; a parser that reads chunked sees it after the last chunk
        body = b"0\r\n\r\n" + smuggled(name + "-cl-te")
        out[name + "-cl-te"] = (post(prefix, name + "-cl-te",
                                     te + b"\r\nContent-Length: %d\r\n" % len(body), body), True)
        # TE.CL: the smuggled request is a chunk; a parser that reads the length
        # (4) sees it after "XX\r\n"
        s = smuggled(name + "-te-cl")
        body = b"%x\r\n" % len(s) + s + b"\r\n0\r\n\r\n"
        out[name + "-te-cl"] = (post(prefix, name + "-te-cl", b"Content-Length: 4\r\n" + te
                                     + b"\r\n", body), True)
        # alone: a parser that ignores the field sees no body and the chunk as a request
        s = smuggled(name + "-alone")
        body = b"%x\r\n" % len(s) + s + b"\r\n0\r\n\r\n"
        out[name + "-alone"] = (post(prefix, name + "-alone", te + b"\r\n", body),
                                name not in VALID_TE)
    s = smuggled("double-cl")
    out["double-cl"] = (post(prefix, "double-cl",
                             b"Content-Length: 0\r\nContent-Length: %d\r\n" % len(s), s), True)
    s = smuggled("cl-list")
    out["cl-list"] = (post(prefix, "cl-list", b"Content-Length: %d, 0\r\n" % len(s), s), True)
    out["cl-unicode-digit"] = (post(prefix, "cl-unicode-digit", b"Content-Length: "
                                    + "\u0665".encode() + b"\r\n",
                                    b"hello" + smuggled("cl-unicode-digit")), True)
    out["cl-plus"] = (post(prefix, "cl-plus", b"Content-Length: +5\r\n",
                           b"hello" + smuggled("cl-plus")), True)
    for name, size in CHUNK_SIZES.items():
        out[name] = (post(prefix, name, b"Transfer-Encoding: chunked\r\n",
                          size + b"\r\nhello\r\n0\r\n\r\n" + smuggled(name)), True)
    s = smuggled("obs-fold")
    out["obs-fold"] = (post(prefix, "obs-fold", b"X-A: b\r\n Content-Length: %d\r\n" % len(s),
                            s), True)
    out["bare-lf-head"] = (b"GET " + prefix + b"v/bare-lf-head HTTP/1.1\nHost: x\n\n"
                           + smuggled("bare-lf-head"), True)
    out["bare-cr-request-line"] = (b"GET " + prefix + b"v/bare-cr-request-line\r"
                                   + smuggled("bare-cr-request-line"), True)
    out["bare-cr-field"] = (b"GET " + prefix + b"v/bare-cr-field HTTP/1.1\r\nHost: x\rX: y"
                            b"\r\n\r\n" + smuggled("bare-cr-field"), True)
    body = b"0\r\n\r\n" + smuggled("http10-te")
    out["http10-te"] = (b"POST " + prefix + b"v/http10-te HTTP/1.0\r\nHost: x\r\n"
                        b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n" % len(body)
                        + body, True)
    return out


ROOT_VECTORS = vectors(b"/")
REFUSED = [name for name, (_, refused) in ROOT_VECTORS.items() if refused]


@dataclass
class Proxied:
    port: int  # nginx
    sock: Path  # tremolo's UNIX socket
    log: Path  # what the application saw
    app: subprocess.Popen[bytes]

    def seen(self) -> list[list[str]]:
        return [line.split() for line in self.log.read_text().splitlines()]


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    d = tmp_path_factory.mktemp("smuggling")
    (d / "seen.py").write_text(SEEN)
    log, sock = d / "seen.log", d / "app.sock"
    log.write_text("")
    app = subprocess.Popen([sys.executable, "-m", "tremolo", "--bind", str(sock), "--workers",
                            "0", "--no-access-log", "seen:app"], cwd=d,
                           env={**os.environ, "SEEN_LOG": str(log)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    proxy = start_nginx(d, NGINX.format(sock=sock, port=port))
    try:
        eventually(sock.exists, "tremolo", app)
        eventually(lambda: answer(tcp(port), b"GET /up HTTP/1.1\r\nHost: x\r\n"
                                  b"Connection: close\r\n\r\n")[0].startswith(b"HTTP/1.1 200"),
                   "nginx", proxy)
        yield Proxied(port, sock, log, app)
    finally:
        stop_process(proxy, signal.SIGQUIT, 10)
        stop_process(app, signal.SIGINT, 10)


def tcp(port: int) -> Callable[[], socket.socket]:
    return lambda: socket.create_connection(("127.0.0.1", port), timeout=5)


def unix(path: Path) -> Callable[[], socket.socket]:
    def connect() -> socket.socket:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(str(path))
        return s
    return connect


def answer(connect: Callable[[], socket.socket], data: bytes, idle: float = 0.3,
           limit: float = 5) -> tuple[bytes, bool]:
    """Sends `data` on a new connection; what came back until the peer closed (True)
    or was silent for `idle` seconds (False)."""
    with connect() as s:
        s.sendall(data)
        out, end = b"", time.monotonic() + limit
        while time.monotonic() < end:
            s.settimeout(idle)
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
    raise AssertionError(f"still talking after {limit} s: {out[:200]!r}")


def heads(data: bytes) -> list[list[bytes]]:
    """The lines of each response head in `data` (no body here holds a status line)."""
    return [part[:-4].split(b"\r\n")
            for part in re.findall(rb"HTTP/1\.1 .*?\r\n\r\n", data, re.S)]


def statuses(data: bytes) -> list[int]:
    return [int(lines[0].split()[1]) for lines in heads(data)]


@pytest.mark.parametrize("prefix", [b"/", b"/unbuffered/"], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("name", list(ROOT_VECTORS))
def test_nothing_is_smuggled_through_nginx(proxied: Proxied, name: str, prefix: bytes) -> None:
    """Every request the application sees is one that nginx answered to the client
    that sent it; three clients after it, served on the pooled connections, each
    get their own answer."""
    data, _ = vectors(prefix)[name]
    before = len(proxied.seen())
    out, _ = answer(tcp(proxied.port), data, idle=1.0)  # nginx keeps it open when it is fine
    answered = statuses(out)
    assert answered, f"nginx did not answer: {out[:200]!r}"
    after = []
    for i in range(3):
        path = f"/after/{name}/{i}".encode()
        reply, _ = answer(tcp(proxied.port), b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"\r\n\r\n" + path), reply
        after.append(path.decode())
    seen = proxied.seen()[before:]
    paths = [line[1] for line in seen]
    assert paths[-3:] == after, paths
    theirs = paths[:-3]
    # what the attacker's requests made the application see, each answered to it
    assert len(theirs) == answered.count(200), (answered, theirs)
    assert all(f"/{name}" in p for p in theirs), theirs
    # (a /smuggled/ path reaches the application only as a request nginx itself
    # parsed and answered: one it took for a second, pipelined request)


def test_nginx_reuses_its_connections_to_tremolo(proxied: Proxied) -> None:
    """The vectors above ran over nginx's pooled upstream connections: a smuggled
    request would have been answered there, to the next client."""
    for i in range(20):
        answer(tcp(proxied.port), b"GET /pooled/%d HTTP/1.1\r\nHost: x\r\n"
               b"Connection: close\r\n\r\n" % i)
    connections = {line[3] for line in proxied.seen() if line[1].startswith("/pooled/")}
    assert len(connections) <= 4, f"{len(connections)} upstream connections for 20 requests"


@pytest.mark.parametrize("name", REFUSED)
def test_tremolo_refuses_each_vector_itself(proxied: Proxied, name: str) -> None:
    """The same bytes straight to tremolo (as nginx would pass them on if it did not
    check them itself): 400 or 501, one answer, the connection closed, nothing for
    the application."""
    data, _ = ROOT_VECTORS[name]
    before = len(proxied.seen())
    out, closed = answer(unix(proxied.sock), data, idle=2)
    assert len(statuses(out)) == 1 and statuses(out)[0] in (400, 501), out[:300]
    assert closed, "the connection stayed open after a refused request"
    assert proxied.seen()[before:] == []


@pytest.mark.parametrize("name", sorted(VALID_TE))
def test_valid_chunked_framing_is_one_request_and_its_body(proxied: Proxied,
                                                            name: str) -> None:
    """A Transfer-Encoding nginx and RFC 9112 both read as chunked (OWS, any case)
    is chunked to tremolo too: the chunk is the body, not a request."""
    data, _ = ROOT_VECTORS[name + "-alone"]
    before = len(proxied.seen())
    out, _ = answer(unix(proxied.sock), data)
    assert statuses(out) == [200], out[:300]
    s = smuggled(name + "-alone")
    assert [line[1:3] for line in proxied.seen()[before:]] == [[f"/v/{name}-alone",
                                                               str(len(s))]]


# -- response splitting ----------------------------------------------------------------

NATIVE = '''
from tremolo import Tremolo
from tremolo.exceptions import HTTPRedirect

app = Tremolo()


def value(request):
    return request.query["v"][0]


@app.route("/value")
async def in_value(request, response, **server):
    response.set_header(b"X-Echo", value(request))
    return b"ok"


@app.route("/name")
async def in_name(request, response, **server):
    response.set_header(value(request), b"1")
    return b"ok"


@app.route("/streamed")
async def streamed(request, response, **server):
    response.set_header(b"X-Echo", value(request))
    yield b"o"
    yield b"k"


@app.route("/redirect")
async def redirect(request, response, **server):
    raise response.redirect(value(request))


@app.route("/exception")
async def exception(request, **server):
    raise HTTPRedirect("", code=302, location=value(request))


@app.route("/reason")
async def reason(request, response, **server):
    response.set_status(200, value(request))
    return b"ok"


@app.route("/")
async def hello(**server):
    return b"hello"
'''

ASGI = '''
from urllib.parse import parse_qs


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    v = parse_qs(scope["query_string"].decode("latin-1")).get("v", [""])[0].encode()
    path = scope["path"]
    status, headers, more = 200, [], False
    if path in ("/value", "/streamed"):
        headers, more = [(b"x-echo", v)], path == "/streamed"
    elif path == "/name":
        headers = [(v, b"1")]
    elif path in ("/redirect", "/exception"):
        status, headers = 302, [(b"location", v)]
    elif path == "/trailer":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"trailer", b"x-echo")]})
        await send({"type": "http.response.body", "body": b"ok"})
        await send({"type": "http.response.trailers", "headers": [(b"x-echo", v)]})
        return
    body = b"ok" if path != "/" else b"hello"
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if more:
        await send({"type": "http.response.body", "body": b"o", "more_body": True})
        body = b"k"
    await send({"type": "http.response.body", "body": body})
'''

WSGI = '''
from urllib.parse import parse_qs


def app(environ, start_response):
    v = parse_qs(environ["QUERY_STRING"]).get("v", [""])[0]
    path = environ["PATH_INFO"]
    status, headers = "200 OK", []
    if path in ("/value", "/streamed"):
        headers = [("X-Echo", v)]
    elif path == "/name":
        headers = [(v, "1")]
    elif path in ("/redirect", "/exception"):
        status, headers = "302 Found", [("Location", v)]
    elif path == "/reason":
        status = "200 " + v
    start_response(status, headers)
    if path == "/streamed":
        return iter([b"o", b"k"])  # not a list: sent as it comes
    return [b"ok" if path != "/" else b"hello"]
'''

SPLIT_APPS = {"native": NATIVE, "asgi": ASGI, "wsgi": WSGI}
#: where the client's value goes, for each interface
PLACES = {"native": ["/value", "/name", "/streamed", "/redirect", "/exception", "/reason"],
          "asgi": ["/value", "/name", "/streamed", "/redirect", "/trailer"],
          "wsgi": ["/value", "/name", "/streamed", "/redirect", "/reason"]}
#: the client's values: text percent-encoded in a query, decoded as UTF-8 by the
#: applications (the native and WSGI ones hand text to the server, which encodes it
#: as Latin-1; the ASGI one gives UTF-8 bytes)
HOSTILE = {
    "crlf": "a\r\nSet-Cookie: evil=1",
    "lf": "a\nSet-Cookie: evil=1",
    "cr": "a\rSet-Cookie: evil=1",
    "crlf-crlf": "a\r\n\r\nHTTP/1.1 200 OK\r\nSet-Cookie: evil=1",
    "nul": "a\x00b",
    "vtab": "a\x0bb",
    "esc": "a\x1b[2Jb",
    "del": "a\x7fb",
    # the low bytes of U+010D U+010A are CR LF: text must never be cut to them
    "unicode-crlf": "a\u010d\u010aSet-Cookie: evil=1",
}
#: values that are no threat: bytes 0x80-0xFF are obs-text in a field value
HARMLESS = {"nel": "a\u0085b", "latin-1": "caf\u00e9"}


@pytest.fixture(scope="module", params=list(SPLIT_APPS))
def splitting(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[str, Server]]:
    interface = request.param
    with serve(tmp_path_factory.mktemp(interface), SPLIT_APPS[interface]) as srv:
        yield interface, srv


def exchange_two(port: int, path: str, value: str) -> tuple[bytes, bool]:
    """A request with the value, then (after a moment) a plain one on the same
    connection: what came back, and whether the server closed it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path}?v={quote(value, safe='')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.05)
        with suppress(OSError):  # closed after the first answer
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        out, end = b"", time.monotonic() + 5
        while time.monotonic() < end and not out.endswith(b"hello"):
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
        return out, False


def assert_not_split(data: bytes) -> None:
    for lines in heads(data):
        for line in lines[1:]:
            name, colon, _ = line.partition(b":")
            assert colon and re.fullmatch(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name), line
            assert name.lower() != b"set-cookie", line


@pytest.mark.parametrize("value", list(HOSTILE))
def test_a_hostile_value_in_a_response_header_is_a_500(splitting: tuple[str, Server],
                                                       value: str) -> None:
    """Every place, every hostile value: one 500 (the server's own, whole), no line
    of the client's, and the connection closed after it; a trailer refused after
    the body went out cuts the response short instead."""
    interface, srv = splitting
    for path in PLACES[interface]:
        out, closed = exchange_two(srv.port, path, HOSTILE[value])
        assert_not_split(out)
        if interface == "asgi" and value == "unicode-crlf" and path != "/name":
            # the application encoded it as UTF-8 itself: obs-text, no CR or LF
            assert statuses(out)[0] in (200, 302), (path, out[:300])
            continue
        if path == "/trailer":
            # the head and body were out before the trailer was refused: the
            # response is cut short (no last chunk), and closing tells the client
            assert statuses(out) == [200] and closed, out
            assert not out.endswith(b"0\r\n\r\n") and b"evil" not in out, out
            continue
        assert statuses(out) == [500], (path, out[:300])
        head, _, body = out.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)\r\ncontent-length: (\d+)", head + b"\r\n")[1])
        assert len(body) == length, (path, out)
        assert closed, (path, "the connection stayed open after a 500")
    assert srv.proc.poll() is None


@pytest.mark.parametrize("value", list(HARMLESS))
def test_obs_text_in_a_response_header_passes_and_the_connection_goes_on(
        splitting: tuple[str, Server], value: str) -> None:
    """Bytes 0x80-0xFF are field content (obs-text): the value is sent as the
    application gave it (text as Latin-1, the ASGI application's UTF-8 bytes), in
    its own field, and the connection serves the next request."""
    interface, srv = splitting
    sent = HARMLESS[value].encode("utf-8" if interface == "asgi" else "latin-1")
    for path, field in (("/value", b"x-echo"), ("/redirect", b"location")):
        out, closed = exchange_two(srv.port, path, HARMLESS[value])
        assert_not_split(out)
        assert statuses(out)[1:] == [200] and not closed, (path, out[:300])
        fields = [line.split(b": ", 1) for line in heads(out)[0][1:]]
        assert [v for n, v in fields if n.lower() == field] == [sent], (path, out[:300])
