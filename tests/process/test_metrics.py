"""The Prometheus endpoint (--metrics): scraped with a real client, parsed with the
official prometheus_client parser, and checked against the requests sent, across
worker processes, a worker killed, and a single-process server; the process series
against what /proc says of each process; the Grafana dashboard against what the
endpoint serves."""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tremolo.metrics import Board, Totals, process, render
from tremolo.protocols.counters import Counters

from ..helpers import eventually, exchange, free_port, stop_process
from .test_supervisor import children, until

APP = """
import time

async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message["text"]})
    if scope["type"] != "http":
        return
    if scope["path"] == "/spin":  # CPU time, for the process series
        end = time.process_time() + 0.2
        while time.process_time() < end:
            pass
    if scope["path"] == "/block":  # the loop held (a single process's endpoint waits)
        time.sleep(1.0)
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})
"""


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint: (name, labels) -> value."""
    r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@contextmanager
def server(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    (tmp_path / "m.py").write_text(APP)
    port, metrics = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--port", str(port),
                             "--metrics", f"127.0.0.1:{metrics}", "--no-access-log", *args,
                             "m:app"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: httpx.get(f"http://127.0.0.1:{metrics}/metrics").status_code == 200
                   and httpx.get(f"http://127.0.0.1:{port}/").status_code == 200,
                   "the server", proc)
        yield proc, port, metrics
    finally:
        stop_process(proc, signal.SIGTERM, 30)
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_the_figures_of_every_worker_add_up(tmp_path: Path) -> None:
    with server(tmp_path, "--workers", "2") as (proc, port, metrics):
        sent = 0
        for i in range(40):
            path = "/missing" if i % 4 == 0 else "/"
            request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            assert exchange(port, request).startswith(b"HTTP/1.1 ")
            sent += len(request)
        for _ in range(3):  # refused by the parser
            assert exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"
                            ).startswith(b"HTTP/1.1 400")
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
            for n in range(5):
                ws.send(f"m{n}")
                assert ws.recv(timeout=5) == f"m{n}"
            until(lambda: value(scrape(metrics), "tremolo_websocket_connections_open") == 1,
                  "the WebSocket is not counted")
        # 30 + the one the fixture's check made
        until(lambda: value(scrape(metrics), "tremolo_requests_total", interface="asgi",
                            status="2xx") == 31
              and value(scrape(metrics), "tremolo_websocket_connections_open") == 0,
              "the requests are not counted", timeout=10)
        now = scrape(metrics)
        assert value(now, "tremolo_requests_total", interface="asgi", status="4xx") == 10
        assert value(now, "tremolo_requests_total", interface="asgi", status="1xx") == 1  # 101
        assert value(now, "tremolo_rejected_requests_total", status="400",
                     reason="missing or repeated Host") == 3
        assert value(now, "tremolo_websocket_connections_total") == 1
        assert value(now, "tremolo_websocket_messages_total", direction="received") == 5
        assert value(now, "tremolo_websocket_messages_total", direction="sent") == 5
        assert value(now, "tremolo_request_duration_seconds_count") == 42
        assert value(now, "tremolo_request_duration_seconds_bucket", le="+Inf") == 42
        assert 0 < value(now, "tremolo_request_duration_seconds_sum") < 5
        assert value(now, "tremolo_connections_total") == 45  # 1 + 40 + 3 + the WebSocket
        assert value(now, "tremolo_received_bytes_total") >= sent + 3 * 36
        assert value(now, "tremolo_sent_bytes_total") > 44 * len(b"HTTP/1.1 200 OK\r\n")
        assert value(now, "tremolo_workers") == 2
        assert {labels for name, labels in now if name == "tremolo_event_loop_lag_seconds"} \
            == {(("worker", "0"),), (("worker", "1"),)}

        # a worker killed: restarted, counted as such; no counter goes backwards
        os.kill(min(children(proc.pid)), signal.SIGKILL)
        until(lambda: value(scrape(metrics), "tremolo_worker_restarts_total",
                            cause="died") == 1, "restart not counted")
        until(lambda: value(scrape(metrics), "tremolo_workers") == 2, "not back to 2")
        after = scrape(metrics)
        for key, number in now.items():
            # (a worker's own counters start again with its successor's)
            if key[0].endswith(("_total", "_count", "_bucket", "_sum")) and \
                    "open" not in key[0] and dict(key[1]).get("worker", "master") == "master":
                assert after.get(key, 0) >= number, key


def test_a_single_process_server_serves_its_own_metrics(tmp_path: Path) -> None:
    with server(tmp_path, "--workers", "0") as (proc, port, metrics):
        for _ in range(7):
            httpx.get(f"http://127.0.0.1:{port}/")
        until(lambda: value(scrape(metrics), "tremolo_requests_total", interface="asgi",
                            status="2xx") >= 8, "not counted")  # 7 + the first
        now = scrape(metrics)
        assert value(now, "tremolo_workers") == 1
        # its process series: its own, as worker 0, and no master
        assert per_process(now, "tremolo_process_id") == {"0": proc.pid}
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                     "process_open_fds", "process_start_time_seconds"):
            assert list(per_process(now, name)) == ["0"], name
            assert now[(name, ())] == per_process(now, name)["0"], name
        resident = int(Path(f"/proc/{proc.pid}/statm").read_text().split()[1]) * PAGE
        assert near(now[("process_resident_memory_bytes", ())], resident, 0.1, 2 << 20)
        assert abs(now[("process_open_fds", ())] - len(os.listdir(f"/proc/{proc.pid}/fd"))) <= 2


def test_the_endpoint_answers_only_scrapes_and_drops_abuse(tmp_path: Path) -> None:
    with server(tmp_path, "--workers", "1") as (_, _port, metrics):
        base = f"http://127.0.0.1:{metrics}"
        for path in ("/", "/other", "/metrics/", "/metrics/x", "/metricsx", "//metrics",
                     "/METRICS"):
            assert httpx.get(base + path).status_code == 404, path
        assert httpx.get(base + "/metrics?name[]=x").status_code == 200  # (a query is fine)
        for method in ("POST", "PUT", "DELETE", "OPTIONS"):
            r = httpx.request(method, base + "/metrics")
            assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", method
        for _ in range(20):  # (the first scrapes may come before the worker's figures)
            head = httpx.head(base + "/metrics")
            get = httpx.get(base + "/metrics")
            assert head.status_code == 200 and head.content == b""
            if abs(int(head.headers["content-length"]) - len(get.content)) < 200:
                break
            time.sleep(0.25)
        assert abs(int(head.headers["content-length"]) - len(get.content)) < 200
        assert head.headers["content-type"] == get.headers["content-type"]
        # what runs: tremolo's version (the crate's, which the package takes) and Python's
        cargo = tomllib.loads((Path(__file__).resolve().parents[2] / "Cargo.toml").read_text())
        build = {labels: number for (name, labels), number in scrape(metrics).items()
                 if name == "tremolo_build_info"}
        assert build == {(("implementation", platform.python_implementation()),
                          ("python", platform.python_version()),
                          ("version", cargo["package"]["version"])): 1.0}
        assert exchange(metrics, b"nonsense\r\n\r\n").startswith(b"HTTP/1.1 400")
        # a head that never ends is refused at 8 KiB, as the server refuses one (the
        # core's parser reads the scrapes too)
        with socket.create_connection(("127.0.0.1", metrics), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000)
            assert s.recv(100).startswith(b"HTTP/1.1 431 ")
        # a scrape that stalls holds nothing up
        with socket.create_connection(("127.0.0.1", metrics), timeout=5):
            assert httpx.get(f"http://127.0.0.1:{metrics}/metrics").status_code == 200


def test_a_scrape_that_came_while_the_process_was_busy_is_answered(tmp_path: Path
                                                                   ) -> None:
    """From a hostile review: with one process, a handler held the loop while a
    scrape sent its request and 8 idle connections queued behind it; each accepted
    one past 8 took the place of the oldest unread, the scrape's among them, and the
    scrape was reset."""
    with server(tmp_path, "--workers", "0") as (_, port, metrics):
        for behind in (8, 20):
            blocker = threading.Thread(target=httpx.get, args=(f"http://127.0.0.1:{port}/block",),
                                       kwargs={"timeout": 10})
            blocker.start()
            time.sleep(0.2)  # the loop is held for a second now
            with socket.create_connection(("127.0.0.1", metrics), timeout=5) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                idle = [socket.create_connection(("127.0.0.1", metrics), timeout=5)
                        for _ in range(behind)]
                try:
                    assert s.recv(100).startswith(b"HTTP/1.1 200 "), behind
                finally:
                    for c in idle:
                        c.close()
            blocker.join(10)


def test_wrong_metrics_settings_are_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(APP)
    bad = subprocess.run([sys.executable, "-m", "tremolo", "--metrics=nowhere", "m:app"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2
    assert "--metrics" in bad.stderr and "HOST:PORT" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "tremolo", "--port", str(free_port()),
                              "--metrics", f"127.0.0.1:{busy}", "m:app"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert f"cannot listen on 127.0.0.1:{busy}" in run.stderr


def test_boards_and_rendering() -> None:
    import multiprocessing

    counters = Counters("wsgi")
    counters.request(200, 0.003)
    counters.request(503, 12.0)
    counters.reject(431, 'too "large"')
    board = Board(multiprocessing.get_context("fork"))
    assert board.read() is None
    assert board.write(counters.snapshot())
    totals = Totals()
    totals.keep(board.read())  # a worker gone
    totals.restarted("reload")
    text = render([(3, counters.snapshot())], totals, 1)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert value(samples, "tremolo_requests_total", interface="wsgi", status="2xx") == 2
    assert value(samples, "tremolo_requests_total", interface="wsgi", status="5xx") == 2
    assert value(samples, "tremolo_request_duration_seconds_bucket", le="0.005") == 2
    assert value(samples, "tremolo_request_duration_seconds_bucket", le="10.0") == 2
    assert value(samples, "tremolo_request_duration_seconds_bucket", le="30.0") == 4
    assert value(samples, "tremolo_rejected_requests_total", status="431",
                 reason='too "large"') == 2
    assert value(samples, "tremolo_worker_restarts_total", cause="reload") == 1
    assert ("tremolo_event_loop_lag_seconds", (("worker", "3"),)) in samples
    time.sleep(0)  # nothing asynchronous here


# -- the process series --------------------------------------------------------------

PAGE = os.sysconf("SC_PAGESIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields past the command's name (field 3 first)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def proc_start(pid: int) -> float:
    """When `pid` started, the way ps works it out (boot time + ticks since boot)."""
    btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                 if line.startswith("btime "))
    return btime + int(proc_stat(pid)[19]) / TICKS


def per_process(samples: dict[Any, float], name: str) -> dict[str, float]:
    """worker label -> value of one process series."""
    return {dict(labels)["worker"]: number for (n, labels), number in samples.items()
            if n == name and labels}


def near(a: float, b: float, relative: float, absolute: float) -> bool:
    return abs(a - b) <= max(relative * max(abs(a), abs(b)), absolute)


def test_the_process_series_of_every_worker_and_the_master(tmp_path: Path) -> None:
    started = time.time()
    with server(tmp_path, "--workers", "2") as (proc, port, metrics):
        up = time.time()
        until(lambda: set(per_process(scrape(metrics), "tremolo_process_id")) ==
              {"0", "1", "master"}, "no process series")
        now = scrape(metrics)
        pids = {w: int(p) for w, p in per_process(now, "tremolo_process_id").items()}
        assert pids["master"] == proc.pid
        assert {pids["0"], pids["1"]} == children(proc.pid)
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                     "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                     "process_start_time_seconds"):
            assert set(per_process(now, name)) == {"0", "1", "master"}, name
            assert (name, ()) in now, name

        # each process's figures are what /proc says of it (a worker's are up to half
        # a second old: the process is idle, they hold still)
        rss = per_process(now, "process_resident_memory_bytes")
        vms = per_process(now, "process_virtual_memory_bytes")
        fds = per_process(now, "process_open_fds")
        limit = per_process(now, "process_max_fds")
        start = per_process(now, "process_start_time_seconds")
        for worker, pid in pids.items():
            size, resident = (int(n) * PAGE for n in
                              Path(f"/proc/{pid}/statm").read_text().split()[:2])
            assert 4 << 20 < rss[worker] < 1 << 30, (worker, rss[worker])
            assert near(rss[worker], resident, 0.1, 2 << 20), (worker, rss[worker], resident)
            assert near(vms[worker], size, 0.1, 8 << 20), (worker, vms[worker], size)
            assert abs(fds[worker] - len(os.listdir(f"/proc/{pid}/fd"))) <= 2, worker
            soft = next(line.split()[3] for line in
                        Path(f"/proc/{pid}/limits").read_text().splitlines()
                        if line.startswith("Max open files"))
            assert limit[worker] == int(soft)
            assert abs(start[worker] - proc_start(pid)) < 1.1, worker  # btime: whole s
            assert started - 0.5 < start[worker] < up + 0.5, worker
        # (the workers are forked once the master has imported and bound everything)
        assert start["master"] < min(start["0"], start["1"])

        # the unlabelled series are the server's: the sum of every process's
        # (the first process's start)
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                     "process_virtual_memory_bytes", "process_open_fds", "process_max_fds"):
            assert now[(name, ())] == pytest.approx(sum(per_process(now, name).values()),
                                                    abs=1e-5), name
        assert now[("process_start_time_seconds", ())] == start["master"]

        # CPU time: a worker's grows with the work it does, as /proc counts it
        cpu = per_process(now, "process_cpu_seconds_total")
        for _ in range(4):
            assert httpx.get(f"http://127.0.0.1:{port}/spin", timeout=5).status_code == 200
        until(lambda: sum(per_process(scrape(metrics), "process_cpu_seconds_total")[w]
                          - cpu[w] for w in ("0", "1")) >= 0.75, "the work is not counted")
        time.sleep(0.6)  # a snapshot taken after the work
        later = scrape(metrics)
        for worker in ("0", "1"):
            fields = proc_stat(pids[worker])
            own = (int(fields[11]) + int(fields[12])) / TICKS
            assert near(per_process(later, "process_cpu_seconds_total")[worker], own, 0,
                        0.05), worker

        # a worker killed: its series are its successor's, and the server's CPU
        # time does not go backwards
        gone = pids["0"]
        before = later[("process_cpu_seconds_total", ())]
        killed = time.time()
        os.kill(gone, signal.SIGKILL)
        seen = [before]

        def replaced() -> bool:
            samples = scrape(metrics)
            seen.append(samples[("process_cpu_seconds_total", ())])
            assert seen[-1] >= seen[-2], seen
            return per_process(samples, "tremolo_process_id").get("0", gone) != gone
        until(replaced, "worker 0 is not replaced")
        after = scrape(metrics)
        successor = int(per_process(after, "tremolo_process_id")["0"])
        assert successor in children(proc.pid)
        assert gone not in per_process(after, "tremolo_process_id").values()
        assert set(per_process(after, "process_resident_memory_bytes")) == \
            {"0", "1", "master"}
        assert per_process(after, "process_start_time_seconds")["0"] > killed - 0.5
        assert abs(per_process(after, "process_open_fds")["0"]
                   - len(os.listdir(f"/proc/{successor}/fd"))) <= 2
        # what the worker killed used is kept in the server's total
        assert after[("process_cpu_seconds_total", ())] >= before
        assert after[("process_cpu_seconds_total", ())] >= \
            sum(per_process(after, "process_cpu_seconds_total").values()) + cpu["0"]


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_numbers_are_written_as_numbers() -> None:
    counters = Counters("asgi")
    for seconds in (0.1, 0.2):  # 0.30000000000000004 added up
        counters.request(200, seconds)
    counters.loop_lag = 1e-9
    snap = counters.snapshot()
    snap["process"] = {"pid": 7, "cpu": 0.07 + 0.14, "rss": 12 << 20, "start": 1796594699.37}
    text = render([(0, snap)], Totals(), 1, master=False)
    assert "tremolo_request_duration_seconds_sum 0.3\n" in text
    assert "tremolo_request_duration_seconds_count 2\n" in text
    assert 'tremolo_event_loop_lag_seconds{worker="0"} 0\n' in text
    assert 'process_cpu_seconds_total{worker="0"} 0.21\n' in text
    assert "process_resident_memory_bytes 12582912\n" in text
    assert "process_start_time_seconds 1796594699.37\n" in text
    assert 'tremolo_request_duration_seconds_bucket{le="10.0"}' in text  # labels unchanged
    assert 'tremolo_request_duration_seconds_bucket{le="+Inf"} 2\n' in text
    for line in text.splitlines():
        if not line.startswith("#"):
            assert "e-" not in line and "0000000" not in line, line


def test_a_slot_shows_its_newest_worker_and_the_sums_count_every_process() -> None:
    old, new, other = (Counters("asgi") for _ in range(3))
    for c, pid in ((old, 10), (new, 11), (other, 12)):
        c.request(200, 0.01)
        c.loop_lag = pid / 1000
    snaps = [c.snapshot() | {"process": {"pid": pid, "cpu": pid / 10, "rss": pid << 20,
                                          "start": 1000.0 + pid}}
             for c, pid in ((old, 10), (new, 11), (other, 12))]
    totals = Totals()
    totals.keep({"process": {"cpu": 5.0}})  # a worker gone
    # a reload: worker 0 (pid 10) drains beside its successor (pid 11)
    text = render([(0, snaps[0]), (1, snaps[2]), (0, snaps[1])], totals, 2)
    for name in ("tremolo_process_id", "tremolo_event_loop_lag_seconds",
                 "process_cpu_seconds_total", "process_start_time_seconds"):
        assert text.count(name + '{worker="0"}') == 1, name
    samples = parse(text)
    assert per_process(samples, "tremolo_process_id") == {"0": 11, "1": 12,
                                                          "master": os.getpid()}
    assert per_process(samples, "tremolo_event_loop_lag_seconds") == {"0": 0.011,
                                                                      "1": 0.012}
    rss = per_process(samples, "process_resident_memory_bytes")
    assert rss["0"] == 11 << 20
    assert samples[("process_resident_memory_bytes", ())] == (33 << 20) + rss["master"]
    cpu = per_process(samples, "process_cpu_seconds_total")
    assert samples[("process_cpu_seconds_total", ())] == pytest.approx(
        5.0 + 1.0 + 1.1 + 1.2 + cpu["master"])
    assert value(samples, "tremolo_requests_total", interface="asgi", status="2xx") == 3
    # the first process's start: the master's here
    assert samples[("process_start_time_seconds", ())] == pytest.approx(1010.0)


def test_the_figures_of_this_process_and_without_proc(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    here = process.figures()
    assert here["pid"] == os.getpid()
    resident = int(Path("/proc/self/statm").read_text().split()[1]) * PAGE
    assert near(here["rss"], resident, 0.05, 1 << 20)
    assert abs(here["fds"] - (len(os.listdir("/proc/self/fd")) - 1)) <= 1
    times = os.times()
    assert abs(here["cpu"] - (times.user + times.system)) <= 0.02
    assert abs(here["start"] - proc_start(os.getpid())) < 1.1
    # no /proc (another system): CPU time and the limit, and no other series
    monkeypatch.setattr(process, "PROC", "/nonexistent/")
    bare = process.figures()
    assert set(bare) == {"pid", "cpu", "max_fds"}
    snap = Counters("asgi").snapshot() | {"process": bare}
    text = render([(0, snap)], Totals(), 1)
    assert 'process_cpu_seconds_total{worker="0"}' in text
    assert "process_max_fds" in text
    assert "process_resident_memory_bytes" not in text
    assert "process_open_fds" not in text


def test_descriptors_listed_on_older_kernels_are_counted_seldom(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # before Linux 6.2, /proc/self/fd's size is 0 and the count is a listing
    real_stat = os.stat
    monkeypatch.setattr(process.os, "stat", lambda path, *a, **kw: os.stat_result(
        (0,) * 10) if str(path).endswith("/fd") else real_stat(path, *a, **kw))
    monkeypatch.setattr(process, "_listed", None)
    first = process.figures()["fds"]
    assert first == len(os.listdir("/proc/self/fd")) - 1
    extra = [os.dup(0) for _ in range(5)]
    try:
        assert process.figures()["fds"] == first  # listed again only LISTING_KEPT later
        monkeypatch.setattr(process, "LISTING_KEPT", 0.0)
        assert process.figures()["fds"] == first + 5
    finally:
        for fd in extra:
            os.close(fd)


# -- the Grafana dashboard -----------------------------------------------------------

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
#: PromQL words that are not metric names
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "and", "or", "unless", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)  # label matchers, ranges
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ",
                  expr)  # label lists
    names = set()
    for word in re.finditer(r"(?<![\w$.])[A-Za-z_:][\w:]*", expr):
        if expr[word.end():].lstrip().startswith("("):
            continue  # a function, or an aggregation
        if word.group() not in PROMQL_WORDS:
            names.add(word.group())
    return names


def test_metric_names_are_found_in_promql() -> None:
    assert metric_names('histogram_quantile(0.9, sum by (le) (rate(a_bucket{x="y(z)",'
                        'w=~"$w"}[$__rate_interval])))') == {"a_bucket"}
    assert metric_names("sum(rate(a_sum[5m])) / sum(rate(a_count[5m])) > bool 2") == \
        {"a_sum", "a_count"}
    assert metric_names("time() - max(b{c=\"\"}) and on (d) e offset 5m") == {"b", "e"}


def test_the_dashboard_shows_what_the_endpoint_serves(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    # importable: a datasource input that every panel and query uses
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    exprs = []
    for p in panels:
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]) and p["gridPos"]["x"] + \
            p["gridPos"]["w"] <= 24, p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
            exprs.append(t["expr"])
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"]["uid"] == "${DS_PROMETHEUS}"
        exprs.append(re.sub(r"^label_values\((.*), *\w+\)$", r"\1",
                            variable["query"]["query"]))
    used = set().union(*map(metric_names, exprs))

    # what a real server serves, its families' sample names by type
    with server(tmp_path, "--workers", "2") as (_, _port, metrics):
        until(lambda: "process_open_fds" in httpx.get(
            f"http://127.0.0.1:{metrics}/metrics").text, "no process series")
        text = httpx.get(f"http://127.0.0.1:{metrics}/metrics").text
    families = {}
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        families[family.name] = {family.name + s for s in suffixes.get(family.type, [""])}
    served = set().union(*families.values())
    assert used <= served, f"not served: {sorted(used - served)}"
    # and every family is on the dashboard
    assert [name for name, names in families.items() if not names & used] == []


@pytest.mark.parametrize("workers", ["0", "1"])
def test_the_start_says_where_the_metrics_are_even_on_port_0(tmp_path: Path,
                                                            workers: str) -> None:
    """`--metrics 127.0.0.1:0` was announced as :0; with one process, not at all."""
    (tmp_path / "mapp.py").write_text(APP)
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--port", "0", "--worker-num",
                             workers, "--metrics", "127.0.0.1:0", "mapp:app"], cwd=tmp_path,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        seen = ""
        deadline = time.monotonic() + 15
        while (m := re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", seen)) is None:
            assert time.monotonic() < deadline and proc.stderr is not None, seen
            line = proc.stderr.readline()
            assert line, seen
            seen += line
        port = int(m[1])
        assert port != 0
        eventually(lambda: httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2
                                     ).status_code == 200, "the endpoint", proc)
    finally:
        assert stop_process(proc) == 0


# -- the endpoint in this process, driven by hand --------------------------------


@contextmanager
def endpoint() -> Iterator[Any]:
    from tremolo.metrics.endpoint import Endpoint

    ep = Endpoint(("127.0.0.1", 0), lambda: "up 1\n")
    try:
        yield ep
    finally:
        ep.close()


def test_a_connection_past_the_limit_is_held_when_answering_made_room() -> None:
    """From a cold read: the oldest held connections had sent their requests by the
    time a 9th came; answering them made room, and the 9th was closed all the same."""
    from tremolo.metrics.endpoint import EVICT_AFTER, MAX_CLIENTS

    with endpoint() as ep:
        held = [socket.create_connection(("127.0.0.1", ep.port), timeout=5)
                for _ in range(MAX_CLIENTS)]
        for _ in range(20):
            ep.poll(0.01)
        time.sleep(EVICT_AFTER * 2)
        late = socket.create_connection(("127.0.0.1", ep.port), timeout=5)
        for s in held:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.05)
        late.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(50):
            ep.poll(0.01)
        for s in [*held, late]:
            assert s.recv(100).startswith(b"HTTP/1.1 200 ")
            s.close()


def test_the_watch_is_not_woken_at_once_while_accepting_is_paused() -> None:
    """From a cold read: out of descriptors, an idle connection old enough to make
    way set the master's wait to 0 for the whole pause (85,000 turns in 0.4 s)."""
    from tremolo.metrics.endpoint import MAX_CLIENTS

    with endpoint() as ep:
        held = [socket.create_connection(("127.0.0.1", ep.port), timeout=5)
                for _ in range(MAX_CLIENTS)]
        for _ in range(20):
            ep.poll(0.01)
        now = time.monotonic()
        ep.accepting, ep.paused_until = False, now + 0.5
        assert ep.due(now) >= 0.49
        for s in held:
            s.close()


def test_a_request_with_a_body_gets_the_answer_its_method_gets() -> None:
    """The core's parser reads the scrapes: a declared body is let be (POST is 405
    as before, not 413)."""
    with endpoint() as ep:
        with socket.create_connection(("127.0.0.1", ep.port), timeout=5) as s:
            s.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            for _ in range(20):
                ep.poll(0.01)
            answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 405 ") and b"Allow: GET, HEAD" in answer
