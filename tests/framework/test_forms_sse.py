"""request.form(), request.files() (streamed multipart) and SSE."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tremolo import Tremolo
from tremolo.framework import request as request_module
from tremolo.testing import serve_in_thread

from ..helpers import exchange, split_responses

app = Tremolo()


@app.route("/form")
async def form(request: Any) -> str:
    return json.dumps(await request.form())


@app.route("/form-then-files")
async def form_then_files(request: Any) -> str:
    fields = await request.form()
    later = [part.name async for part in request.files()]  # nothing left: no error
    files = {name: [{**f, "data": f["data"].decode()} for f in parts]
             for name, parts in request.params.files.items()}
    return json.dumps({"fields": fields, "post": request.params.post, "files": files,
                       "later": later})


@app.route("/form-small")
async def form_small(request: Any) -> str:
    return json.dumps(await request.form(max_fields=2, max_size=100))


@app.route("/files")
async def files(request: Any) -> str:
    out = []
    limit = int(request.query.get("piece", ["104857600"])[0])
    async for part in request.files(max_file_size=limit):
        pieces, digest, size, largest = 0, hashlib.sha256(), 0, 0
        async for data in part.stream():
            pieces += 1
            size += len(data)
            largest = max(largest, len(data))
            digest.update(data)
        out.append({"name": part.name, "filename": part.filename, "type": part.type,
                    "size": size, "sha": digest.hexdigest(), "pieces": pieces,
                    "largest": largest, "eof": part.eof})
    return json.dumps(out)


@app.route("/files-original")
async def files_original(request: Any) -> str:
    """The original's way: each iteration brings a piece in part['data']."""
    out = []
    digests: dict[str, Any] = {}
    async for part in request.files(max_file_size=65536):
        digests.setdefault(part["name"], hashlib.sha256()).update(part["data"])
        out.append([part["name"], part.get("filename", ""), len(part["data"]), part["eof"]])
    return json.dumps({"pieces": out, "sha": {k: d.hexdigest() for k, d in digests.items()}})


@app.route("/files-skip")
async def files_skip(request: Any) -> str:
    names = [part.name async for part in request.files()]  # data never read
    return json.dumps(names)


@app.route("/files-in-turns")
async def files_in_turns(request: Any) -> str:
    """The original's upload test: files(max_files=1) stops after one part, and a
    later files() goes on with the next ones, in pieces of its own size."""
    turns = []
    for kwargs in ({"max_files": 1}, {"max_file_size": 1000}, {}):
        turns.append([[part["name"], part.get("type"), len(part["data"]), part["eof"]]
                      async for part in request.files(**kwargs)])
    return json.dumps(turns)


@app.route("/form-per-part")
async def form_per_part(request: Any) -> str:
    try:
        fields = await request.form(max_fields=2, max_size=100)
    except ValueError as exc:  # the original's exception for a part past max_size
        return json.dumps({"error": str(exc), "code": getattr(exc, "code", None)})
    files = {name: [{**f, "data": f["data"].decode()} for f in parts]
             for name, parts in request.params.files.items()}
    return json.dumps({"fields": fields, "files": files})


@app.route("/sse")
async def events(sse: Any = None, **server: Any) -> None:
    await sse.send("hello")
    await sse.send("line one\nline two\r\nline three", event="update", event_id=7, retry=3000)
    await sse.close()


@app.route("/sse-bad")
async def sse_bad(sse: Any = None) -> None:
    await sse.send("x", event="two\nlines")


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve_in_thread(app, client_max_body_size=64 << 20, download_rate=1 << 40,
                         upload_rate=1 << 40, shutdown_timeout=2) as (_, p):
        yield p


def url(port: int, path: str) -> str:
    return f"http://127.0.0.1:{port}{path}"


def test_urlencoded_form(port: int) -> None:
    r = httpx.post(url(port, "/form"), data={"a": "1", "b": ["x", "y"], "c": "caf\u00e9"},
                   timeout=5)
    assert r.json() == {"a": ["1"], "b": ["x", "y"], "c": ["caf\u00e9"]}


def test_multipart_form_fields(port: int) -> None:
    r = httpx.post(url(port, "/form"), data={"a": "1", "b": "two"},
                   files={"f": ("f.txt", b"file data")}, timeout=5)
    assert r.json() == {"a": ["1"], "b": ["two"]}


def test_form_keeps_fields_and_files_in_params(port: int) -> None:
    r = httpx.post(url(port, "/form-then-files"), data={"a": "1"},
                   files={"f": ("f.txt", b"file data", "text/plain")}, timeout=5)
    assert r.json() == {
        "fields": {"a": ["1"]}, "post": {"a": ["1"]}, "later": [],
        "files": {"f": [{"filename": "f.txt", "type": "text/plain", "data": "file data"}]},
    }


