"""Hypothesis strategies: well-formed HTTP/1.1 requests and their bytes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hypothesis import strategies as st

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
PCHAR = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@%")
# Visible ASCII and obs-text; values never start or end with whitespace.
VALUE_CHARS = "".join(chr(c) for c in range(0x21, 0x7F)) + "".join(
    chr(c) for c in range(0x80, 0x100))
RESERVED_NAMES = {"host", "content-length", "transfer-encoding", "connection", "expect",
                  "upgrade", "te", "trailer", "keep-alive"}


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    chunks: list[int] | None = None  # chunk sizes when sent chunked
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/{self.version}"]
        lines += [f"{n}: {v}" for n, v in self.headers]
        if self.chunks is not None:
            lines.append("Transfer-Encoding: chunked")
        elif self.body:
            lines.append(f"Content-Length: {len(self.body)}")
        out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self.chunks is None:
            return out + self.body
        pos = 0
        for size in self.chunks:
            out += b"%x\r\n" % size + self.body[pos:pos + size] + b"\r\n"
            pos += size
        out += b"0\r\n" + "".join(f"{n}: {v}\r\n" for n, v in self.trailers).encode("latin-1")
        return out + b"\r\n"

    def expected_headers(self) -> list[tuple[bytes, bytes]]:
        fields = [(n.lower(), v) for n, v in self.headers]
        if self.chunks is not None:
            fields.append(("transfer-encoding", "chunked"))
        elif self.body:
            fields.append(("content-length", str(len(self.body))))
        return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in fields]


tokens = st.text(TCHAR, min_size=1, max_size=10)
names = tokens.filter(lambda n: n.lower() not in RESERVED_NAMES)
values = st.one_of(
    st.just(""),
    st.builds(lambda a, b, c: a + b + c,
              st.text(VALUE_CHARS, min_size=1, max_size=3),
              st.text(VALUE_CHARS + " \t", max_size=30),
              st.text(VALUE_CHARS, min_size=1, max_size=3)),
)
methods = st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
                    tokens.filter(lambda m: m != "CONNECT"))
paths = st.builds(lambda segs, q: "/" + "/".join(segs) + (f"?{q}" if q else ""),
                  st.lists(st.text(PCHAR, max_size=8), max_size=4),
                  st.one_of(st.none(), st.text(PCHAR + "/?", max_size=12)))


@st.composite
def requests(draw: st.DrawFn, version: str | None = None, keep_alive: bool = True,
             with_body: bool = True) -> Request:
    version = version or draw(st.sampled_from(["1.0", "1.1"]))
    headers = draw(st.lists(st.tuples(names, values), max_size=6))
    if version == "1.1":
        headers.insert(draw(st.integers(0, len(headers))), ("Host", "example.com"))
    elif keep_alive:
        headers.append(("Connection", "keep-alive"))
    body = draw(st.binary(max_size=300)) if with_body else b""
    chunks = None
    trailers: list[tuple[str, str]] = []
    if version == "1.1" and with_body and draw(st.booleans()):
        cuts = sorted(draw(st.lists(st.integers(1, max(1, len(body))), max_size=4,
                                    unique=True)))
        edges = [0, *[c for c in cuts if c < len(body)], len(body)]
        chunks = [b - a for a, b in itertools.pairwise(edges) if b > a]
        trailers = draw(st.lists(st.tuples(names, values), max_size=2))
    return Request(draw(methods), draw(paths), version, headers, body, chunks, trailers)
