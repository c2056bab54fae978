"""Instructions per request in the HTTP/1.1 core's two calls: the parse of a request
(`RequestParser.feed_request`, and the free of the RequestHead it gives) and the
encoding of its response (`RequestHead.respond`).

Each case runs a loop of N and of 2N calls under valgrind's callgrind, which counts
only inside the measured call (--toggle-collect), and reports (I(2N) - I(N)) / N: what
one more call costs, first-call set-up cancelled out. The Python loop around the call
is not counted; the Python objects the call makes are. Beside it, the same for the
Rust core alone (rust/examples/h1_cost.rs: Parser::feed and the head's drop, or
HeadWriter from new to finish), without the Python objects and the conversions.

    python3 bench/parse_cost.py [--cases wrk,browser,respond] [--calls 2000] [--detail]

Cases: `wrk`, the 62-byte request wrk sends; `browser`, a browser-like request (14
fields, 593 bytes); `respond`, a 200 with one Content-Type field and a 12-byte body
(what a hello world answers). --detail lists the functions that cost most per call,
by their own instructions. Runs against the tremolo that `import tremolo` finds: set
PYTHONPATH to measure a worktree's build; the core alone is built and run from this
checkout (cargo build --release --example h1_cost). valgrind comes from Debian.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "target" / "release" / "examples" / "h1_cost"

WRK = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\n\r\n"
BROWSER = (
    b"GET /articles/2024/fast-parsers?page=2&sort=new HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Referer: https://www.example.com/articles\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"Sec-Fetch-Site: same-origin\r\n"
    b"Sec-Fetch-User: ?1\r\n"
    b"Priority: u=0, i\r\n"
    b"\r\n"
)
REQUESTS = {"wrk": WRK, "browser": BROWSER}
DATE = b"Sun, 06 Nov 1994 08:49:37 GMT"
FIELDS = ((b"Content-Type", b"text/plain; charset=utf-8"),)
BODY = b"Hello world!"

# what callgrind counts: the call, and for a parse the RequestHead's free (pyo3's
# tp_dealloc; no other pyclass instance is freed in the loop)
COLLECT = {
    "parse": ["*__pymethod_feed_request__", "*tp_dealloc*"],
    "respond": ["*__pymethod_respond__"],
}


def child(case: str, calls: int) -> None:
    """The measured loop (run under callgrind)."""
    from tremolo._core import RequestParser

    parser = RequestParser()
    feed = parser.feed_request
    if case == "respond":
        head = feed(WRK)
        assert head.__class__.__name__ == "RequestHead", head
        respond = head.respond
        for _ in range(calls):
            data, keep = respond(200, FIELDS, BODY, True, DATE, b"tremolo")
        assert keep and data.endswith(b"\r\n\r\n" + BODY), data
        return
    request = REQUESTS[case]
    for _ in range(calls):
        head = feed(request)
        del head
    assert feed(request).__class__.__name__ == "RequestHead"


def callgrind(command: list[str], out: str, stdin: bytes = b"") -> int:
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
        input=stdin, env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True,
        timeout=600, check=False)
    err = proc.stderr.decode(errors="replace")
    m = re.search(r"Collected : (\d+)", err)
    if proc.returncode != 0 or m is None:
        sys.exit(f"callgrind failed for {command}:\n{err[-2000:]}")
    return int(m[1])


def collected(case: str, calls: int, out_dir: str) -> tuple[int, str]:
    out = os.path.join(out_dir, f"{case}.{calls}.out")
    kind = "respond" if case == "respond" else "parse"
    toggles = [f"--toggle-collect={t}" for t in COLLECT[kind]]
    command = [*toggles, sys.executable, __file__, "--child", case, "--calls", str(calls)]
    return callgrind(command, out), out


def core(case: str, calls: int, out_dir: str) -> float:
    """Instructions per call of the core alone."""
    kind = "respond" if case == "respond" else "parse"
    request = REQUESTS.get(case, b"")
    counts = [callgrind([str(CORE), kind, str(n)], os.path.join(out_dir, f"core.{n}.out"),
                        request) for n in (calls, 2 * calls)]
    return (counts[1] - counts[0]) / calls


def detail(small: str, big: str, calls: int, top: int = 16) -> None:
    """The functions that cost most per call, by their own instructions (callees
    not included): the difference of the two runs."""
    def own(path: str) -> dict[str, int]:
        text = subprocess.run(["callgrind_annotate", "--threshold=100", path],
                              capture_output=True, text=True, check=True).stdout
        costs: dict[str, int] = {}
        for line in text.splitlines():
            m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(?:\?\?\?|\S*?\.(?:c|h|S|rs)):(.+?)"
                         r"(?: \[[^\]]*\])?$", line)
            if m:
                costs[m[2]] = costs.get(m[2], 0) + int(m[1].replace(",", ""))
        return costs
    a, b = own(small), own(big)
    rows = sorted(((b[f] - a.get(f, 0)) / calls, f) for f in b)
    for cost, name in reversed(rows[-top:]):
        print(f"    {cost:6,.0f}  {name[:100]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="wrk,browser,respond")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--detail", action="store_true")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.calls)
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "h1_cost"],
                   cwd=ROOT, check=True)
    for case in args.cases.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            small, small_out = collected(case, args.calls, tmp)
            big, big_out = collected(case, 2 * args.calls, tmp)
            alone = core(case, args.calls, tmp)
            per = (big - small) / args.calls
            size = len(REQUESTS[case]) if case in REQUESTS else 0
            extra = f" ({per / size:.1f} per byte of {size})" if size else ""
            print(f"{case}: {per:,.0f} instructions per call{extra}; the core alone "
                  f"{alone:,.0f}", flush=True)
            if args.detail:
                detail(small_out, big_out, args.calls)


if __name__ == "__main__":
    main()