def test_form_limits(port: int) -> None:
    r = httpx.post(url(port, "/form-small"), data={"a": "1", "b": "2", "c": "3"}, timeout=5)
    assert r.status_code == 400
    r = httpx.post(url(port, "/form-small"), data={"a": "x" * 200}, timeout=5)
    assert r.status_code == 413


def test_form_of_another_content_type_is_400(port: int) -> None:
    # as the original: nothing to parse is the client's error, not an empty form
    for ctype in ("application/json", None):
        headers = {"content-type": ctype} if ctype else {}
        r = httpx.post(url(port, "/form"), content=b'{"a": 1}', headers=headers, timeout=5)
        assert (r.status_code, r.text) == (400, "invalid Content-Type")


def test_form_max_size_is_per_part_and_max_fields_stops(port: int) -> None:
    # each part may have max_size bytes (the original's rule), not all of them
    r = httpx.post(url(port, "/form-per-part"), data={"a": "x" * 90},
                   files={"f": ("f.txt", b"y" * 90)}, timeout=5)
    assert r.json() == {"fields": {"a": ["x" * 90]},
                        "files": {"f": [{"filename": "f.txt", "type": "text/plain",
                                         "data": "y" * 90}]}}
    # past max_size: the original's ValueError, answered 413 when not caught
    r = httpx.post(url(port, "/form-per-part"), files={"f": ("f.txt", b"y" * 101)},
                   timeout=5)
    assert r.json() == {"code": 413, "error": "fragmented file. consider increasing the "
                        "max_size limit or stream using request.files()"}
    r = httpx.post(url(port, "/form"), data={"a": "x" * 101},
                   files={"f": ("f.txt", b"y")}, timeout=5)
    assert r.status_code == 200  # max_size 8 MiB: every part fits
    # parts past max_fields are left unread, as the original (not a 400)
    r = httpx.post(url(port, "/form-per-part"), data={"a": "1", "b": "2", "c": "3"},
                   files={"f": ("f.txt", b"z")}, timeout=5)
    assert r.json() == {"fields": {"a": ["1"], "b": ["2"]}, "files": {}}


def test_files_in_turns_and_parts_without_a_type(port: int) -> None:
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" + b"z" * 2500 + b"\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"g\"; filename=\"g\"\r\n"
            b"\r\nno type\r\n--XyZ--\r\n")
    [(status, _, out)] = split_responses(exchange(port, multipart(body).replace(
        b"/files", b"/files-in-turns", 1)))
    assert status == b"HTTP/1.1 200 OK"
    # a part without Content-Type has no type (the original's None; RFC 7578 §4.4's
    # default text/plain is the reader's to apply)
    assert json.loads(out) == [
        [["a", None, 1, True]],
        [["f", "application/octet-stream", 1000, False],
         ["f", "application/octet-stream", 1000, False],
         ["f", "application/octet-stream", 500, True], ["g", None, 7, True]],
        [],
    ]


def test_a_delimiter_is_at_the_start_of_a_line(port: int) -> None:
    # RFC 2046 §5.1.1: `PREAMBLE--XyZ` is preamble, not a delimiter (the original
    # takes it for one): a proxy that reads multipart bodies as the RFC does sees
    # the same parts as the application
    body = (b"PREAMBLE--XyZ\r\nContent-Disposition: form-data; name=\"hidden\"\r\n\r\n"
            b"1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"seen\"\r\n\r\n2\r\n"
            b"--XyZ--\r\n")
    [(_, _, out)] = split_responses(exchange(port, multipart(body)))
    assert [p["name"] for p in json.loads(out)] == ["seen"]


def test_files_stream_in_pieces(port: int) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB
    r = httpx.post(url(port, "/files"), data={"field": "value"},
                   files={"upload": ("big.bin", big, "application/x-test")}, timeout=30)
    parts = r.json()
    assert [p["name"] for p in parts] == ["field", "upload"]
    assert parts[0]["filename"] is None and parts[0]["size"] == 5
    upload = parts[1]
    assert upload["filename"] == "big.bin" and upload["type"] == "application/x-test"
    assert upload["size"] == len(big) and upload["sha"] == hashlib.sha256(big).hexdigest()
    assert upload["pieces"] == 1  # no larger than max_file_size: whole, as the original
    r = httpx.post(url(port, "/files?piece=16384"),
                   files={"upload": ("big.bin", big, "application/x-test")}, timeout=30)
    [upload] = r.json()
    assert upload["size"] == len(big) and upload["sha"] == hashlib.sha256(big).hexdigest()
    assert upload["pieces"] >= len(big) // 16384 and upload["largest"] <= 16384
    assert upload["eof"] is True


