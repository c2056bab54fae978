"""Turns Node's llhttp request fixtures (MIT data, ../shared/conformance/llhttp) into
tremolo vectors: tests/vectors/h1/llhttp.json.

Each fixture's input is decoded the way llhttp's own harness does, and its strict
verdict (an `error` line in the log, other than a pause for an upgrade) becomes a
`y_` (must parse) or `n_` (must be rejected) vector. The requests llhttp reports
(method, url, body, how many) become the expected requests. Where tremolo
deliberately differs from llhttp the rule below says so and why; docs/http.md lists
the same rules. Run: python3 tests/vectors/import_llhttp.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT.parent / "shared" / "conformance" / "llhttp" / "request"
OUT = ROOT / "tests" / "vectors" / "h1" / "llhttp.json"
FILES = [
    "sample", "method", "uri", "connection", "content-length",
    "transfer-encoding", "invalid", "pipelining", "pausing",
]
# llhttp "errors" that are pauses for an upgrade, not refusals.
PAUSES = {22, 23}

# Fixtures whose strict verdict tremolo does not share: (file, title) -> (verdict,
# status or None, reason). Keep docs/http.md in step.
NOT_HTTP = "not HTTP/1.x: refused as a malformed request line"
AFTER_CLOSE = ("bytes after the last request of a connection are dropped unread, "
               "not answered: the response closes the connection")
DIVERGENCES: dict[tuple[str, str], tuple[str, int | None, str]] = {
    ("sample", "No HTTP version"): ("n", 400, "HTTP/0.9 is not served"),
    ("method", "CONNECT with body"): (
        "n", 400, "CONNECT has no content (RFC 9110 §9.3.6): framing fields on it are refused"),
    ("method", "M-SEARCH request"): (
        "n", 400, "asterisk-form is only for OPTIONS (RFC 9112 §3.2.4); SSDP is not HTTP"),
    ("method", "PRI request HTTP2"): (
        "n", 400, "asterisk-form is only for OPTIONS; HTTP/2 prior knowledge is not served"),
    ("method", "SOURCE request with ICE"): ("n", 400, NOT_HTTP),
    ("method", "OPTIONS request with RTSP"): ("n", 400, NOT_HTTP),
    ("method", "ANNOUNCE request with RTSP"): ("n", 400, NOT_HTTP),
    ("uri", "Fragment in URI"): (
        "n", 400, "a fragment is not part of a request-target (RFC 9112 §3.2)"),
    ("connection", "No restart when keep-alive is off (1.0)"): ("y", None, AFTER_CLOSE),
    ("connection", "CRLF between requests, explicit `close`"): ("y", None, AFTER_CLOSE),
    ("connection", "CRLF between requests, explicit `close` followed by tab"): (
        "y", None, AFTER_CLOSE),
    ("invalid", "Invalid HTTP version"): (
        "y", None, "the input ends inside the request line, which is judged when it ends"),
    ("invalid", "HTTP protocol and ANNOUNCE method"): (
        "y", None, "any token is a method (RFC 9110 §9.1); the application answers 405 or 501"),
    ("transfer-encoding", "POST with `chunked` as last transfer-encoding"): (
        "n", 400, "the target has a fragment (400); and deflate is not implemented (501)"),
    ("transfer-encoding", "POST with `chunked` as last transfer-encoding (multiple headers)"): (
        "n", 400, "the target has a fragment (400); and deflate is not implemented (501)"),
}


def request_line(data: bytes) -> bytes:
    return data.lstrip(b"\r\n").split(b"\r\n", 1)[0]


def head_has_host(data: bytes) -> bool:
    head = data.lstrip(b"\r\n").split(b"\r\n\r\n", 1)[0]
    return any(line.lower().startswith(b"host:") for line in head.split(b"\r\n")[1:])


def decode_input(text: str) -> bytes:
    text = re.sub(r"\n\Z", "", text)
    text = re.sub(r"\\(\r\n|\r|\n)", "", text)
    text = re.sub(r"\r\n|\r|\n", "\r\n", text)
    text = text.replace("\\r", "\r").replace("\\n", "\n")
    text = text.replace("\\t", "\t").replace("\\f", "\f")
    text = re.sub(r"\\x([0-9a-fA-F]+)", lambda m: chr(int(m.group(1), 16)), text)
    text = re.sub(r"\\([0-7]{1,3})", lambda m: chr(int(m.group(1), 8)), text)
    # the harness hands the string to the parser as UTF-8
    return text.encode("utf-8")


def parse_fixtures(path: Path):
    """Yields (title, line, meta, input, log) for each http+log pair."""
    lines = path.read_text(encoding="utf-8").split("\n")
    title, meta, block, kind, start = "", None, [], None, 0
    http = None
    for no, line in enumerate(lines, 1):
        if kind is not None:
            if line.startswith("```"):
                body = "\n".join(block) + "\n"
                if kind == "http":
                    http, start = body, no
                elif kind == "log" and http is not None and meta is not None:
                    yield title, start, meta, http, body
                    http = meta = None
                kind, block = None, []
            else:
                block.append(line)
            continue
        if line.startswith("#"):
            title = line.lstrip("#").strip()
        elif line.startswith("<!-- meta="):
            meta = json.loads(line[len("<!-- meta="):-len("-->")].strip())
        elif line.startswith("```http"):
            kind = "http"
        elif line.startswith("```log"):
            kind = "log"


SPAN = re.compile(r'^off=\d+ len=\d+ span\[(\w+)\]="(.*)"$')


def unescape_log(s: str) -> str:
    return s.replace("\\t", "\t").replace("\\f", "\f")


def requests_from_log(log: str):
    """The complete requests llhttp reported, and its error code (or None)."""
    done, current, last_span, error = [], None, None, None
    for line in log.splitlines():
        m = SPAN.match(line)
        if m:
            kind, value = m.group(1), unescape_log(m.group(2))
            if current is None:
                continue
            if kind in ("method", "url", "body"):
                current[kind] += value
            elif kind == "header_field":
                if last_span != "header_field":
                    current["headers"].append(["", ""])
                current["headers"][-1][0] += value
            elif kind == "header_value":
                current["headers"][-1][1] += value
            last_span = kind
        elif line.endswith("message begin"):
            current = {"method": "", "url": "", "body": "", "headers": []}
            last_span = None
        elif line.endswith("message complete") and current is not None:
            done.append(current)
            current = None
        elif " error code=" in line:
            error = int(line.split("error code=")[1].split()[0])
    return done, error


def has_host(req: dict) -> bool:
    return any(name.lower() == "host" for name, _ in req["headers"])


ORIGIN_FORM = "absolute-form is served as its origin-form (RFC 9112 §3.2.2)"


def origin_form(method: str, url: str) -> str:
    """What tremolo's parser gives as the target: an absolute-form URL's path and
    query (`/` for an empty path); any other target as it is."""
    if method == "CONNECT" or url.startswith("/") or "://" not in url:
        return url
    rest = url[url.index("://") + 3:]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    tail = rest[cut:]
    return tail if tail.startswith("/") else "/" + tail


def vector(name: str, data: bytes, requests: list | None, source: str, **extra) -> dict:
    v = {"name": name, "input": data.decode("latin-1"), "source": source}
    if requests is not None:
        v["requests"] = [
            {"method": r["method"], "target": origin_form(r["method"], r["url"]),
             "body": r["body"]} for r in requests
        ]
        if any(t["target"] != r["url"] for t, r in zip(v["requests"], requests, strict=True)):
            extra.setdefault("divergence", ORIGIN_FORM)
    v.update(extra)
    return v


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:60]


def main() -> int:
    out, seen = [], set()
    for file in FILES:
        for title, line, meta, http, log in parse_fixtures(SOURCE / f"{file}.md"):
            if meta.get("type") != "request" or meta.get("skipBody"):
                continue  # lenient modes, end-of-stream and callback tests are not ours
            data = decode_input(http)
            requests, error = requests_from_log(log)
            upgrade = error in PAUSES
            refused = error is not None and not upgrade
            source = f"llhttp request/{file}.md:{line}"
            base = f"{slug(file)}__{slug(title)}"
            while base in seen:
                base += "_"
            seen.add(base)
            rule = DIVERGENCES.get((file, title))
            if rule:
                verdict, status, why = rule
                extra = {"divergence": why}
                if status is not None:
                    extra["status"] = status
                # llhttp's log says nothing reliable of what a refused input holds
                expected = requests if verdict == "y" and not refused else None
                out.append(vector(f"{verdict}_{base}", data, expected, source,
                                  upgrade=upgrade and verdict == "y", **extra))
                continue
            if refused:
                out.append(vector(f"n_{base}", data, [], source))
                continue
            # RFC 9112 §3.2: an HTTP/1.1 request without Host must be refused. Keep the
            # fixture as such a refusal, and test its real subject with Host added.
            if request_line(data).endswith(b"HTTP/1.1") and not head_has_host(data):
                out.append(vector(f"n_{base}__no_host", data, [], source, status=400,
                                  divergence="HTTP/1.1 without Host is refused (RFC 9112 §3.2)"))
                if any(has_host(r) for r in requests):
                    continue
                data = re.sub(rb"(HTTP/1\.1\r\n)", rb"\1Host: llhttp.test\r\n", data)
                base += "__host_added"
            out.append(vector(f"y_{base}", data, requests, source, upgrade=upgrade))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=True) + "\n")
    print(f"{len(out)} vectors written to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
