"""Instructions per request: the figure the machine's noise cannot move.

Runs bench/micro.py (one keep-alive request after another through HTTPProtocol and
the native, ASGI or bare-protocol app, with a fake transport) under valgrind's
callgrind for N and 2N requests, PYTHONHASHSEED=0, and reports (I(2N) - I(N)) / N:
what one more request costs, start-up and warm-up cancelled out. With --record it
adds a row (the commit, the figures) to bench/results-instructions.md, so the hot
path's cost is tracked commit by commit.

    python3 bench/instructions.py [--apps native,asgi,protocol,ws-native,ws-asgi,wsgi]
                                  [--requests 20000] [--record]

ws-native and ws-asgi count a WebSocket echo message (in and out) instead of a request;
asgi-proxied is the ASGI hello with the fields the documented nginx setup adds
(X-Forwarded-For, -Proto, -Host) from a trusted peer.

valgrind comes from Debian (`apt-get install valgrind`). A run takes about a minute
per app.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results-instructions.md"
#: the columns of the results table, in order
APPS = ("native", "asgi", "protocol", "ws-native", "ws-asgi", "asgi-proxied", "wsgi")
HEADER = """# Instructions per request

`python3 bench/instructions.py --record`: callgrind over bench/micro.py (a keep-alive
GET /hello through HTTPProtocol with a fake transport; ws-*: a 32-byte WebSocket echo,
per message; wsgi: the WSGI hello on its thread pool, 64 connections' requests per
batch, every thread's instructions counted), PYTHONHASHSEED=0, the difference of 2N
and N requests divided by N. Deterministic within a few hundred instructions;
compare rows, not machines.

| date | commit | native | asgi | protocol | ws-native | ws-asgi | asgi proxied | wsgi | python |
|---|---|---:|---:|---:|---:|---:|---:|---:|---|
"""


def collected(app: str, requests: int, out_dir: str) -> int:
    """Instructions callgrind counted for one run of micro.py."""
    out = os.path.join(out_dir, f"{app}.{requests}.out")
    kind = app.removesuffix("-proxied")
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         sys.executable, str(ROOT / "bench" / "micro.py"), "--app", kind,
         "--requests", str(requests), *(["--proxied"] if app != kind else [])],
        env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True,
        timeout=1800, check=False)
    m = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or m is None:
        sys.exit(f"callgrind failed for {app} ({requests} requests):\n{proc.stderr[-2000:]}")
    return int(m[1])


def per_request(app: str, requests: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        return (collected(app, 2 * requests, tmp) - collected(app, requests, tmp)) // requests


def commit() -> str:
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                            "python", "rust"], capture_output=True, text=True,
                           check=False).stdout.strip()
    return f"{head or '?'}{'+' if dirty else ''}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--apps", default=",".join(APPS),
                    help=f"a comma-separated list of {', '.join(APPS)}")
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--record", action="store_true",
                    help=f"add a row to {RESULTS.relative_to(ROOT)}")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    figures = {}
    for app in args.apps.split(","):
        figures[app] = per_request(app, args.requests)
        print(f"{app}: {figures[app]:,} instructions per request", flush=True)
    if args.record:
        text = RESULTS.read_text() if RESULTS.exists() else HEADER
        cells = [f"{figures[a]:,}" if a in figures else "" for a in APPS]
        version = ".".join(map(str, sys.version_info[:3]))
        RESULTS.write_text(text + f"| {date.today()} | {commit()} | {' | '.join(cells)} | "
                                  f"{version} |\n")
        print(f"recorded in {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
