"""The Prometheus endpoint (--metrics): scraped with a real client, parsed with the
official prometheus_client parser, and checked against the requests sent, across
worker processes, a worker killed, and a single-process server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tremolo.metrics import Board, Totals, render
from tremolo.protocols.counters import Counters

from .helpers import eventually, exchange, free_port, stop_process
from .test_supervisor import children, until

APP = """
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
            if key[0].endswith(("_total", "_count", "_bucket", "_sum")) and \
                    "open" not in key[0]:
                assert after.get(key, 0) >= number, key


def test_a_single_process_server_serves_its_own_metrics(tmp_path: Path) -> None:
    with server(tmp_path, "--workers", "0") as (_, port, metrics):
        for _ in range(7):
            httpx.get(f"http://127.0.0.1:{port}/")
        until(lambda: value(scrape(metrics), "tremolo_requests_total", interface="asgi",
                            status="2xx") >= 8, "not counted")  # 7 + the first
        assert value(scrape(metrics), "tremolo_workers") == 1


def test_the_endpoint_answers_only_scrapes_and_drops_abuse(tmp_path: Path) -> None:
    with server(tmp_path, "--workers", "1") as (_, _port, metrics):
        assert httpx.get(f"http://127.0.0.1:{metrics}/other").status_code == 404
        assert httpx.post(f"http://127.0.0.1:{metrics}/metrics").status_code == 405
        head = httpx.head(f"http://127.0.0.1:{metrics}/metrics")
        assert head.status_code == 200 and int(head.headers["content-length"]) > 100
        assert exchange(metrics, b"nonsense\r\n\r\n").startswith(b"HTTP/1.1 400")
        # a head that never ends is cut at 8 KiB
        with socket.create_connection(("127.0.0.1", metrics), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000)
            assert s.recv(100) == b""
        # a scrape that stalls holds nothing up
        with socket.create_connection(("127.0.0.1", metrics), timeout=5):
            assert httpx.get(f"http://127.0.0.1:{metrics}/metrics").status_code == 200


def test_wrong_metrics_settings_are_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(APP)
    bad = subprocess.run([sys.executable, "-m", "tremolo", "--metrics", "nowhere", "m:app"],
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