def test_files_come_in_pieces_of_max_file_size_as_the_original(port: int) -> None:
    big = os.urandom(200_000)
    r = httpx.post(url(port, "/files-original"), data={"field": "value"},
                   files={"upload": ("big.bin", big, "application/x-test")}, timeout=30)
    out = r.json()
    assert out["pieces"][0] == ["field", "", 5, True]
    pieces = out["pieces"][1:]
    assert [p[:2] for p in pieces] == [["upload", "big.bin"]] * 4
    assert [p[2] for p in pieces] == [65536, 65536, 65536, 200_000 - 3 * 65536]
    assert [p[3] for p in pieces] == [False, False, False, True]
    assert out["sha"]["upload"] == hashlib.sha256(big).hexdigest()


def multipart(body: bytes, boundary: bytes = b"XyZ") -> bytes:
    return (b"POST /files HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
            b"Content-Type: multipart/form-data; boundary=" + boundary +
            b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def test_multipart_edge_cases(port: int) -> None:
    ok = (b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"
          b"--XyZ is not a delimiter here\r\n--XyZ  \r\nContent-Disposition: form-data; "
          b"name=\"b\"\r\n\r\n\r\n--XyZ--\r\nepilogue")
    [(status, _, body)] = split_responses(exchange(port, multipart(ok)))
    assert status == b"HTTP/1.1 200 OK"
    parts = json.loads(body)
    assert [(p["name"], p["size"]) for p in parts] == [("a", 29), ("b", 0)]


@pytest.mark.parametrize("body", [
    b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\ntruncated",
    b"no delimiter at all",
    b"--XyZ\r\nBroken header line\r\n\r\ndata\r\n--XyZ--",
    b"--XyZ\r\n" + b"X: " + b"h" * 9000 + b"\r\n\r\ndata\r\n--XyZ--",
    b"--XyZ garbage\r\n\r\n--XyZ--",
])
def test_malformed_multipart_is_400(port: int, body: bytes) -> None:
    out = exchange(port, multipart(body), timeout=5)
    assert out.startswith(b"HTTP/1.1 400 "), out[:60]


def test_missing_boundary_is_400(port: int) -> None:
    raw = (b"POST /files HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data\r\n"
           b"Content-Length: 4\r\n\r\nabcd")
    assert exchange(port, raw).startswith(b"HTTP/1.1 400 ")


def test_unread_parts_are_skipped(port: int) -> None:
    r = httpx.post(url(port, "/files-skip"), data={"a": "1"},
                   files={"f": ("f", b"z" * 100000), "g": ("g", b"y")}, timeout=10)
    assert r.json() == ["a", "f", "g"]


def test_sse(port: int) -> None:
    with httpx.stream("GET", url(port, "/sse"), timeout=5) as r:
        assert r.headers["content-type"] == "text/event-stream"
        assert r.headers["cache-control"] == "no-cache, must-revalidate"
        text = b"".join(r.iter_bytes()).decode()
    assert text == ("data: hello\n\n"
                    "data: line one\ndata: line two\ndata: line three\n"
                    "event: update\nid: 7\nretry: 3000\n\n")


def test_sse_refuses_newlines_in_fields(port: int) -> None:
    r = httpx.get(url(port, "/sse-bad"), timeout=5)
    assert r.status_code == 500


@app.route("/sse-as-the-original")
async def sse_original(sse: Any = None, content_type: str = "text/x-route",
                       **server: Any) -> None:
    # sse.request; the route's content_type and a field the handler sets win over
    # the SSE's own (set before the handler runs); empty event and id are left out
    server["response"].set_header("Cache-Control", "no-store")
    await sse.send(sse.request.path, event="", event_id="")
    await sse.send("a\rb")  # a lone CR ends a line for the client too
    await sse.close()


def test_sse_as_the_original(port: int) -> None:
    r = httpx.get(url(port, "/sse-as-the-original"), timeout=5)
    assert r.headers["content-type"] == "text/x-route"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert r.content == b"data: /sse-as-the-original\n\ndata: a\ndata: b\n\n"


@app.route("/pieces")
async def pieces(request: Any) -> str:
    return json.dumps([len(p) async for p in request.stream()])


def test_stream_pieces_are_what_a_read_gave_up_to_a_bound(
        monkeypatch: pytest.MonkeyPatch) -> None:
    body = b"p" * 100_000
    raw = (b"POST /pieces HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body) + body)
    with serve_in_thread(app, buffer_size=4096, shutdown_timeout=2) as (_, port):
        [(_, _, out)] = split_responses(exchange(port, raw))
        sizes = json.loads(out)
        # not cut into buffer_size slices: a read of the socket gives more at once
        assert sum(sizes) == 100_000 and max(sizes) > 4096
        monkeypatch.setattr(request_module, "MAX_PIECE", 1000)
        [(_, _, out)] = split_responses(exchange(port, raw))
        sizes = json.loads(out)
        assert sum(sizes) == 100_000 and max(sizes) <= 1000
