"""response.sendfile: conditional requests, byte ranges, and zero-copy transfer.

Validators are Last-Modified and a strong ETag made of the size and modification
time. If-None-Match (or, without it, If-Modified-Since) gives 304; on HTTP/1.1, Range
gives 206 with one range, multipart/byteranges with several (in request order), 416
(raised, so error handlers see it, as in the original) when none can be served or one
is backwards, 400 when the set is malformed; If-Range keeps the ranges only while the
validator still matches.
"""

from __future__ import annotations

import calendar
import datetime
import itertools
import os
import re
import stat
import time
from typing import TYPE_CHECKING, Any, BinaryIO

from .. import _core
from ..exceptions import BadRequest, NotFound, RangeNotSatisfiable
from ..protocols.sendfile import copy_file

if TYPE_CHECKING:
    from .response import Response

#: more ranges than this in one request are ignored (the whole file is sent)
MAX_RANGES = 16
#: overlapping ranges are merged with neighbours closer than this (a part's overhead)
RANGE_GAP = 80


def _number(digits: bytes) -> int:
    # more digits than any file's size has: as large as that (int() of thousands of
    # digits costs time, and its result means nothing more)
    return int(digits) if len(digits) <= 18 else 1 << 62


def parse_ranges(header: bytes, size: int) -> list[tuple[int, int]] | None:
    """The ranges of a Range field as (start, end inclusive), in request order, as
    RFC 9110 §14.1.2 reads them: a last position past the end is the end, a suffix
    longer than the file is the whole file. None when the field is to be ignored: a
    unit other than bytes (§14.2: MUST ignore) or more than MAX_RANGES ranges. []
    when none is satisfiable or one is invalid (last before first): a 416, as the
    original answers. A malformed set is a 400 `bad range`, as the original's."""
    unit, sep, spec = header.partition(b"=")
    if not sep:
        raise BadRequest("bad range")
    if unit.strip().lower() != b"bytes":
        return None
    # empty list elements are ignored (RFC 9110 §5.6.1.2)
    items = [i.strip() for i in spec.split(b",") if i.strip()]
    if not items:
        raise BadRequest("bad range")
    if len(items) > MAX_RANGES:
        return None
    out = []
    for item in items:
        # ASCII digits only, and no whitespace inside a range (only around one)
        first, dash, last = item.partition(b"-")
        if not dash or (first and not first.isdigit()) or (last and not last.isdigit()) \
                or not (first or last):
            raise BadRequest("bad range")
        if not first:  # suffix: the last N bytes; none at all is not satisfiable
            n = _number(last)
            if n and size:
                out.append((max(0, size - n), size - 1))
            continue
        start = _number(first)
        end = _number(last) if last else size - 1
        if last and end < start:
            return []  # invalid (§14.1.1): rejected with 416, as the original does
        if start < size:
            out.append((start, min(end, size - 1)))
    return coalesce(out)


def _one_range(fields: list[bytes]) -> bytes:
    """The Range field. Range is a single field; several of them are read as the
    original reads them: one set of ranges when each is of bytes, else a 400."""
    if len(fields) == 1:
        return fields[0]
    specs = []
    for value in fields:
        unit, sep, spec = value.partition(b"=")
        if not sep or unit.strip().lower() != b"bytes":
            raise BadRequest("bad range")
        specs.append(spec)
    return b"bytes=" + b",".join(specs)


def coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ranges as they are when none overlaps; otherwise merged, in order, with those
    close enough that one part costs less than two (RFC 9110 §14.2 lets a server do
    so): asking for the same bytes many times must not send them many times."""
    ordered = sorted(ranges)
    if all(a[1] < b[0] for a, b in itertools.pairwise(ordered)):
        return ranges
    merged = [ordered[0]]
    for start, end in ordered[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end + 1 + RANGE_GAP:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


def _etag_matches(header: bytes, etag: bytes, weak: bool) -> bool:
    if header.strip() == b"*":
        return True
    for tag in header.split(b","):
        tag = tag.strip()
        if weak:
            tag = tag.removeprefix(b"W/")
        if tag == etag:
            return True
    return False


_DAY = rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTH = rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = rb"([0-9]{2}):([0-9]{2}):([0-9]{2})"
#: the three forms of an HTTP-date (RFC 9110 §5.6.7), as (day, month, year, h, m, s)
_DATES = (
    re.compile(_DAY + rb", ([0-9]{2}) " + _MONTH + rb" ([0-9]{4}) " + _TIME + rb" GMT"),
    re.compile(rb"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
               rb"([0-9]{2})-" + _MONTH + rb"-([0-9]{2}) " + _TIME + rb" GMT"),
    re.compile(_DAY + rb" " + _MONTH + rb" ([0-9]{2}| [0-9]) " + _TIME + rb" ([0-9]{4})"),
)
_MONTHS = {m: i for i, m in enumerate(_MONTH[1:-1].split(b"|"), 1)}


def _date(value: bytes) -> float | None:
    """An HTTP-date as a timestamp; None for anything else. Written out rather than
    email.utils' mail dates, which take `+6`, `0_6` or `2_100` as numbers, other
    zones, and more: a date that is not an HTTP-date is ignored."""
    value = value.strip(b" \t")
    for form, pattern in enumerate(_DATES):
        m = pattern.fullmatch(value)
        if m is None:
            continue
        if form == 2:  # asctime: month, day, time, year
            month, day, hour, minute, second, year = m.groups()
        else:
            day, month, year, hour, minute, second = m.groups()
        y = int(year)
        if form == 1:  # two digits: the latest such year not past 50 years ahead
            now = time.gmtime().tm_year
            y += now - now % 100
            if y > now + 50:
                y -= 100
        fields = (y, _MONTHS[month], int(day), int(hour), int(minute), int(second))
        try:
            datetime.datetime(*fields)  # refuses 31 Feb, hour 24 and such
        except ValueError:
            return None
        return float(calendar.timegm(fields))
    return None


async def sendfile(response: Response, path: str | os.PathLike[str], offset: int = 0,
                   count: int = -1, content_type: bytes | str | None = None) -> None:
    request = response.request
    try:
        # O_NONBLOCK: opening a FIFO (or a device) must not block the loop; what is
        # not a regular file is refused before anything is read from it
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError) \
            as exc:
        raise NotFound from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotFound
    f: BinaryIO = os.fdopen(fd, "rb")
    try:
        st = os.fstat(fd)
        total = st.st_size
        offset = min(max(offset, 0), total)
        size = total - offset if count < 0 else min(count, total - offset)
        mtime = int(st.st_mtime)
        etag = b'"%x-%x-%x"' % (st.st_mtime_ns, size, offset)
        last_modified = _core.http_date(mtime)
        if content_type is None:
            content_type = b"application/octet-stream"  # the original's default
        response.set_content_type(content_type)
        response.set_header(b"Last-Modified", last_modified)
        response.set_header(b"ETag", etag)
        headers = request.headers
        inm = b", ".join(headers.get(b"if-none-match", ()))
        ims = headers.get(b"if-modified-since", [b""])[0]
        if inm:
            not_modified = _etag_matches(inm, etag, weak=True)
        else:
            since = _date(ims) if ims else None
            not_modified = since is not None and mtime <= since
        if not_modified and request.method in (b"GET", b"HEAD"):
            response.set_status(304)
            await response.end(b"")
            return
        # ranges are served on HTTP/1.1, as the original does (a server may ignore
        # Range, RFC 9110 §14.2); Accept-Ranges says so only there
        http11 = not request.exchange.http10
        if http11:
            response.set_header(b"Accept-Ranges", b"bytes")
        ranges = None
        range_fields = headers.get(b"range")
        if range_fields and http11 and request.method == b"GET":
            if_range = headers.get(b"if-range", [b""])[0]
            # If-Range matches only exactly: the strong ETag, or the very Last-Modified
            # date (RFC 9110 §13.1.5); anything else sends the whole file
            fresh = not if_range or (
                if_range.strip() == etag if if_range.strip().startswith(b'"')
                else _date(if_range) == mtime)
            if fresh:
                ranges = parse_ranges(_one_range(range_fields), size)
        if ranges == []:
            current: dict[str, Any] = {"Content-Range": f"bytes */{size}"}
            raise RangeNotSatisfiable(**current)
        if not ranges:
            await _send(response, f, offset, size, size)
            return
        response.set_status(206)
        if len(ranges) == 1:
            start, end = ranges[0]
            response.set_header(b"Content-Range", b"bytes %d-%d/%d" % (start, end, size))
            await _send(response, f, offset + start, end - start + 1, end - start + 1)
            return
        await _send_multipart(response, f, offset, size, ranges, content_type)
    finally:
        f.close()


async def _send_multipart(response: Response, f: BinaryIO, offset: int, size: int,
                          ranges: list[tuple[int, int]], content_type: bytes | str) -> None:
    boundary = b"----Boundary" + os.urandom(12).hex().encode()  # as the original's
    ctype = content_type.encode() if isinstance(content_type, str) else content_type
    heads = [b"--%s\r\nContent-Type: %s\r\nContent-Range: bytes %d-%d/%d\r\n\r\n"
             % (boundary, ctype, s, e, size) for s, e in ranges]
    tail = b"--%s--\r\n" % boundary
    length = sum(len(h) + (e - s + 1) + 2 for h, (s, e) in zip(heads, ranges, strict=True))
    response.set_content_type(b"multipart/byteranges; boundary=" + boundary)
    ex = response.exchange
    if await response._prepare():
        return
    ex.start(response.status, response.head_fields(), content_length=length + len(tail),
             reason=response.reason)
    for head, (start, end) in zip(heads, ranges, strict=True):
        await ex.write(head)
        await copy_file(ex, f, offset + start, end - start + 1)
        await ex.write(b"\r\n")
    await ex.write(tail)
    ex.end()


async def _send(response: Response, f: BinaryIO, start: int, count: int, length: int) -> None:
    ex = response.exchange
    if await response._prepare():
        return
    ex.start(response.status, response.head_fields(), content_length=length,
             reason=response.reason)
    if not ex.head_only:
        await copy_file(ex, f, start, count)
    ex.end()
