"""Numbers from clients are ASCII digits, nothing else: Unicode digits (`str.isdigit()`
is true for '²', and `int()` takes '٣' or '１'), signs, spaces, underscores and `0x`
are refused or ignored, as fits the field, in every field that holds a number; the
connection is then closed and leaves no file descriptor behind.

Each field is also sent once with its plain ASCII number (`ascii`), which must be
accepted: so a refusal is the field's doing, not some other fault of the request."""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Iterator

import pytest

from .server import Server, serve, wait_for

#: digits of other scripts (str.isdigit() and int() take them all)
SCRIPTS = {"arabic-indic": 0x0660, "extended-arabic-indic": 0x06F0,
           "devanagari": 0x0966, "fullwidth": 0xFF10}
SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def forms(n: str, *, space: bool = True) -> list[tuple[str, bytes]]:
    """`n` as sent (`ascii`, to be accepted) and its odd forms (to be refused). `space`:
    whether a leading space is odd here (around a whole field value it is OWS)."""
    out = [("ascii", n.encode())]
    out += [(name, "".join(chr(base + int(d, 16) % 10) for d in n).encode())
            for name, base in SCRIPTS.items()]
    out.append(("superscripts", n.translate(SUPERSCRIPTS).encode()))
    # '²' is one latin-1 byte: decoded as latin-1, as fields are, it is a str digit
    out.append(("superscript-two-latin1", (n[:-1] + "²").encode("latin-1")))
    out += [("plus", b"+" + n.encode()), ("minus", b"-" + n.encode()),
            ("underscore", (n[:-1] + "_" + n[-1] if len(n) > 1 else "0_" + n).encode()),
            ("hex", b"0x" + n.encode())]
    if space:
        out.append(("space", b" " + n.encode()))
    return out


def params(n: str, *, space: bool = True) -> list[object]:
    return [pytest.param(form, id=name) for name, form in forms(n, space=space)]


def accepted(form: bytes, n: str) -> bool:
    return form == n.encode()


NATIVE = '''
import os
from tremolo import Tremolo

app = Tremolo()
FILE = os.path.join(os.path.dirname(__file__), "file.bin")


@app.route("/")
async def index(request, **server):
    await request.body()
    return request.ip


@app.route("/file")
async def file(response, **server):
    await response.sendfile(FILE)


@app.route("/ws")
async def ws(websocket=None, **server):
    await websocket.accept()
    async for message in websocket:
        await websocket.send(message)
'''

WSGI = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Length", environ["HTTP_X_LENGTH"])])
    return [b"hello"]
'''

ASGI = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    length = dict(scope["headers"])[b"x-length"]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", length)]})
    await send({"type": "http.response.body", "body": b"hello"})
'''

FILE = bytes(range(256)) * 4


def _server(factory: pytest.TempPathFactory, name: str, source: str,
            *args: str) -> Iterator[Server]:
    tmp = factory.mktemp(name)
    (tmp / "file.bin").write_bytes(FILE)
    os.utime(tmp / "file.bin", (1_000_000_000, 1_000_000_000))
    with serve(tmp, source, *args) as server:
        server.steady_fds()  # no test's baseline before the server's own fds are open
        yield server


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # the access log on: it reads the client's proxy fields at the exchange's end
    yield from _server(tmp_path_factory, "native", NATIVE, "--access-log")


