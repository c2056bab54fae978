"""The requests the differential suite sends to both servers, and the differences
expected between their answers (each also in docs/differences.md)."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    variant: str
    name: str
    request: bytes
    #: frames a WebSocket client sends after the handshake
    frames: bytes = b""

    @property
    def method(self) -> bytes:
        return self.request.split(b" ", 1)[0]


def req(method: str, target: str, *headers: str, body: bytes = b"",
        length: bool = True) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: diff.test", "Connection: close", *headers]
    if body and length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def multipart(*parts: tuple[str, str | None, str | None, bytes]) -> tuple[str, bytes]:
    """(Content-Type field, body) of a multipart/form-data body with a fixed boundary."""
    boundary = "diffBoundary42"
    out = b""
    for name, filename, ctype, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if ctype is not None:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"Content-Type: multipart/form-data; boundary={boundary}", out


def ws_frame(payload: bytes, opcode: int = 1, fin: bool = True) -> bytes:
    """A masked client frame (a fixed mask: the bytes on the wire are the same for both)."""
    mask = b"\x01\x02\x03\x04"
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


# the client's side of the closing handshake, sent ahead (the server reads it after
# the messages before it)
CLOSE = ws_frame(b"\x03\xe8", opcode=8)
WS_KEY = base64.b64encode(b"differential-key").decode()
WS_HEAD = ("Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {WS_KEY}",
           "Sec-WebSocket-Version: 13")


def ws_req(path: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: diff.test", *WS_HEAD]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


_FORM_FIELDS = "Content-Type: application/x-www-form-urlencoded"
_MULTI_CT, _MULTI = multipart(("field", None, None, b"value"),
                              ("doc", "a.txt", "text/plain", b"file data"),
                              ("empty", "", "application/octet-stream", b""))
_BIG_CT, _BIG = multipart(("small", None, None, b"x"),
                          ("big", "big.bin", "application/x-test", bytes(range(256)) * 10))
_SAVE_CT, _SAVE = multipart(("note", None, None, b"hi"),
                            ("one", "one.txt", "text/plain", b"1" * 150),
                            ("two", "two.bin", "application/x-two", b"2" * 10))


def _main() -> list[Case]:
    m = "main"
    cases = [
        # routing
        Case(m, "hello", req("GET", "/hello")),
        Case(m, "hello-slash", req("GET", "/hello/")),
        Case(m, "hello-query", req("GET", "/hello?x=1")),
        Case(m, "hello-head", req("HEAD", "/hello")),
        Case(m, "root-unrouted", req("GET", "/")),
        Case(m, "not-found", req("GET", "/nowhere")),
        Case(m, "str-body", req("GET", "/str")),
        Case(m, "latin1-body", req("GET", "/latin1")),
        Case(m, "tuple-bytes-first", req("GET", "/tuple-bytes")),
        Case(m, "regex-named", req("GET", "/page/42")),
        Case(m, "regex-no-match", req("GET", "/page/abc")),
        Case(m, "regex-unnamed", req("GET", "/tag/news")),
        Case(m, "registered-twice", req("GET", "/twice")),
        Case(m, "deep-path", req("GET", "/deep/a/b/c")),
        Case(m, "percent-path", req("GET", "/echo-path/a%20b%2Fc?x=%41")),
        Case(m, "http10", b"GET /hello HTTP/1.0\r\n\r\n"),
        Case(m, "http10-keep-alive", b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n"
             b"\r\nGET /str HTTP/1.0\r\n\r\n"),
        Case(m, "yield-head", req("HEAD", "/yield")),
        Case(m, "view-get", req("GET", "/items")),
        Case(m, "view-head", req("HEAD", "/items")),
        Case(m, "view-post", req("POST", "/items", body=b"payload")),
        Case(m, "view-put-405", req("PUT", "/items", body=b"x")),
        # handlers
        Case(m, "route-options", req("GET", "/created")),
        Case(m, "yield", req("GET", "/yield")),
        Case(m, "yield-empty", req("GET", "/yield-empty")),
        Case(m, "sync", req("GET", "/sync")),
        Case(m, "sync-yield", req("GET", "/sync-yield")),
        Case(m, "return-none", req("GET", "/none")),
        Case(m, "custom-option", req("GET", "/options")),
        # request
        Case(m, "request-attrs", req("GET", "/request?a=1&b=2", "X-Test: yes",
                                     "X-Multi: a, b", "X-Multi: c",
                                     "Content-Type: text/x-test")),
        Case(m, "query", req("GET", "/query?a=1&a=2&b=%20space&c=")),
        Case(m, "query-empty", req("GET", "/query")),
        Case(m, "query-utf8", req("GET", "/query?name=caf%C3%A9&plus=a+b")),
        Case(m, "cookies", req("GET", "/cookies", "Cookie: a=1; b=two%20words; a=3")),
        Case(m, "cookies-none", req("GET", "/cookies")),
        Case(m, "cookies-quoted", req("GET", "/cookies", 'Cookie: q="quoted"; e=')),
        Case(m, "body", req("POST", "/body", body=b"hello body")),
        Case(m, "body-empty", req("POST", "/body")),
        Case(m, "body-chunked", req("POST", "/body", "Transfer-Encoding: chunked",
                                    body=b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                                    length=False)),
        Case(m, "read", req("POST", "/read", body=b"abcdefghij" * 100)),
        Case(m, "stream", req("POST", "/stream", body=b"s" * 50_000)),
        Case(m, "form-urlencoded", req("POST", "/form", _FORM_FIELDS,
                                       body=b"a=1&b=two+words&a=3")),
        Case(m, "form-multipart", req("POST", "/form", _MULTI_CT, body=_MULTI)),
        Case(m, "files-pieces", req("POST", "/files", _BIG_CT, body=_BIG)),
        Case(m, "files-not-multipart", req("POST", "/files", _FORM_FIELDS, body=b"a=1")),
        # response
        Case(m, "set-status-reason", req("GET", "/status")),
        Case(m, "set-status-code-only", req("GET", "/status-code-only")),
        Case(m, "headers", req("GET", "/headers")),
        Case(m, "status-then-body", req("GET", "/status-then-body")),
        Case(m, "set-cookie", req("GET", "/set-cookie")),
        Case(m, "write", req("GET", "/write")),
        Case(m, "write-unchunked", req("GET", "/write-unchunked")),
        Case(m, "end", req("GET", "/end")),
        Case(m, "send-raw", req("GET", "/raw")),
        # sendfile
        Case(m, "sendfile", req("GET", "/sendfile?name=hello.txt")),
        Case(m, "sendfile-type", req("GET", "/sendfile?name=page.html&type=text/html")),
        Case(m, "sendfile-head", req("HEAD", "/sendfile?name=data.bin")),
        Case(m, "sendfile-range", req("GET", "/sendfile?name=data.bin", "Range: bytes=10-19")),
        Case(m, "sendfile-range-open", req("GET", "/sendfile?name=data.bin",
                                           "Range: bytes=10200-")),
        Case(m, "sendfile-range-suffix", req("GET", "/sendfile?name=data.bin",
                                             "Range: bytes=-5")),
        Case(m, "sendfile-range-416", req("GET", "/sendfile?name=data.bin",
                                          "Range: bytes=99999-")),
        Case(m, "sendfile-ranges", req("GET", "/sendfile?name=data.bin",
                                       "Range: bytes=0-1,5-9")),
        Case(m, "sendfile-if-modified-since", req(
            "GET", "/sendfile?name=hello.txt",
            "If-Modified-Since: Tue, 14 Nov 2023 22:13:20 GMT")),
        Case(m, "sendfile-modified", req("GET", "/sendfile?name=hello.txt",
                                         "If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT")),
        Case(m, "sendfile-missing", req("GET", "/sendfile?name=missing.txt")),
        # hooks and middlewares
        Case(m, "hooks", req("GET", "/hooked")),
        Case(m, "middleware-answers", req("GET", "/mw/answer")),
        Case(m, "middleware-raises", req("GET", "/mw/raise")),
        Case(m, "middleware-replaces", req("GET", "/mw/replace")),
        Case(m, "middleware-answers-tuple", req("GET", "/mw/answer-tuple")),
        Case(m, "middleware-status-again", req("GET", "/mw/status")),
        Case(m, "mount", req("GET", "/sub/inner")),
        Case(m, "mount-missing", req("GET", "/sub/nothing")),
        Case(m, "mount-regex", req("GET", "/sub/re/5")),
        # errors without handlers
        Case(m, "error-forbidden", req("GET", "/error/forbidden")),
        Case(m, "error-teapot", req("GET", "/error/teapot")),
        Case(m, "error-with-headers", req("GET", "/error/headers")),
        Case(m, "error-bare", req("GET", "/error/bare")),
        Case(m, "error-not-found-message", req("GET", "/error/not-found-message")),
        Case(m, "error-bad-request", req("GET", "/error/bad-request")),
        Case(m, "error-too-large", req("GET", "/error/too-large")),
        Case(m, "error-unavailable", req("GET", "/error/unavailable")),
        Case(m, "error-internal", req("GET", "/error/internal")),
        Case(m, "error-bug", req("GET", "/error/bug")),
        Case(m, "error-timeout", req("GET", "/error/timeout")),
        Case(m, "error-recaused", req("GET", "/error/recaused")),
        Case(m, "lock-timeout", req("GET", "/lock")),
        # SSE and WebSocket
        Case(m, "sse", req("GET", "/sse")),
        Case(m, "sse-options", req("GET", "/sse-options")),
        Case(m, "websocket-echo", ws_req("/ws"),
             frames=ws_frame(b"hi") + ws_frame(b"there") + ws_frame(b"bye") + CLOSE),
        Case(m, "websocket-binary", ws_req("/ws"),
             frames=ws_frame(b"\x00\x01\x02", opcode=2) + ws_frame(b"bye") + CLOSE),
        Case(m, "websocket-plain-get", req("GET", "/ws")),
        Case(m, "websocket-ping", ws_req("/ws"),
             frames=ws_frame(b"ping!", opcode=9) + ws_frame(b"after ping")
             + ws_frame(b"bye") + CLOSE),
        Case(m, "websocket-fragmented", ws_req("/ws"),
             frames=ws_frame(b"frag", opcode=1, fin=False) + ws_frame(b"mented", opcode=0)
             + ws_frame(b"bye") + CLOSE),
        # malformed requests
        Case(m, "bad-two-lengths", b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
             b"Content-Length: 2\r\n\r\nab"),
        Case(m, "bad-obs-fold", b"GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
        Case(m, "bad-version", b"GET /hello HTTP/2.0\r\nHost: x\r\n\r\n"),
        Case(m, "bad-no-host", b"GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"),
    ]
    for code in (301, 302, 303, 307):
        cases.append(Case(m, f"redirect-{code}", req("GET", f"/redirect?code={code}")))
    cases += [Case(m, "redirect-303-http10", b"GET /redirect?code=303 HTTP/1.0\r\n\r\n"),
              Case(m, "redirect-300", req("GET", "/redirect?code=300"))]
    return cases


def _handled() -> list[Case]:
    h = "handled"
    return [Case(h, f"handled-{name}", req("GET", path)) for name, path in [
        ("forbidden", "/forbidden"), ("bug", "/bug"), ("none-return", "/quiet"),
        ("bad-request", "/bad"), ("restatus", "/restatus"), ("not-found", "/missing"),
        ("recode", "/recode"),
    ]] + [Case(h, "handled-malformed-request",
               b"GET /bad HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n")]


def _limits() -> list[Case]:
    lim = "limits"
    return [
        Case(lim, "limit-under", req("POST", "/upload", body=b"u" * 1000)),
        Case(lim, "limit-over", req("POST", "/upload", body=b"u" * 1001)),
    ]


def _examples() -> list[Case]:
    e = "examples"
    return [
        Case(e, "example-static", req("GET", "/static/hello.txt")),
        Case(e, "example-static-missing", req("GET", "/static/none.txt")),
        Case(e, "example-redirect", req("GET", "/go")),
        Case(e, "example-redirect-target", req("GET", "/target?from=go")),
        Case(e, "example-upload-stream", req("POST", "/upload-stream", _BIG_CT, body=_BIG)),
        Case(e, "example-upload-save", req("POST", "/upload-save", _SAVE_CT, body=_SAVE)),
        Case(e, "example-sse", req("GET", "/notifications")),
        Case(e, "example-module-view", req("GET", "/fruits")),
        Case(e, "example-module-view-delete", req("DELETE", "/fruits")),
        Case(e, "example-module-view-405", req("POST", "/fruits", body=b"x")),
        Case(e, "example-chat", ws_req("/chat"),
             frames=ws_frame(b"<b>hi</b>") + ws_frame(b"", opcode=8)),
    ]


CASES = _main() + _handled() + _limits() + _examples()

@dataclass(frozen=True)
class Difference:
    """How an answer is expected to differ from the original's, and why. The parts
    named here must differ (something of them), and everything else must not."""

    reason: str
    #: fields (lowercase names) left out on both sides before comparing
    fields: tuple[str, ...] = ()
    status: bool = False  # the status code or reason phrase
    body: bool = False
    #: nothing can be compared: the original fails where tremolo answers
    everything: bool = False


PAGE_404 = Difference("the 404 page's markup is tremolo's own (same title and message)",
                      body=True)
ETAG = ("etag",)
ETAG_AND_206 = ("etag", "accept-ranges", "last-modified")
ORIGINAL_MULTIPART = Difference(
    "the original's multipart reader fails at the end of every body (500, 'async "
    "generator raised StopAsyncIteration'), with httpx and curl alike",
    everything=True)
BUG_MESSAGE = Difference("a bug's own message (which can hold internals) is not sent: "
                         "'Internal Server Error' instead", body=True)
ALLOW_HEAD = Difference("Allow lists HEAD, which every GET route serves", fields=("allow",))
SENDFILE_ETAG = Difference("sendfile() adds a strong ETag", fields=ETAG)
RANGE_FIELDS = Difference("a 206 keeps ETag, Accept-Ranges and Last-Modified",
                          fields=ETAG_AND_206)

#: what the middlewares of the main application set
MIDDLEWARE_FIELDS = ("x-request-middleware", "x-response-middleware", "x-sub-middleware")
_KEPT = ("an error answer keeps the fields the request middlewares set and runs the "
         "response middlewares; the original drops those fields and skips them")


def kept(d: Difference | None = None) -> Difference:
    """An error answer of the main application (whose middlewares set fields on
    every response), with `d`'s own difference besides."""
    if d is None:
        return Difference(_KEPT, fields=MIDDLEWARE_FIELDS)
    return Difference(f"{d.reason}; and {_KEPT}", fields=d.fields + MIDDLEWARE_FIELDS,
                      status=d.status, body=d.body, everything=d.everything)


