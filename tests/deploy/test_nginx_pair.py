"""Two tremolo instances behind one real nginx, as docs/deployment.md sets it up:
keep-alive to the upstreams, a streamed body and SSE as they are produced, WebSocket,
the client address, and a SIGTERM of one instance under load without a failed request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from ..helpers import eventually, free_port, start_nginx, stop_process

pytestmark = pytest.mark.external  # nginx

APP = """
import asyncio, os
from tremolo import Tremolo

app = Tremolo()
NAME = os.environ["INSTANCE"].encode()

@app.route("/who")
async def who(request, **server):
    return NAME + b" " + request.ip

@app.route("/stream")
async def stream(**server):
    for i in range(3):
        yield b"part %d\\n" % i
        await asyncio.sleep(0.3)

@app.route("/events/feed")
async def feed(sse=None, **server):
    for i in range(3):
        await sse.send(f"event {i}")
        await asyncio.sleep(0.3)
    await sse.close()

@app.route("/ws")
async def ws(websocket=None, **server):
    async for message in websocket:
        await websocket.send(NAME.decode() + ":" + message)

@app.route("/slow")
async def slow(**server):
    await asyncio.sleep(0.2)
    return NAME
"""

HTTP = """
    upstream pair {{
        server unix:{d}/a.sock;
        server unix:{d}/b.sock;
        keepalive 8;
    }}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://pair;
            proxy_http_version 1.1;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
        }}
        location /events/ {{
            proxy_pass http://pair;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
"""


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[str, dict[str, subprocess.Popen[bytes]]]]:
    (tmp_path / "pairapp.py").write_text(APP)
    instances = {}
    for name in ("a", "b"):
        instances[name] = subprocess.Popen(
            [sys.executable, "-m", "tremolo", "--bind", str(tmp_path / f"{name}.sock"),
             "--workers", "0", "--no-access-log", "--forwarded-allow-ips", "unix",
             "--shutdown-timeout", "5", "pairapp:app"],
            cwd=tmp_path, env={**os.environ, "INSTANCE": name},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    proxy = start_nginx(tmp_path, HTTP.format(d=tmp_path, port=port))
    try:
        for name in ("a", "b"):
            eventually((tmp_path / f"{name}.sock").exists, name, instances[name])
        url = f"http://127.0.0.1:{port}"
        eventually(lambda: httpx.get(url + "/who", timeout=1).status_code == 200, "nginx",
                   proxy)
        yield url, instances
    finally:
        stop_process(proxy, signal.SIGQUIT, 10)
        for proc in instances.values():
            stop_process(proc, signal.SIGTERM, 15)


def test_keep_alive_client_address_streaming_sse_and_websocket(
        pair: tuple[str, dict[str, subprocess.Popen[bytes]]]) -> None:
    url, _ = pair
    with httpx.Client(timeout=5) as client:
        answers = {client.get(url + "/who").text for _ in range(20)}
    assert answers == {"a 127.0.0.1", "b 127.0.0.1"}  # both upstreams, the real client
    for path in ("/stream", "/events/feed"):
        started = time.monotonic()
        firsts = []
        with httpx.stream("GET", url + path, timeout=5) as r:
            for chunk in r.iter_text():
                if chunk.strip():
                    firsts.append(time.monotonic() - started)
        assert firsts and firsts[0] < 0.25, (path, firsts)  # not held until the end
    with connect(url.replace("http", "ws") + "/ws", open_timeout=5) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) in ("a:hello", "b:hello")


def test_stopping_one_instance_loses_no_request(
        pair: tuple[str, dict[str, subprocess.Popen[bytes]]]) -> None:
    url, instances = pair
    failures: list[str] = []
    served: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                try:
                    r = client.get(url + "/slow")
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:80]}")
                    else:
                        served.append(r.text)
                except httpx.TransportError as exc:
                    failures.append(repr(exc))
    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(1)
    instances["a"].send_signal(signal.SIGTERM)  # drains, then exits
    assert instances["a"].wait(15) == 0
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join(15)
    assert not failures, failures[:5]
    assert served.count("a") > 0 and served[-1] == "b"  # b carried on alone
