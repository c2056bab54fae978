"""response.sendfile: validators, conditional requests, ranges, zero-copy and paced."""

from __future__ import annotations

import datetime
import email.utils
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tremolo import Tremolo
from tremolo.exceptions import BadRequest
from tremolo.framework.files import parse_ranges
from tremolo.testing import serve_in_thread

from ..helpers import exchange, split_responses

DATA = bytes(range(256)) * 40  # 10240 bytes
app = Tremolo()
FILE: dict[str, Path] = {}


@app.route("/file")
async def file(response: Any) -> None:
    await response.sendfile(FILE["path"])


@app.route("/part")
async def part(response: Any) -> None:
    await response.sendfile(FILE["path"], offset=100, count=1000, content_type="text/plain")


@app.route("/missing")
async def missing(response: Any) -> None:
    await response.sendfile(FILE["path"].with_name("nope"))


@app.route("/big")
async def big(response: Any) -> None:
    await response.sendfile(FILE["big"])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The files the routes send (a test that runs alone, on a worker of its own,
    needs them too)."""
    d = tmp_path_factory.mktemp("files")
    FILE["path"] = d / "data.bin"
    FILE["path"].write_bytes(DATA)
    FILE["big"] = d / "big.bin"
    FILE["big"].write_bytes(os.urandom(1 << 20) * 8)  # 8 MiB


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def port(request: pytest.FixtureRequest, files: None) -> Iterator[int]:
    with serve_in_thread(app, loop=request.param, download_rate=1 << 40,
                         shutdown_timeout=2) as (_, p):
        yield p


def get(port: int, path: str = "/file", method: str = "GET", **headers: str) -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{port}{path}", headers=headers, timeout=10)


def test_whole_file_with_validators(port: int) -> None:
    r = get(port)
    assert r.status_code == 200 and r.content == DATA
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-type"] == "application/octet-stream"
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+-0"', r.headers["etag"])
    mtime = email.utils.parsedate_to_datetime(r.headers["last-modified"]).timestamp()
    assert abs(mtime - FILE["path"].stat().st_mtime) < 1


def test_head_sends_headers_only(port: int) -> None:
    out = exchange(port, b"HEAD /file HTTP/1.1\r\nHost: t\r\n\r\nGET /part HTTP/1.1\r\nHost: t"
                         b"\r\nConnection: close\r\n\r\n")
    head, _, rest = out.partition(b"\r\n\r\n")
    assert b"Content-Length: 10240" in head
    assert rest.startswith(b"HTTP/1.1 200 OK")  # nothing between: the connection was kept


def test_offset_and_count(port: int) -> None:
    r = get(port, "/part")
    assert r.content == DATA[100:1100] and r.headers["content-type"] == "text/plain"
    r = get(port, "/part", range="bytes=0-9")
    assert r.status_code == 206 and r.content == DATA[100:110]
    assert r.headers["content-range"] == "bytes 0-9/1000"


@pytest.mark.parametrize(("spec", "start", "end"), [
    ("bytes=0-99", 0, 99), ("bytes=100-", 100, 10239), ("bytes=-100", 10140, 10239),
    ("bytes=10000-99999", 10000, 10239), ("bytes=-99999", 0, 10239), ("bytes = 5-5", 5, 5),
])
def test_single_range(port: int, spec: str, start: int, end: int) -> None:
    r = get(port, range=spec)
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes {start}-{end}/10240"
    assert r.content == DATA[start:end + 1]
    assert r.headers["content-length"] == str(end - start + 1)


def test_several_ranges_in_request_order(port: int) -> None:
    r = get(port, range="bytes=500-599, 0-9, -5")
    assert r.status_code == 206
    ctype = r.headers["content-type"]
    assert ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("=", 1)[1].encode()
    parts = r.content.split(b"--" + boundary)
    assert parts[0] == b"" and parts[-1] == b"--\r\n"
    got = []
    for raw in parts[1:-1]:
        head, _, body = raw.partition(b"\r\n\r\n")
        m = re.search(rb"Content-Range: bytes (\d+)-(\d+)/10240", head)
        assert m and b"Content-Type: application/octet-stream" in head
        start, end = int(m.group(1)), int(m.group(2))
        assert body == DATA[start:end + 1] + b"\r\n"
        got.append((start, end))
    assert got == [(500, 599), (0, 9), (10235, 10239)]
    assert int(r.headers["content-length"]) == len(r.content)


def test_unsatisfiable_range(port: int) -> None:
    # as the original: the exception's answer (an error handler sees it), and the
    # current length (RFC 9110 §15.5.17)
    r = get(port, range="bytes=20000-")
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */10240"
    assert r.content == b"Range Not Satisfiable"
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    # a suffix of zero bytes is not satisfiable either (RFC 9110 §14.1.1)
    assert get(port, range="bytes=-0").status_code == 416
    # one satisfiable range is enough (RFC 9110 §14.2; the original answers 416)
    r = get(port, range="bytes=0-1, 20000-")
    assert r.status_code == 206 and r.content == DATA[:2]


@pytest.mark.parametrize("spec", ["items=0-5", "bytes=" + ",".join(["0-1"] * 17)])
def test_unknown_units_and_excessive_ranges_are_ignored(port: int, spec: str) -> None:
    # an unknown unit MUST be ignored (RFC 9110 §14.2; the original answers 400)
    r = get(port, range=spec)
    assert r.status_code == 200 and r.content == DATA


@pytest.mark.parametrize("spec", ["bytes=abc", "bytes=", "bytes=-", "bytes=1-2, 5",
                                  "bytes=+1-2", "bytes 0-1"])
def test_malformed_ranges_are_400(port: int, spec: str) -> None:
    # as the original (RFC 9110 §14.2 lets a server reject an invalid set)
    r = get(port, range=spec)
    assert (r.status_code, r.content) == (400, b"bad range")


@pytest.mark.parametrize("spec", ["bytes=5-1", "bytes=2-0", "bytes=0-1, 5-1"])
def test_backwards_ranges_are_416(port: int, spec: str) -> None:
    # invalid (RFC 9110 §14.1.1), rejected with 416 as the original does (for `2-0`
    # it sends byte 2)
    r = get(port, range=spec)
    assert r.status_code == 416 and r.content == b"Range Not Satisfiable"


def test_several_range_fields(port: int) -> None:
    # Range is one field; several are read as the original does: one set of byte
    # ranges, or a 400 when one is not of bytes (not the first field alone)
    out = exchange(port, b"GET /file HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\n"
                         b"Range: bits=2-1\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ") and out.endswith(b"bad range")
    out = exchange(port, b"GET /file HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\n"
                         b"Range: bytes=100-101\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 206 ") and b"multipart/byteranges" in out
    assert b"Content-Range: bytes 100-101/10240" in out


def test_http10_has_no_ranges(port: int) -> None:
    # as the original: no Accept-Ranges and the whole file (RFC 9110 §14.2: a server
    # may ignore Range)
    out = exchange(port, b"GET /file HTTP/1.0\r\nRange: bytes=0-9\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == DATA
    assert b"accept-ranges" not in head.lower()


def test_if_range(port: int) -> None:
    etag = get(port).headers["etag"]
    last_modified = get(port).headers["last-modified"]
    r = get(port, range="bytes=0-9", **{"if-range": etag})
    assert r.status_code == 206
    r = get(port, range="bytes=0-9", **{"if-range": '"stale"'})
    assert r.status_code == 200 and r.content == DATA
    r = get(port, range="bytes=0-9", **{"if-range": last_modified})
    assert r.status_code == 206
    r = get(port, range="bytes=0-9", **{"if-range": "Sun, 06 Nov 1994 08:49:37 GMT"})
    assert r.status_code == 200
    # a date after the Last-Modified is not an exact match: the whole file
    later = email.utils.format_datetime(
        email.utils.parsedate_to_datetime(last_modified) + datetime.timedelta(days=1),
        usegmt=True)
    r = get(port, range="bytes=0-9", **{"if-range": later})
    assert r.status_code == 200 and r.content == DATA


def test_overlapping_ranges_are_coalesced(port: int) -> None:
    r = get(port, range="bytes=" + ",".join(["0-"] * 16))
    assert r.status_code == 206 and r.content == DATA  # once, not 16 times
    r = get(port, range="bytes=5-9,0-6")
    assert r.status_code == 206 and r.content == DATA[0:10]
    assert r.headers["content-range"] == f"bytes 0-9/{len(DATA)}"


def test_absurd_range_numbers(port: int) -> None:
    # numbers past any file, read without converting thousands of digits: past the
    # end (416), clamped to the end, or a suffix that is the whole file (RFC 9110 §14.1)
    assert get(port, range="bytes=" + "9" * 5000 + "-").status_code == 416
    r = get(port, range="bytes=5-" + "9" * 5000)
    assert r.status_code == 206 and r.content == DATA[5:]
    r = get(port, range="bytes=-" + "9" * 5000)
    assert r.status_code == 206 and r.content == DATA


def test_conditional_requests(port: int) -> None:
    first = get(port)
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    for headers in ({"if-none-match": etag}, {"if-none-match": f'"x", W/{etag}'},
                    {"if-none-match": "*"}, {"if-modified-since": last_modified}):
        r = get(port, **headers)
        assert r.status_code == 304 and r.content == b"", headers
        assert r.headers["etag"] == etag
        # no representation metadata (RFC 9110 §15.4.5), as the original
        assert "content-type" not in r.headers and "accept-ranges" not in r.headers
        assert "content-length" not in r.headers
    assert get(port, **{"if-none-match": '"other"'}).status_code == 200
    assert get(port, **{"if-modified-since": "Sun, 06 Nov 1994 08:49:37 GMT"}).status_code == 200
    # If-None-Match wins over If-Modified-Since
    r = get(port, **{"if-none-match": '"other"', "if-modified-since": last_modified})
    assert r.status_code == 200


def test_missing_file_is_404(port: int) -> None:
    assert get(port, "/missing").status_code == 404


def test_big_file_zero_copy(port: int) -> None:
    r = get(port, "/big")
    assert r.status_code == 200 and r.content == FILE["big"].read_bytes()
    out = split_responses(exchange(port, b"GET /big HTTP/1.1\r\nHost: t\r\n\r\nGET /file "
                                         b"HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                                   timeout=20))
    assert [len(b) for _, _, b in out] == [8 << 20, 10240]


@pytest.mark.slow
def test_paced_by_the_download_rate(files: None) -> None:
    with serve_in_thread(app, download_rate=4 << 20, shutdown_timeout=2) as (_, p):
        start = time.monotonic()
        r = httpx.get(f"http://127.0.0.1:{p}/big", timeout=20)
        elapsed = time.monotonic() - start
    assert r.content == FILE["big"].read_bytes()
    rate = len(r.content) / elapsed
    assert 0.8 * (4 << 20) <= rate <= 1.2 * (4 << 20), rate


def test_parse_ranges() -> None:
    assert parse_ranges(b"bytes=0-0", 0) == []
    assert parse_ranges(b"bytes=-0", 10) == []
    assert parse_ranges(b"bytes=0-", 10) == [(0, 9)]
    assert parse_ranges(b"bytes=1-2,3-4", 10) == [(1, 2), (3, 4)]
    assert parse_ranges(b"bytes=1-2,,3-4", 10) == [(1, 2), (3, 4)]
    assert parse_ranges(b"Bytes = 1-2 , 4-5", 10) == [(1, 2), (4, 5)]
    assert parse_ranges(b"bytes=5-6,0-1", 10) == [(5, 6), (0, 1)]  # request order kept
    assert parse_ranges(b"bytes=0-4,3-6", 10) == [(0, 6)]
    assert parse_ranges(b"bytes=200-210,0-4,3-6", 1000) == [(0, 6), (200, 210)]
    assert parse_ranges(b"bytes=5-20", 10) == [(5, 9)]
    assert parse_ranges(b"bytes=-20", 10) == [(0, 9)]
    assert parse_ranges(b"bytes=5-4", 10) == []
    assert parse_ranges(b"pages=1-2", 10) is None
    for bad in (b"bytes=1-2,x", b"bytes", b"bytes=-", b"bytes=1-2-3", b"bytes=0x1-2",
                b"bytes=1 - 2", "bytes=1-\u0665".encode()):
        with pytest.raises(BadRequest):
            parse_ranges(bad, 10)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    fifo_app = Tremolo()

    @fifo_app.route("/pipe")
    async def pipe(response: Any, **server: Any) -> None:
        await response.sendfile(str(fifo))

    with serve_in_thread(fifo_app, shutdown_timeout=2) as (_, p):
        t0 = time.monotonic()
        r = httpx.get(f"http://127.0.0.1:{p}/pipe", timeout=5)
        assert r.status_code == 404 and time.monotonic() - t0 < 1


def test_default_content_type_is_the_originals(port: int) -> None:
    assert get(port).headers["content-type"] == "application/octet-stream"