EXPECTED: dict[str, Difference] = {
    "not-found": kept(PAGE_404),
    "regex-no-match": kept(PAGE_404),
    "mount-missing": kept(PAGE_404),
    "example-static-missing": PAGE_404,
    "view-put-405": kept(ALLOW_HEAD),
    "example-module-view-405": ALLOW_HEAD,
    "yield": Difference("a yielded str is sent as UTF-8; the original stops at it",
                        body=True),
    "request-attrs": Difference("headers.getlist() keeps the order the values came in; "
                                "the original reverses the items of each field", body=True),
    "cookies": Difference("request.cookies keeps the order the values came in; the "
                          "original reverses it", body=True),
    "read": Difference("read() after read(n) gives the rest of the body; the original "
                       "loses what read(n) had buffered past n", body=True),
    "form-multipart": ORIGINAL_MULTIPART,
    "files-pieces": ORIGINAL_MULTIPART,
    "example-upload-stream": ORIGINAL_MULTIPART,
    "example-upload-save": ORIGINAL_MULTIPART,
    "set-status-code-only": Difference("set_status(201) gives the standard reason "
                                       "'Created'; the original says 'OK'", status=True),
    "set-cookie": Difference(
        "set_cookie() without expires makes a session cookie; the original always adds "
        "Expires=now and Max-Age=0, which deletes it at once", fields=("set-cookie",)),
    "sendfile": SENDFILE_ETAG,
    "sendfile-type": SENDFILE_ETAG,
    "sendfile-head": SENDFILE_ETAG,
    "sendfile-modified": SENDFILE_ETAG,
    "example-static": SENDFILE_ETAG,
    "sendfile-range": RANGE_FIELDS,
    "sendfile-range-open": RANGE_FIELDS,
    "sendfile-range-suffix": RANGE_FIELDS,
    "sendfile-if-modified-since": Difference(
        "a 304 keeps ETag and Last-Modified (RFC 9110 §15.4.5)",
        fields=("etag", "last-modified")),
    "sendfile-range-416": kept(Difference(
        "416 says `Content-Range: bytes */size` (RFC 9110 §15.5.17)",
        fields=("content-range",))),
    "sendfile-ranges": Difference(
        "several ranges come in the order asked (the original reverses them), with a "
        "boundary of tremolo's own", fields=(*ETAG_AND_206, "content-type"), body=True),
    "sendfile-missing": Difference("a missing file is 404; the original answers 500 with "
                                   "the OS error", everything=True),
    "middleware-replaces": Difference("one Content-Type; the original sends it twice",
                                      fields=("content-type",)),
    "error-not-found-message": kept(Difference(
        "NotFound('message') answers its message; the original shows its generic page",
        body=True)),
    "error-bug": kept(BUG_MESSAGE),
    "websocket-plain-get": kept(BUG_MESSAGE),
    "redirect-307": Difference("response.redirect() takes 307 (and 308); the original "
                               "turns them into 302", status=True),
    "limit-over": Difference("a body over client_max_body_size is 413 Payload Too Large "
                             "(RFC 9110 §15.5.14); the original answers 400 'payload too "
                             "large' when the body came with the head", everything=True),
    "bad-version": Difference("a version other than HTTP/1.x is 505 (RFC 9110 §15.6.6); "
                              "the original answers 400", everything=True),
    "handled-malformed-request": Difference(
        "a malformed request is answered by the server before any application code runs "
        "(its own 400 'Bad Request'); the original passes it to the application's 400 "
        "handler", body=True),
    "example-chat": Difference("a close without a code is answered without one (RFC 6455 "
                               "§5.5.1: the client's code is echoed); the original sends "
                               "1000", body=True),
    "files-not-multipart": kept(),
    "middleware-raises": kept(),
    "error-forbidden": kept(),
    "error-teapot": kept(),
    "error-with-headers": kept(),
    "error-bare": kept(),
    "error-bad-request": kept(),
    "error-too-large": kept(),
    "error-unavailable": kept(),
    "error-internal": kept(),
    "error-timeout": kept(),
    "error-recaused": kept(),
}
