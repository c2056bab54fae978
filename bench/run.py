"""Benchmark: tremolo and its peers side by side, one run, one table.

Each server runs pinned to CPU 0 (taskset) on 127.0.0.1; wrk runs pinned to CPU 1.
Every server is measured once per round, rounds interleaved, and the table shows
the median of the rounds, with requests/s as a ratio to uvicorn (httptools).
The machine is shared and noisy: read the ratios, not the absolute numbers.

    python3 bench/run.py [--duration 10] [--rounds 3] [--connections 64] [--only NAME,...]

The original Tremolo shares our package name, so it runs from its own virtual
environment (.venv-tremolo053, made on first use by tools/original_env.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
VENV053 = ROOT / ".venv-tremolo053"  # made by tools/original_env.py, shared with the tests
PY = sys.executable
PEER_PACKAGES = ["uvicorn==0.54.0", "httptools==0.9.0", "uvloop==0.23.0", "granian==2.8.7", "h11",
                 "gunicorn==27.0.1", "websockets==17.4"]


@dataclass
class Server:
    name: str
    argv: list[str]
    path: str = "/hello"
    script: str | None = None  # a wrk Lua script (uploads)
    connections: int | None = None  # overrides --connections


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


def servers(port: int) -> list[Server]:
    uv = [PY, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
          "--no-access-log", "--log-level", "warning", "--loop", "uvloop",
          "--app-dir", str(BENCH), "apps.asgi_hello:app"]
    gr = [PY, "-m", "granian", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
          "--no-ws", "--log-level", "warning", "--working-dir", str(BENCH)]
    hello = str(BENCH / "apps" / "tremolo_hello.py")
    streaming = str(BENCH / "apps" / "streaming.py")
    ws_echo = str(BENCH / "apps" / "ws_echo.py")
    cli = [PY, "-m", "tremolo", "--port", str(port), "--worker-num", "1",
           "--log-level", "ERROR", "--no-access-log"]
    return [
        Server("tremolo-asgi", [*cli, str(BENCH / "apps" / "asgi_hello.py") + ":app"]),
        Server("tremolo-wsgi", [*cli, str(BENCH / "apps" / "wsgi_hello.py") + ":app"]),
        Server("tremolo-asgi-metrics", [*cli, "--metrics", f"127.0.0.1:{port + 1}",
                                        str(BENCH / "apps" / "asgi_hello.py") + ":app"]),
        Server("tremolo-asgi-accesslog", [*cli[:-1], str(BENCH / "apps" / "asgi_hello.py")
                                          + ":app"]),
        Server("uvicorn-accesslog", [*[a for a in uv if a != "--no-access-log"][:-1],
                                     "--log-level", "info", "--http", "httptools",
                                     "apps.asgi_hello:app"]),
        Server("granian-wsgi", [*gr, "--interface", "wsgi", "apps.wsgi_hello:app"]),
        Server("gunicorn-sync", [PY, "-m", "gunicorn", "-w", "1", "-k", "sync",
                                 "--chdir", str(BENCH), "-b", f"127.0.0.1:{port}",
                                 "--log-level", "warning", "apps.wsgi_hello:app"]),
        Server("tremolo-streaming", [PY, streaming, str(port)]),
        Server("tremolo-streaming-asgi", [*cli, "--client-max-body-size", str(64 << 20),
                                          "--buffer-size", "65536", streaming + ":asgi"]),
        Server("uvicorn-streaming", [*uv[:-1], "--http", "httptools", "apps.streaming:asgi"]),
        Server("granian-streaming", [*gr, "--interface", "rsgi", "apps.streaming:rsgi"]),
        Server("tremolo", [PY, hello, str(port)]),
        Server("uvicorn-httptools", [*uv, "--http", "httptools"]),
        Server("uvicorn-h11", [*uv, "--http", "h11"]),
        Server("granian-asgi", [*gr, "--interface", "asgi", "apps.asgi_hello:app"]),
        Server("granian-rsgi", [*gr, "--interface", "rsgi", "apps.rsgi_hello:app"]),
        Server("tremolo-0.5.3", [str(VENV053 / "bin" / "python"), hello, str(port)]),
        Server("tremolo-ws-native", [PY, ws_echo, str(port)]),
        Server("tremolo-ws-asgi", [*cli, "--ws-max-payload-size", str(1 << 20),
                                   "--buffer-size", "65536", ws_echo + ":asgi"]),
        Server("granian-ws-asgi", [*[a for a in gr if a != "--no-ws"], "--interface", "asgi",
                                   "apps.ws_echo:asgi"]),
        Server("uvicorn-ws", [*uv[:-1], "--http", "httptools", "--ws", "websockets-sansio",
                              "--ws-max-size", str(1 << 20), "apps.ws_echo:asgi"]),
        Server("tremolo-0.5.3-ws", [str(VENV053 / "bin" / "python"), ws_echo, str(port)]),
    ]


def ensure_peers() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    subprocess.run([PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *PEER_PACKAGES], check=True)
    subprocess.run([PY, str(ROOT / "tools" / "original_env.py"), str(VENV053)], check=True,
                   stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Peak:
    """The highest RSS of a process and its children, sampled every 100 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.value = pid, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def tree_rss(self) -> int:
        pids = [self.pid]
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
            pids += [int(p) for p in children.split()]
        total = 0
        for pid in pids:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total

    def run(self) -> None:
        while not self.done.wait(0.1):
            self.value = max(self.value, self.tree_rss())

    def __enter__(self) -> Peak:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join(5)


