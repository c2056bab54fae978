"""Benchmark: tremolo and its peers side by side, one run, one table.

Each server runs pinned to CPU 0 (taskset) on 127.0.0.1; wrk runs pinned to CPU 1.
Every server is measured once per round, rounds interleaved, and the table shows
the median of the rounds, with requests/s as a ratio to uvicorn (httptools).
The machine is shared and noisy: read the ratios, not the absolute numbers.

    python3 bench/run.py [--duration 10] [--rounds 3] [--connections 64] [--only NAME,...]
                         [--scenario NAME]

The servers and their installation are in bench/peers.py, starting and loading them in
bench/harness.py; the tables of tremolo against a named peer (`issue19`, `wsgi` and the
two-worker `scaling`) in bench/compare.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import compare
from harness import BENCH, PY, Peak, Run, free_port, machine, versions, wrk, wsload
from peers import Server, ensure_peers, servers, start

# Which servers each scenario compares, and on which path.
SCENARIOS = {
    # issue 2: hello world against every peer
    "hello": [("tremolo", "/hello"), ("uvicorn-httptools", "/hello"), ("uvicorn-h11", "/hello"),
              ("granian-asgi", "/hello"), ("granian-rsgi", "/hello"),
              ("tremolo-0.5.3", "/hello")],
    # issue 3: the native framework against granian RSGI and the original
    "native": [("tremolo", "/hello"), ("granian-rsgi", "/hello"), ("tremolo-0.5.3", "/hello"),
               ("tremolo", "/64k"), ("granian-rsgi", "/64k"), ("tremolo-0.5.3", "/64k")],
    # issue 5: ASGI and WSGI applications
    "interfaces": [("tremolo-asgi", "/hello"), ("granian-asgi", "/hello"),
                   ("uvicorn-httptools", "/hello"),
                   ("tremolo-asgi", "/64k"), ("granian-asgi", "/64k"),
                   ("uvicorn-httptools", "/64k"),
                   ("tremolo-wsgi", "/hello"), ("granian-wsgi", "/hello"),
                   ("gunicorn-sync", "/hello")],
    # issue 4: big bodies, speed limits off
    "streaming": [(name, path) for path in ("/1m", "/upload", "/file")
                  for name in ("tremolo-streaming", "uvicorn-streaming", "granian-streaming")],
    # issue 11: what the access log costs (to /dev/null), ours and uvicorn's
    "accesslog": [("tremolo-asgi", "/hello"), ("tremolo-asgi-accesslog", "/hello"),
                  ("uvicorn-httptools", "/hello"), ("uvicorn-accesslog", "/hello")],
    # issue 12: what the metrics endpoint's counting costs (--metrics on, not scraped)
    "metrics": [("tremolo-asgi", "/hello"), ("tremolo-asgi-metrics", "/hello"),
                ("tremolo-asgi", "/64k"), ("tremolo-asgi-metrics", "/64k"),
                ("uvicorn-httptools", "/hello")],
    # issue 10: 1 MiB uploads, the native stream() against the ASGI path and peers
    "upload": [(name, "/upload") for name in ("tremolo-streaming", "tremolo-streaming-asgi",
                                              "granian-streaming", "uvicorn-streaming")],
    # issue 9: WebSocket echo, 32-byte and 64 KiB messages (the "path" is the size)
    "websocket": [(name, size) for size in ("32", "65536")
                  for name in ("tremolo-ws-native", "tremolo-ws-asgi", "granian-ws-asgi",
                               "uvicorn-ws", "tremolo-0.5.3-ws")],
}
# wrk connections per path in the streaming scenario (big bodies need fewer)
STREAM_CONNECTIONS = {"/1m": 16, "/upload": 16, "/file": 4}
BIG_FILE = Path("/tmp/tremolo-bench-50m.bin")

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--only", default="")
    ap.add_argument("--scenario", choices=sorted([*SCENARIOS, *compare.TABLES]),
                    default="hello")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if not args.out:
        suffix = "" if args.scenario == "hello" else f"-{args.scenario}"
        args.out = str(BENCH / f"results{suffix}.md")
    if args.scenario in compare.TABLES:
        ensure_peers(compare.server_names(args.scenario))
        compare.bench(args)
        return
    ensure_peers({name for name, _ in SCENARIOS[args.scenario]})
    if args.scenario == "websocket":
        websocket_bench(args)
        return
    port = free_port()
    by_name = {s.name: s for s in servers(port)}
    chosen = [replace(by_name[name], path=path) for name, path in SCENARIOS[args.scenario]
              if not args.only or name in args.only.split(",")]
    if args.scenario in ("streaming", "upload"):
        if not BIG_FILE.exists() or BIG_FILE.stat().st_size != 50 << 20:
            BIG_FILE.write_bytes(os.urandom(1 << 20) * 50)
        for s in chosen:
            s.connections = STREAM_CONNECTIONS[s.path]
            if s.path == "/upload":
                s.script = str(BENCH / "upload.lua")
    label = {id(s): s.name if args.scenario == "hello" else f"{s.name} {s.path}"
             for s in chosen}
    results: dict[str, list[Run]] = {label[id(s)]: [] for s in chosen}
    peaks: dict[str, int] = {}
    for r in range(args.rounds):
        for server in chosen:
            name = label[id(server)]
            conns = server.connections or args.connections
            with start(server, port) as pid:
                url = f"http://127.0.0.1:{port}{server.path}"
                wrk(url, 2, conns, server.script)  # warm-up
                with Peak(pid) as peak:
                    results[name].append(wrk(url, args.duration, conns, server.script))
                peaks[name] = max(peaks.get(name, 0), peak.value)
                rps, p50, p99, err, _ = results[name][-1]
                print(f"round {r + 1} {name:24} {rps:10.0f} req/s  p50 {p50:.2f} ms  "
                      f"p99 {p99:.2f} ms  errors {err}  peak RSS {peak.value >> 20} MiB",
                      flush=True)
    report(results, args, versions(), peaks)


def idle_memory(server: Server, port: int, count: int, compress: bool) -> float:
    """Bytes of server RSS per idle WebSocket connection (after one message each way,
    compressed when `compress`, so that both compression streams exist)."""
    comp = "'deflate'" if compress else None
    code = f"""
