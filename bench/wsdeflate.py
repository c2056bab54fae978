"""Benchmark: what receiving permessage-deflate messages costs the server, in CPU
seconds per MB of payload (inflated), tremolo (native and ASGI) against uvicorn with
the `websockets` implementations, in one run.

    python3 bench/wsdeflate.py [--rounds 3] [--mb 1024] [--out bench/results-websocket.md]

Each server runs pinned to CPU 0 with one process; the client runs pinned to CPU 1.
The client opens one WebSocket with permessage-deflate, sends `--mb` MB of messages
(4 times as many for zeros; each compressed on its own beforehand, so the client's
cost is one write per frame),
then a text "end" that the server's sink answers once it has read everything before
it (bench/apps/ws_sink.py). The server's CPU time (user + system, from /proc) over
that span, divided by the MB received, is the figure. Workloads:

- json: 16 KiB text messages of JSON records (about 4x smaller on the wire);
- zeros: 1 MiB binary messages of zeros (about 1000x smaller: the shape of a bomb);
- json-plain: the same JSON messages uncompressed, to show what inflating adds.

Rounds are interleaved so that drift hits every server alike; the table gives
medians and the ratio to uvicorn (websockets-sansio). Appends (or replaces) its
section in the results file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

from harness import free_port  # the benchmark's own way to run a server
from peers import Server, start

BENCH = Path(__file__).resolve().parent
PY = sys.executable
WORKLOADS = ("json", "zeros", "json-plain")
SECTION = "## Receiving compressed messages (permessage-deflate)"


def servers(port: int) -> dict[str, list[str]]:
    cli = [PY, "-m", "tremolo", "--port", str(port), "--workers", "0", "--log-level", "ERROR",
           "--no-access-log", "--lifespan", "off", "--app-dir", str(BENCH / "apps")]
    uv = [PY, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
          "--log-level", "warning", "--loop", "uvloop", "--http", "httptools",
          "--lifespan", "off", "--app-dir", str(BENCH / "apps"), "--ws-max-size", str(2 << 20)]
    return {
        "tremolo-native": [*cli, "ws_sink:app"],
        "tremolo-asgi": [*cli, "ws_sink:asgi"],
        "uvicorn-websockets-sansio": [*uv, "--ws", "websockets-sansio", "ws_sink:asgi"],
        "uvicorn-websockets": [*uv, "--ws", "websockets", "ws_sink:asgi"],
    }


# -- the client (run as `wsdeflate.py --client PORT PID WORKLOAD MB`, on CPU 1) ----------

def messages(workload: str) -> tuple[list[bytes], bool, bool]:
    """A few distinct payloads to send in turn; whether text; whether compressed."""
    if workload == "zeros":
        return [bytes(1 << 20)], False, True
    rng = random.Random(1)
    payloads = []
    for _ in range(8):
        records, size = [], 0
        while size < 16 << 10:
            r = {"id": rng.randrange(10**9), "user": f"user-{rng.randrange(10**5)}",
                 "score": round(rng.random() * 100, 3), "active": rng.random() < 0.5,
                 "tags": rng.sample(["red", "green", "blue", "alpha", "beta", "gamma"], 3)}
            records.append(r)
            size += len(json.dumps(r)) + 2
        payloads.append(json.dumps(records).encode()[:16 << 10].ljust(16 << 10, b" "))
    return payloads, True, workload == "json"


def frame(payload: bytes, text: bool, compress: bool) -> bytes:
    if compress:
        z = zlib.compressobj(6, zlib.DEFLATED, -15)  # each message on its own
        payload = (z.compress(payload) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]
    b0 = (0x81 if text else 0x82) | (0x40 if compress else 0)
    n = len(payload)
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big")
    key = os.urandom(4)
    masked = int.from_bytes(payload, "big") ^ int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return head + key + masked.to_bytes(n, "big")


def cpu_seconds(pid: int) -> float:
    """User + system time of a process and its children."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    ticks = 0
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def client(port: int, pid: int, workload: str, mb: int) -> dict[str, float]:
    payloads, text, compress = messages(workload)
    frames = [frame(p, text, compress) for p in payloads]
    if workload == "zeros":
        mb *= 4  # cheap to send: enough of them for the CPU time to be measurable
    count = max(1, (mb << 20) // len(payloads[0]))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Extensions: "
                  "permessage-deflate; client_max_window_bits\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    if not head.startswith(b"HTTP/1.1 101") or b"permessage-deflate" not in head.lower():
        raise SystemExit(f"no permessage-deflate: {head!r}")
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    for i in range(count):
        writer.write(frames[i % len(frames)])
        if i % 16 == 15:
            await writer.drain()
    writer.write(frame(b"end", True, False))
    await writer.drain()
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), 600)
    answer_bytes = await reader.readexactly(b1 & 0x7F)
    if b0 & 0x40:  # compressed (websockets compresses even short messages)
        answer_bytes = zlib.decompressobj(-15).decompress(answer_bytes + b"\x00\x00\xff\xff")
    answer = answer_bytes.decode()
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    writer.close()
    got, size = map(int, answer.split())
    if got != count or size != count * len(payloads[0]):
        raise SystemExit(f"the server counted {answer}, not {count}")
    wire = sum(len(frames[i % len(frames)]) for i in range(count))
    return {"cpu": cpu1 - cpu0, "seconds": t1 - t0, "mb": count * len(payloads[0]) / 2**20,
            "wire_mb": wire / 2**20}