@contextlib.contextmanager
def running(server: Server, port: int) -> Iterator[int]:
    # cwd outside the repository, so the original Tremolo does not import ours
    proc = subprocess.Popen(["taskset", "-c", "0", *server.argv], cwd="/tmp",
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"{server.name} did not start: {err[-2000:]}") from None
                time.sleep(0.05)
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, duration: int, connections: int, script: str | None = None
        ) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx + socket errors)."""
    extra = ["-s", script] if script else []
    for attempt in range(3):
        run = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}",
                              f"-d{duration}s", "--latency", *extra, url],
                             capture_output=True, text=True)
        out = run.stdout
        if "Requests/sec" in out:
            break
        # a server still starting its worker (gunicorn) refuses the first connections
        time.sleep(1 + attempt)
    else:
        raise RuntimeError(f"wrk failed on {url}: {run.stdout}{run.stderr}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")

    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      out):
        errors += sum(map(int, m.groups()))
    return rps, pct("50"), pct("99"), errors


def versions() -> dict[str, str]:
    def pkg(name: str, python: str = PY) -> str:
        code = f"import importlib.metadata as m; print(m.version({name!r}))"
        r = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd="/tmp")
        return r.stdout.strip() or "?"

    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "python": platform.python_version(), "uvloop": pkg("uvloop"),
        "uvicorn": pkg("uvicorn"), "httptools": pkg("httptools"), "h11": pkg("h11"),
        "granian": pkg("granian"), "websockets": pkg("websockets"),
        "tremolo (this)": pkg("tremolo"),
        "tremolo (original)": pkg("tremolo", str(VENV053 / "bin" / "python")),
        "wrk": wrk_v.strip(),
    }


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def machine() -> str:
    return (f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}; "
            "shared and noisy, so compare ratios from the same run.")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--only", default="")
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="hello")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if not args.out:
        suffix = "" if args.scenario == "hello" else f"-{args.scenario}"
        args.out = str(BENCH / f"results{suffix}.md")
    ensure_peers()
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
    results: dict[str, list[tuple[float, float, float, int]]] = {label[id(s)]: []
                                                                 for s in chosen}
    peaks: dict[str, int] = {}
    for r in range(args.rounds):
        for server in chosen:
            name = label[id(server)]
            conns = server.connections or args.connections
            with running(server, port) as pid:
                url = f"http://127.0.0.1:{port}{server.path}"
                wrk(url, 2, conns, server.script)  # warm-up
                with Peak(pid) as peak:
                    results[name].append(wrk(url, args.duration, conns, server.script))
                peaks[name] = max(peaks.get(name, 0), peak.value)
                rps, p50, p99, err = results[name][-1]
                print(f"round {r + 1} {name:24} {rps:10.0f} req/s  p50 {p50:.2f} ms  "
                      f"p99 {p99:.2f} ms  errors {err}  peak RSS {peak.value >> 20} MiB",
                      flush=True)
    report(results, args, versions(), peaks)


def wsload(port: int, size: int, duration: int, connections: int) -> float:
    for attempt in range(3):
        out = subprocess.run(["taskset", "-c", "1", PY, str(BENCH / "wsload.py"), str(port),
                              "--size", str(size), "--duration", str(duration),
                              "--connections", str(connections)],
                             capture_output=True, text=True, timeout=duration + 60)
        m = re.search(r"([\d.]+) messages/s", out.stdout)
        if m is not None:
            return float(m.group(1))
        # a server still starting its worker refuses the first connections
        time.sleep(1 + attempt)
    raise RuntimeError(f"wsload failed: {out.stdout}{out.stderr[-2000:]}")


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
    with running(server, port) as pid:
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
            with running(server, port) as pid:
                wsload(port, size, 2, args.connections)  # warm-up
                with Peak(pid) as peak:
                    results[name].append(wsload(port, size, args.duration, args.connections))
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


def report(results: dict[str, list[tuple[float, float, float, int]]],
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