import asyncio, sys
from websockets.asyncio.client import connect
async def main():
    conns = []
    for _ in range({count}):
        ws = await connect("ws://127.0.0.1:{port}/", compression={comp}, max_size=None)
        await ws.send("x" * 200)
        await ws.recv()
        conns.append(ws)
    print("ready", flush=True)
    sys.stdin.readline()
    for ws in conns:
        await ws.close()
asyncio.run(main())
"""
    with start(server, port) as pid:
        wsload(port, 32, 1, 1)  # the worker is up and serving WebSockets
        before = Peak(pid).tree_rss()
        client = subprocess.Popen([PY, "-c", code], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert client.stdout is not None and client.stdin is not None
            line = client.stdout.readline()
            if "ready" not in line:
                raise RuntimeError(f"{server.name}: idle clients failed")
            time.sleep(1)
            after = Peak(pid).tree_rss()
            client.stdin.write("\n")
            client.stdin.flush()
            client.wait(30)
        finally:
            if client.poll() is None:
                client.kill()
    return (after - before) / count


def websocket_bench(args: argparse.Namespace) -> None:
    port = free_port()
    by_name = {s.name: s for s in servers(port)}
    chosen = [(by_name[name], int(size)) for name, size in SCENARIOS["websocket"]
              if not args.only or name in args.only.split(",")]
    results: dict[str, list[float]] = {f"{s.name} {size}": [] for s, size in chosen}
    peaks: dict[str, int] = {}
    for r in range(args.rounds):
        for server, size in chosen:
            name = f"{server.name} {size}"
            with start(server, port) as pid:
                wsload(port, size, 2, args.connections)  # warm-up
                with Peak(pid) as peak:
                    results[name].append(
                        wsload(port, size, args.duration, args.connections).rate)
                peaks[name] = max(peaks.get(name, 0), peak.value)
            print(f"round {r + 1} {name:28} {results[name][-1]:10.0f} messages/s  "
                  f"peak RSS {peak.value >> 20} MiB", flush=True)
    memory: dict[str, tuple[float, float]] = {}
    for server in {s.name: s for s, _ in chosen}.values():
        if server.name == "tremolo-0.5.3-ws":
            plain = idle_memory(server, port, 500, False)
            memory[server.name] = (plain, float("nan"))  # no compression there
        else:
            memory[server.name] = (idle_memory(server, port, 500, False),
                                   idle_memory(server, port, 500, True))
        print(f"{server.name}: {memory[server.name][0] / 1024:.1f} KiB per idle connection, "
              f"{memory[server.name][1] / 1024:.1f} KiB with compression", flush=True)
    med = {name: statistics.median(v) for name, v in results.items()}
    lines = [
        "# Benchmark results", "",
        "WebSocket echo: each of the connections sends a binary message and waits for its "
        f"echo, again and again. {args.rounds} interleaved rounds of {args.duration} s after "
        f"a 2 s warm-up, {args.connections} connections; medians over the rounds.", "",
        "| server | message | messages/s | vs granian ASGI | vs uvicorn | peak RSS |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, rate in sorted(med.items(), key=lambda kv: (int(kv[0].split()[-1]), -kv[1])):
        size = name.split()[-1]
        gran = med.get(f"granian-ws-asgi {size}")
        uvi = med.get(f"uvicorn-ws {size}")
        lines.append(f"| {name.rsplit(' ', 1)[0]} | {size} B | {rate:,.0f} | "
                     f"{f'{rate / gran:.2f}x' if gran else '-'} | "
                     f"{f'{rate / uvi:.2f}x' if uvi else '-'} | "
                     f"{peaks.get(name, 0) / (1 << 20):.0f} MiB |")
    lines += ["", "Memory per idle WebSocket connection (server RSS growth over 500 "
              "connections, each after one message both ways):", "",
              "| server | plain | permessage-deflate |", "|---|---:|---:|"]
    for name, (plain, comp) in memory.items():
        comp_s = "-" if comp != comp else f"{comp / 1024:.1f} KiB"
        lines.append(f"| {name} | {plain / 1024:.1f} KiB | {comp_s} |")
    lines += ["", "All rounds (messages/s):", ""]
    lines += [f"- {n}: " + ", ".join(f"{v:,.0f}" for v in runs) for n, runs in results.items()]
    lines += [
        "", "## Method", "",
        machine(),
        "- Each server: `taskset -c 0 <server>` on 127.0.0.1, one worker. Load: "
        "`taskset -c 1 python3 bench/wsload.py PORT --size N` (uvloop, one pre-masked frame "
        "per connection sent again on each echo; it uses about a third of its core against "
        "tremolo native).",
        "- Servers: bench/apps/ws_echo.py, native (this tremolo and the original 0.5.3 "
        "run the same file) and ASGI (tremolo, granian, uvicorn with websockets-sansio); "
        "no compression in the throughput runs (the client does not offer it).",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
        "- Command: `python3 bench/run.py " + " ".join(sys.argv[1:]) + "`.",
    ]
    out = args.out if args.out else str(BENCH / "results-websocket.md")
    kept = ""  # the section bench/wsdeflate.py measures and writes stays
    with contextlib.suppress(OSError):
        previous = Path(out).read_text()
        if (at := previous.find("\n## Receiving compressed messages")) >= 0:
            kept = previous[at:]
    Path(out).write_text("\n".join(lines) + "\n" + kept)
    print("\n".join(lines))


def _path(name: str) -> str:
    return name.split()[-1]


# scenario -> (the report's title, the result each result is compared with, how the
# ratio column names that baseline)
REPORTS: dict[str, tuple[str, Callable[[str], str], str]] = {
    "hello": ("Hello world (GET /hello, 12-byte body)",
              lambda name: "uvicorn-httptools", "uvicorn-httptools"),
    "interfaces": ("ASGI and WSGI applications: GET /hello (12 bytes) and /64k (65536 "
                   "bytes), ratios to granian with the same interface and path",
                   lambda name: ("granian-wsgi " if "wsgi" in name or "gunicorn" in name
                                 else "granian-asgi ") + _path(name),
                   "granian, same interface and path"),
    "accesslog": ("The access log's cost: GET /hello (ASGI), with the access log on (lines "
                  "to /dev/null) and off, ratios to tremolo with it off",
                  lambda name: "tremolo-asgi /hello", "tremolo, log off"),
    "metrics": ("The metrics' cost: GET /hello (12 bytes) and /64k (ASGI), with --metrics "
                "on (counting, not scraped) and off, ratios to tremolo with it off",
                lambda name: "tremolo-asgi " + _path(name), "tremolo, metrics off, same path"),
    "upload": ("Uploads: POST /upload, a 1 MiB body read in pieces and counted (the native "
               "app's request.stream(), the ASGI app's receive(), granian's RSGI "
               "iterator; wrk -c16)",
               lambda name: "granian-streaming /upload", "granian RSGI, same path"),
    "streaming": ("Big bodies, speed limits off: GET /1m (1 MiB returned), POST /upload "
                  "(1 MiB streamed in, wrk -c16), GET /file (a 50 MiB file, wrk -c4)",
                  lambda name: "granian-streaming " + _path(name), "granian RSGI, same path"),
    "native": ("The native framework: GET /hello (12-byte body) and GET /64k (a returned "
               "65536-byte body)",
               lambda name: "granian-rsgi " + _path(name), "granian RSGI, same path"),
}


def report(results: dict[str, list[Run]],
           args: argparse.Namespace, vers: dict[str, str], peaks: dict[str, int]) -> None:
    med = {name: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
                  statistics.median(r[2] for r in runs), sum(r[3] for r in runs))
           for name, runs in results.items()}
    title, base_of, base_label = REPORTS[args.scenario]
    baseline = {name: base_of(name) for name in med}
    lines = [
        "# Benchmark results", "",
        f"{title}, {args.rounds} interleaved rounds of {args.duration} s each after a 2 s "
        f"warm-up; wrk -t1 -c{args.connections}. Medians over the rounds.", "",
        f"| server | requests/s | vs {base_label} | p50 ms | p99 ms | errors | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, (rps, p50, p99, err) in sorted(med.items(),
                                             key=lambda kv: (kv[0].split()[-1], -kv[1][0])):
        base = med.get(baseline[name], (0.0,))[0]
        ratio = f"{rps / base:.2f}x" if base else "-"
        peak = f"{peaks.get(name, 0) / (1 << 20):.0f} MiB"
        lines.append(f"| {name} | {rps:,.0f} | {ratio} | {p50:.2f} | {p99:.2f} | {err} "
                     f"| {peak} |")
    lines += ["", "All rounds (requests/s):", ""]
    lines += [f"- {n}: " + ", ".join(f"{r[0]:,.0f}" for r in runs) for n, runs in results.items()]
    lines += [
        "", "## Method", "",
        machine(),
        "- Each server: `taskset -c 0 <server>` on 127.0.0.1, one worker process, "
        "logging off or at warning level. Load: `taskset -c 1 wrk -t1 "
        f"-c{args.connections} -d{args.duration}s --latency http://127.0.0.1:PORT/hello`.",
        "- Servers: tremolo (this repository, native route, uvloop); uvicorn with httptools "
        "and with h11 (both on uvloop, ASGI app in bench/apps/asgi_hello.py); granian "
        "(ASGI, and RSGI with bench/apps/rsgi_hello.py); the original pure-Python Tremolo "
        "0.5.3 from PyPI in its own virtual environment, running the same "
        "bench/apps/tremolo_hello.py with download_rate raised so it does not throttle.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".",
        "- The 64 KiB case runs the servers with buffer_size=65536 where it applies "
        "(both Tremolos). The streaming case: bench/apps/streaming.py (tremolo native "
        "with sendfile, uvicorn ASGI reading the file in 1 MiB pieces, granian RSGI with "
        "response_file), uploads posted by bench/upload.lua; peak RSS is the server's "
        "process tree, sampled every 100 ms.",
        "- Command: `python3 bench/run.py " + " ".join(sys.argv[1:]) + "`.",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
