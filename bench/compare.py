"""Tables of comparisons, each row tremolo against the peer it names, all in one run:

    python3 bench/run.py --scenario issue19 [--duration 5] [--rounds 3]
    python3 bench/run.py --scenario wsgi [--duration 5] [--rounds 3]
    python3 bench/run.py --scenario scaling [--duration 5] [--rounds 3]

`issue19` (native, ASGI and WebSocket) and `wsgi` (issue 20: WSGI apps, Flask and
Django): one worker, the server pinned to CPU 0 and the load client (wrk -t1, or
bench/wsload.py for WebSocket) to CPU 1. `scaling`: two workers, nothing pinned, wrk -t2:
server and client share both cores, so the client takes CPU from the server.

Every case (a server and a path) is measured once per round, rounds interleaved, each
after a 2 s warm-up on a fresh server; a row is the median of its cases' rounds. Beside
each figure: p99 latency, the peak RSS of the server's largest worker (a process without
children: a supervising master is left out) and
the load client's CPU time over the run in cores (near 1.00: the client is the limit),
and the server's CPU time per request (all its processes and threads, from /proc, over
the measured run; a server pinned to one core and kept busy uses about 1/rate).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import BENCH, Peak, Run, free_port, machine, versions, wrk, wsload
from peers import Server, servers, start

UPLOAD = str(BENCH / "upload.lua")
RSS_TARGET = 30 << 20  # issue 19: at most 30 MiB per worker


@dataclass(frozen=True)
class Case:
    """A server under one load: an HTTP path with wrk, or ("ws", size) with wsload."""

    server: str
    path: str
    connections: int = 64
    script: str | None = None
    ws_size: int = 0  # a WebSocket echo of this many bytes, not HTTP

    @property
    def key(self) -> str:
        return f"{self.server} {f'ws {self.ws_size} B' if self.ws_size else self.path}"


@dataclass(frozen=True)
class Row:
    what: str
    ours: Case
    peer: Case
    peer_label: str
    target: float | None = None  # issue 19's target ratio, where it sets one


def ws(server: str, size: int = 32) -> Case:
    return Case(server, "/", ws_size=size)


HELLO, ASGI = Case("tremolo", "/hello"), Case("tremolo-asgi", "/hello")
BIG, ASGI_BIG = Case("tremolo", "/64k"), Case("tremolo-asgi", "/64k")
GET_1M = Case("tremolo-streaming", "/1m", 16)
POST_1M = Case("tremolo-streaming", "/upload", 16, UPLOAD)

ISSUE19 = [
    Row("native hello", HELLO, Case("socketify", "/hello"), "socketify.py native", 1.0),
    Row("native hello", HELLO, Case("granian-rsgi", "/hello"), "granian RSGI"),
    Row("ASGI hello", ASGI, Case("granian-asgi", "/hello"), "granian ASGI", 1.5),
    Row("ASGI hello", ASGI, Case("uvicorn-httptools", "/hello"), "uvicorn (httptools)"),
    Row("native GET 64 KiB", BIG, Case("granian-rsgi", "/64k"), "granian RSGI", 1.2),
    Row("native GET 64 KiB", BIG, Case("socketify", "/64k"), "socketify.py native"),
    Row("ASGI GET 64 KiB", ASGI_BIG, Case("granian-asgi", "/64k"), "granian ASGI", 1.2),
    Row("native GET 1 MiB (-c16)", GET_1M, Case("granian-streaming", "/1m", 16),
        "granian RSGI"),
    Row("native POST 1 MiB (-c16)", POST_1M,
        Case("granian-streaming", "/upload", 16, UPLOAD), "granian RSGI"),
    Row("WebSocket echo 32 B (64 conns)", ws("tremolo-ws-native"), ws("socketify"),
        "socketify.py native", 1.0),
    Row("native hello, the ceiling", HELLO, Case("nginx", "/hello"), "nginx, 1 worker"),
    Row("native GET 64 KiB, the ceiling", BIG, Case("nginx", "/64k"), "nginx, 1 worker"),
]
W_HELLO = Case("tremolo-wsgi", "/hello")
WSGI = [
    Row("WSGI hello", W_HELLO, Case("granian-wsgi", "/hello"), "granian WSGI", 1.0),
    Row("WSGI hello", W_HELLO, Case("gunicorn-gthread", "/hello"),
        "gunicorn gthread, 5 threads"),
    Row("WSGI hello", W_HELLO, Case("gunicorn-sync", "/hello"), "gunicorn sync"),
    Row("Flask hello", Case("tremolo-wsgi-flask", "/hello"),
        Case("granian-wsgi-flask", "/hello"), "granian WSGI", 1.0),
    Row("Django hello", Case("tremolo-wsgi-django", "/hello"),
        Case("granian-wsgi-django", "/hello"), "granian WSGI", 1.0),
    Row("WSGI GET 64 KiB", Case("tremolo-wsgi", "/64k"), Case("granian-wsgi", "/64k"),
        "granian WSGI", 1.0),
    Row("WSGI POST 1 MiB via wsgi.input (-c16)", Case("tremolo-wsgi", "/upload", 16, UPLOAD),
        Case("granian-wsgi", "/upload", 16, UPLOAD), "granian WSGI", 1.0),
    Row("WSGI streamed 16 x 4 KiB", Case("tremolo-wsgi", "/stream"),
        Case("granian-wsgi", "/stream"), "granian WSGI", 1.0),
]
HELLO2, ASGI2 = Case("tremolo-2w", "/hello"), Case("tremolo-asgi-2w", "/hello")
SCALING = [
    Row("native hello", HELLO2, Case("granian-rsgi-2w", "/hello"), "granian RSGI"),
    Row("ASGI hello", ASGI2, Case("granian-asgi-2w", "/hello"), "granian ASGI", 1.5),
    Row("ASGI hello", ASGI2, Case("uvicorn-httptools-2w", "/hello"), "uvicorn (httptools)"),
    Row("native hello, the ceiling", HELLO2, Case("nginx-2w", "/hello"), "nginx"),
    Row("WSGI hello", Case("tremolo-wsgi-2w", "/hello"), Case("granian-wsgi-2w", "/hello"),
        "granian WSGI", 1.0),
]
TABLES = {"issue19": ISSUE19, "wsgi": WSGI, "scaling": SCALING}
TITLES = {
    "issue19": "Issue 19's table: one worker pinned to CPU 0, the load client pinned to "
               "CPU 1 (wrk -t1, -c64 unless the row says; WebSocket: bench/wsload.py, "
               "64 connections)",
    "wsgi": "Issue 20's table (WSGI): one worker pinned to CPU 0 (its threads too), the "
            "load client pinned to CPU 1 (wrk -t1, -c64 unless the row says)",
    "scaling": "Two workers on two cores, nothing pinned (wrk -t2 -c64 shares the cores "
               "with the server)",
}


SERVERS = (
    "- Servers: tremolo native (bench/apps/tremolo_hello.py, and streaming.py for "
    "1 MiB), tremolo ASGI and WSGI (`python3 -m tremolo` with bench/apps/asgi_hello.py, "
    "wsgi_hello.py); socketify.py's own API (bench/apps/socketify_app.py: res.send for "
    "HTTP, a ws message handler that sends back for WebSocket, compression off); granian "
    "RSGI, ASGI and WSGI; uvicorn with httptools on uvloop; nginx with `return 200` for "
    "/hello and a static 64 KiB file (sendfile on, access log off, keep-alive unbounded), "
    "the ceiling no Python server reaches.")
SERVERS_WSGI = (
    "- Servers: each with its defaults but the port and quiet logs: tremolo (`python3 -m "
    "tremolo APP`: thread_pool_size 5), granian (`--interface wsgi`, one worker), "
    "gunicorn (`-k sync`, and `-k gthread --threads 5`). Apps: bench/apps/wsgi_hello.py "
    "(/hello, /64k, /upload reading wsgi.input in 64 KiB reads, /stream a generator of "
    "16 pieces of 4 KiB), wsgi_flask.py and wsgi_django.py (each framework's hello world; "
    "Django with a new project's middleware and no database).")


def cases(rows: list[Row]) -> list[Case]:
    return list(dict.fromkeys(c for row in rows for c in (row.ours, row.peer)))


def server_names(scenario: str) -> set[str]:
    return {c.server for c in cases(TABLES[scenario])}


def measure(case: Case, server: Server, port: int, duration: int, scaling: bool
            ) -> tuple[Run, Peak]:
    """A fresh server, a 2 s warm-up, then one measured run with its memory sampled."""
    client_cpus, threads = (None, 2) if scaling else ("1", 1)

    def load(seconds: int) -> Run:
        if case.ws_size:
            return wsload(port, case.ws_size, seconds, case.connections, client_cpus)
        return wrk(f"http://127.0.0.1:{port}{case.path}", seconds, case.connections,
                   case.script, client_cpus, threads)

    with start(server, port) as pid:
        load(2)
        with Peak(pid) as peak:
            run = load(duration)
    return run, peak


def bench(args: argparse.Namespace) -> None:
    rows = TABLES[args.scenario]
    chosen = [c for c in cases(rows) if not args.only or c.server in args.only.split(",")]
    port = free_port()
    by_name = {s.name: s for s in servers(port)}
    runs: dict[Case, list[Run]] = {c: [] for c in chosen}
    workers: dict[Case, int] = {}
    cpu: dict[Case, list[float]] = {c: [] for c in chosen}
    for r in range(args.rounds):
        for case in chosen:
            run, peak = measure(case, by_name[case.server], port, args.duration,
                                args.scenario == "scaling")
            runs[case].append(run)
            workers[case] = max(workers.get(case, 0), peak.worker)
            done = run.rate * args.duration
            cpu[case].append(peak.cpu / done * 1e6 if done else float("nan"))
            unit = "msg/s" if case.ws_size else "req/s"
            print(f"round {r + 1} {case.key:34} {run.rate:10.0f} {unit}  p99 {run.p99:.2f} ms"
                  f"  errors {run.errors}  worker RSS {peak.worker >> 20} MiB"
                  f"  client CPU {run.client_cpu:.2f}  server CPU {cpu[case][-1]:.1f} us/req",
                  flush=True)
    report(args, rows, runs, workers, cpu)


def median(runs: list[Run]) -> Run:
    return Run(*(statistics.median(getattr(r, f) for r in runs) for f in Run._fields[:3]),
               sum(r.errors for r in runs), statistics.median(r.client_cpu for r in runs))


def report(args: argparse.Namespace, rows: list[Row], runs: dict[Case, list[Run]],
           workers: dict[Case, int], cpu: dict[Case, list[float]]) -> None:
    med = {c: median(v) for c, v in runs.items() if v}
    scaling = args.scenario == "scaling"

    def cells(c: Case) -> str:
        m = med[c]
        return (f"{m.rate:,.0f} | {m.p99:.2f} | {workers[c] / (1 << 20):.1f} | "
                f"{m.client_cpu:.2f} | {statistics.median(cpu[c]):.1f}")

    title = TITLES[args.scenario]
    lines = [
        "# Benchmark results", "",
        f"{title}. {args.rounds} interleaved rounds of {args.duration} s after a 2 s "
        "warm-up on a fresh server; medians over the rounds. Rates are requests/s "
        "(messages/s for WebSocket); p99 in ms; RSS: the peak of the server's largest "
        "worker, MiB; client: the load client's CPU over the run, in "
        "cores; CPU: the server's CPU time per request, µs.", "",
        "| case | tremolo | p99 | RSS | client | CPU | peer | peer's rate | p99 | RSS | client "
        "| CPU | ratio | target |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if row.ours not in med or row.peer not in med:
            continue
        ours, peer = med[row.ours], med[row.peer]
        ratio = ours.rate / peer.rate if peer.rate else float("nan")
        target = "-"
        if row.target is not None:
            # p99 is the noisiest figure, and the machine drifts between rounds: each
            # round's is compared with the peer's of the same round, and the median
            # of those ratios decides
            tails = statistics.median(o.p99 / p.p99 for o, p in
                                      zip(runs[row.ours], runs[row.peer], strict=True)
                                      if p.p99)
            target = (f"≥ {row.target:.2f}x: {'met' if ratio >= row.target else 'not met'}; "
                      f"p99 ≤ peer's: {'met' if tails <= 1 else 'not met'} "
                      f"(round by round, median {tails:.2f}x)")
        lines.append(f"| {row.what} | {cells(row.ours)} | {row.peer_label} | "
                     f"{cells(row.peer)} | {ratio:.2f}x | {target} |")
    mine = {c: workers[c] for c in med if c.server.startswith("tremolo")}
    if mine:
        over = [f"{c.key} ({rss / (1 << 20):.1f} MiB)" for c, rss in mine.items()
                if rss > RSS_TARGET]
        lines += ["", f"RSS per worker ≤ {RSS_TARGET >> 20} MiB (issue 19): "
                  + (f"over it: {', '.join(over)}." if over else "every tremolo case within it.")]
    busy = sorted(c.key for c, m in med.items() if m.client_cpu >= 0.9)
    if not scaling:
        lines += ["", "Load client at or above 0.9 of its core (it may be the limit there): "
                  + (", ".join(busy) if busy else "none") + "."]
    lines += ["", "All rounds (rate / p99 ms / client CPU / server CPU µs per request):", ""]
    lines += [f"- {c.key}: " + ", ".join(f"{r.rate:,.0f} / {r.p99:.2f} / {r.client_cpu:.2f}"
                                         f" / {u:.1f}" for r, u in zip(v, cpu[c], strict=True))
              for c, v in runs.items() if v]
    pin = ("nothing pinned; each server with two workers (tremolo --worker-num 2 and "
           "BENCH_WORKERS=2, granian --workers 2, uvicorn --workers 2, nginx "
           "worker_processes 2 with reuseport); load `wrk -t2`"
           if scaling else
           "each server `taskset -c 0`, one worker; load `taskset -c 1 wrk -t1 --latency` "
           "(uploads with bench/upload.lua), or `taskset -c 1 python3 bench/wsload.py` "
           "(one pre-masked 32-byte frame per connection, sent again on each echo)")
    lines += [
        "", "## Method", "",
        machine(),
        f"- Load: {pin}. The client's CPU is its user + system time over the run (wrk: "
        "from its rusage; wsload: measured over its timed window) divided by the run's "
        "length.",
        SERVERS_WSGI if args.scenario == "wsgi" else SERVERS,
        "- RSS: every process under the server sampled each 100 ms; the worker's is the "
        "peak of the largest process without children (the server itself when it is one "
        "process; a supervising master is left out: tremolo's, which imported the "
        "application before forking, is the larger at rest, 28.7 against 24.7 MiB).",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
        "- Command: `python3 bench/run.py " + " ".join(sys.argv[1:]) + "`.",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