@pytest.fixture(scope="module")
def rfc7239(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # believes RFC 7239 Forwarded instead of the X-Forwarded-* fields
    yield from _server(tmp_path_factory, "rfc7239", NATIVE, "--access-log",
                       "--proxy-headers", "forwarded")


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _server(tmp_path_factory, "proxied", NATIVE, "--proxy-protocol", "v1")


@pytest.fixture(scope="module")
def wsgi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _server(tmp_path_factory, "wsgi", WSGI, "--interface", "wsgi")


@pytest.fixture(scope="module")
def asgi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _server(tmp_path_factory, "asgi", ASGI, "--interface", "asgi")


class Answer:
    def __init__(self, data: bytes, eof: bool) -> None:
        self.data, self.eof = data, eof
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        self.fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            self.fields[name.strip().lower()] = value.strip()


def send(server: Server, raw: bytes, *, upgrade: bool = False, timeout: float = 5) -> Answer:
    """Sends `raw` on a new connection and reads until the server closes it (or, for
    an upgrade, until the answer's head has come: then the client closes); then
    waits until the server's fds are back to what they were."""
    baseline = server.fds()
    data, eof = b"", False
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(raw)
        while time.monotonic() < deadline:
            s.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                eof = True
                break
            data += chunk
            if upgrade and b"\r\n\r\n" in data:
                break
    wait_for(lambda: server.fds() <= baseline,
             f"the server's fds back to {baseline} (now {server.fds()})", timeout=5)
    return Answer(data, eof)


def http(target: bytes = b"/", *fields: bytes, body: bytes = b"",
            host: bytes = b"example.com", version: bytes = b"HTTP/1.1") -> bytes:
    head = [b"GET " + target + b" " + version, b"Host: " + host, *fields,
            b"Connection: close"]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def refused(answer: Answer, *statuses: int) -> None:
    assert answer.status in statuses, answer.data[:300]
    assert answer.eof, "the server did not close the connection"


# -- parsed by the core (Rust) -----------------------------------------------------


#: what the core parses: the number, whether a leading space is odd there (around a
#: whole field value it is OWS), the request that carries it, a refusal's statuses
CORE = {
    "content-length": ("5", False, lambda f: http(b"/", b"Content-Length: " + f,
                                                  body=b"hello"), (400,)),
    "chunk-size": ("5", True, lambda f: http(b"/", b"Transfer-Encoding: chunked",
                                             body=f + b"\r\nhello\r\n0\r\n\r\n"), (400,)),
    "host-port": ("80", True, lambda f: http(host=b"example.com:" + f), (400,)),
    "http-version": ("1", True, lambda f: http(version=b"HTTP/1." + f), (400, 505)),
}
#: a PROXY protocol v1 line with the number in it (a trusted peer's header)
PROXY_LINES = {
    "port": ("4000", lambda f: b"PROXY TCP4 192.0.2.7 192.0.2.1 " + f + b" 80\r\n"),
    "address": ("7", lambda f: b"PROXY TCP4 192.0.2." + f + b" 192.0.2.1 4000 80\r\n"),
}


@pytest.mark.parametrize(("field", "form"), [
    pytest.param(field, form, id=f"{field}-{name}")
    for field, (n, space, _, _) in CORE.items() for name, form in forms(n, space=space)])
def test_core_field(native: Server, field: str, form: bytes) -> None:
    n, _, build, statuses = CORE[field]
    answer = send(native, build(form))
    if accepted(form, n):
        assert answer.status == 200 and answer.eof
    else:
        refused(answer, *statuses)


@pytest.mark.parametrize(("field", "form"), [
    pytest.param(field, form, id=f"{field}-{name}")
    for field, (n, _) in PROXY_LINES.items() for name, form in forms(n)])
def test_proxy_header(proxied: Server, field: str, form: bytes) -> None:
    n, build = PROXY_LINES[field]
    answer = send(proxied, build(form) + http())
    if accepted(form, n):
        assert answer.status == 200 and answer.body == b"192.0.2.7" and answer.eof
    else:  # not HTTP: closed without an answer
        assert answer.data == b"" and answer.eof


WS = (b"Upgrade: websocket", b"Connection: Upgrade",
      b"Sec-WebSocket-Key: " + base64.b64encode(b"0123456789abcdef"))


def upgrade(*fields: bytes) -> bytes:
    return b"\r\n".join([b"GET /ws HTTP/1.1", b"Host: example.com", *WS, *fields]) \
        + b"\r\n\r\n"


@pytest.mark.parametrize("form", params("13", space=False))
def test_websocket_version(native: Server, form: bytes) -> None:
    answer = send(native, upgrade(b"Sec-WebSocket-Version: " + form), upgrade=True)
    if accepted(form, "13"):
        assert answer.status == 101
    else:
        assert answer.status == 426 and answer.fields[b"sec-websocket-version"] == b"13"


@pytest.mark.parametrize("param", [b"client_max_window_bits", b"server_max_window_bits"])
@pytest.mark.parametrize("form", params("10", space=False))
def test_deflate_window_bits(native: Server, param: bytes, form: bytes) -> None:
    """An offer with a bad parameter is declined: the handshake goes on without it."""
    answer = send(native, upgrade(b"Sec-WebSocket-Version: 13",
                                  b"Sec-WebSocket-Extensions: permessage-deflate; " + param
                                  + b"=" + form), upgrade=True)
    assert answer.status == 101, answer.data[:300]
    agreed = answer.fields.get(b"sec-websocket-extensions", b"")
    if accepted(form, "10"):
        assert agreed.startswith(b"permessage-deflate") and param + b"=10" in agreed
    else:
        assert agreed == b""


# -- read by Python ------------------------------------------------------------------

# A superscript digit is a str digit and int() refuses it: the ValueError escaped in
# the access log at the exchange's end, and the connection was never closed.
FORWARDED_PORTS = [pytest.param(form, id=name) for name, form in forms("80")]


@pytest.mark.parametrize(("server", "field"), [("rfc7239", b'Forwarded: for="192.0.2.7:%s"'),
                                               ("native", b"X-Forwarded-For: 192.0.2.7:%s")],
                         ids=["forwarded", "x-forwarded-for"])
@pytest.mark.parametrize("form", FORWARDED_PORTS)
def test_forwarded_port(request: pytest.FixtureRequest, server: str, field: bytes,
                        form: bytes) -> None:
    """From a trusted proxy (127.0.0.1), an address with a bad port breaks the
    chain: the client is the peer itself."""
    answer = send(request.getfixturevalue(server), http(b"/", field % form))
    assert answer.status == 200 and answer.eof, answer.data[:300]
    assert answer.body == (b"192.0.2.7" if accepted(form, "80") else b"127.0.0.1")


@pytest.mark.parametrize("form", params("5"))
def test_range(native: Server, form: bytes) -> None:
    """A range that is not digits is refused as the original refuses a malformed
    set: 400 `bad range`."""
    for spec in (b"1-" + form, b"-" + form):
        answer = send(native, http(b"/file", b"Range: bytes=" + spec))
        if accepted(form, "5"):
            assert answer.status == 206 and answer.eof
        else:
            assert answer.status == 400 and answer.body == b"bad range" and answer.eof, spec


@pytest.mark.parametrize("form", params("06"))
def test_if_modified_since(native: Server, form: bytes) -> None:
    """A date that is not an HTTP-date makes the field ignored: 200, not 304."""
    date = b"Sat, " + form + b" Nov 2100 08:49:37 GMT"
    answer = send(native, http(b"/file", b"If-Modified-Since: " + date))
    assert answer.status == (304 if accepted(form, "06") else 200) and answer.eof


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
@pytest.mark.parametrize("form", params("5", space=False))
def test_response_content_length(request: pytest.FixtureRequest, interface: str,
                                 form: bytes) -> None:
    """An application that passes a number on as its Content-Length (a proxy's
    upstream field, here the client's X-Length) answers 500 unless it is digits."""
    server = request.getfixturevalue(interface)
    answer = send(server, http(b"/", b"X-Length: " + form))
    if accepted(form, "5"):
        assert answer.status == 200 and answer.body == b"hello" and answer.eof
    else:
        refused(answer, 500)


def test_strict_http_dates() -> None:
    from tremolo.framework.files import _date

    fixed = _date(b"Sun, 06 Nov 1994 08:49:37 GMT")
    assert fixed == 784111777
    assert _date(b"Sunday, 06-Nov-94 08:49:37 GMT") == fixed
    assert _date(b"Sun Nov  6 08:49:37 1994") == fixed
    assert _date(b"Mon, 01 Jan 2001 00:00:00 GMT") == 978307200
    assert _date(b"Fri, 31 Dec 1999 23:59:59 GMT") == 946684799
    for odd in (b"Sun, +6 Nov 1994 08:49:37 GMT", b"Sun, 0_6 Nov 1994 08:49:37 GMT",
                b"Sun, 06 Nov 1_994 08:49:37 GMT", b"Sun, 06 Nov 1994 08:49:37 +0000",
                "Sun, ٠٦ Nov 1994 08:49:37 GMT".encode(), b"Sun, 31 Feb 1994 08:49:37 GMT",
                b"Sun, 06 Nov 1994 8:49:37 GMT", b"sun, 06 nov 1994 08:49:37 gmt"):
        assert _date(odd) is None, odd