# -- the run ----------------------------------------------------------------------

def measure(name: str, argv: list[str], port: int, workload: str, mb: int
            ) -> dict[str, float]:
    with start(Server(name, argv), port) as pid:
        out = subprocess.run(["taskset", "-c", "1", PY, __file__, "--client", str(port),
                              str(pid), workload, str(mb)],
                             capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            raise RuntimeError(f"client failed: {out.stdout}{out.stderr[-2000:]}")
        return dict(json.loads(out.stdout))


def version(name: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    return subprocess.run([PY, "-c", code], capture_output=True, text=True,
                          cwd="/tmp").stdout.strip() or "?"


def inflate_cost(results: dict[tuple[str, str], list[dict[str, float]]], name: str) -> float:
    def med(workload: str) -> float:
        return statistics.median(r["cpu"] / r["mb"] for r in results[(workload, name)])
    return med("json") - med("json-plain")


def report(results: dict[tuple[str, str], list[dict[str, float]]], args: argparse.Namespace,
           names: list[str]) -> str:
    base = "uvicorn-websockets-sansio"
    lines = [SECTION, "",
             "CPU time of the server per MB of payload received (inflated), medians of "
             f"{args.rounds} interleaved rounds of {args.mb} MB ({args.mb * 4} MB for zeros); "
             "lower is better. \"on the wire\": compressed size / payload size.", "",
             "| workload | server | CPU per MB | vs uvicorn (websockets-sansio) | MB/s "
             "(wall) | on the wire |", "|---|---|---:|---:|---:|---:|"]
    for workload in WORKLOADS:
        med = {}
        for name in names:
            runs = results[(workload, name)]
            med[name] = statistics.median(r["cpu"] / r["mb"] for r in runs)
        for name in names:
            runs = results[(workload, name)]
            wall = statistics.median(r["mb"] / r["seconds"] for r in runs)
            ratio = runs[0]["wire_mb"] / runs[0]["mb"]
            lines.append(f"| {workload} | {name} | {med[name] * 1000:.2f} ms | "
                         f"{med[name] / med[base]:.2f}x | {wall:.0f} | {ratio:.1%} |")
    lines += ["", "What inflating adds (json minus json-plain, medians): " + ", ".join(
        f"{name} {inflate_cost(results, name) * 1000:.2f} ms/MB" for name in names) + "."]
    lines += ["", "All rounds (ms of CPU per MB):", ""]
    for workload in WORKLOADS:
        for name in names:
            rounds = ", ".join(f"{r['cpu'] / r['mb'] * 1000:.2f}"
                               for r in results[(workload, name)])
            lines.append(f"- {workload} {name}: {rounds}")
    lines += ["", "Method:", "",
              f"- Machine: {os.cpu_count()} CPUs, Linux {os.uname().release}; shared and noisy, "
              "so compare ratios from the same run.",
              "- `python3 bench/wsdeflate.py` (see its docstring): one server process pinned to "
              "CPU 0, the client pinned to CPU 1, one connection; the client's messages are "
              "compressed beforehand, each on its own (level 6, 15-bit window), and sent as "
              "fast as the server reads them; the server's sink (bench/apps/ws_sink.py) drops "
              "each message and answers a final \"end\". CPU = utime + stime of the server "
              "process from /proc over that span (10 ms ticks; each run is seconds long).",
              "- Servers: tremolo (this; uvloop; defaults: ws_max_payload_size 2 MiB), native "
              "and ASGI; uvicorn with `--ws websockets-sansio` and `--ws websockets`, "
              "httptools, uvloop, `--ws-max-size 2097152`.",
              f"- Versions: python {sys.version.split()[0]}, uvloop {version('uvloop')}, "
              f"uvicorn {version('uvicorn')}, websockets {version('websockets')}, "
              f"tremolo {version('tremolo')}.",
              f"- Command: `python3 bench/wsdeflate.py --rounds {args.rounds} --mb {args.mb}`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        port, pid, workload, mb = sys.argv[2:6]
        print(json.dumps(asyncio.run(client(int(port), int(pid), workload, int(mb)))))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--only", default="")
    ap.add_argument("--out", default=str(BENCH / "results-websocket.md"))
    args = ap.parse_args()
    port = free_port()
    argvs = servers(port)
    names = [n for n in argvs if not args.only or n in args.only.split(",")]
    results: dict[tuple[str, str], list[dict[str, float]]] = {
        (w, n): [] for w in WORKLOADS for n in names}
    for r in range(args.rounds):
        for workload in WORKLOADS:
            for name in names:
                res = measure(name, argvs[name], port, workload, args.mb)
                results[(workload, name)].append(res)
                print(f"round {r + 1} {workload} {name}: "
                      f"{res['cpu'] / res['mb'] * 1000:.2f} ms CPU/MB", flush=True)
    text = report(results, args, names)
    print(text)
    out = Path(args.out)
    old = out.read_text() if out.exists() else ""
    # the section replaces its previous version, up to the next section of this level
    old = re.sub(re.escape(SECTION) + r".*?(?=^## |\Z)", "", old, flags=re.S | re.M)
    out.write_text((old.rstrip("\n") + "\n\n" if old.strip() else "") + text)


if __name__ == "__main__":
    main()
