"""What Tremolo programs reach on the request beyond its documented reading API, as
the original has it: recv(size, timeout=...) and its timeout, request.protocol
(options, create_task), request.is_valid."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tremolo import Tremolo
from tremolo.testing import serve_in_thread

from ..helpers import exchange, split_responses
from ..wsclient import RawWS

app = Tremolo()
#: tasks the handlers made with request.protocol.create_task, by name
TASKS: dict[str, asyncio.Task[Any]] = {}


@app.on_request
async def set_option(request: Any, **server: Any) -> None:
    if request.path == b"/options":
        request.protocol.options["max_queue_size"] = 123
        request.protocol.options["my_own"] = "kept"


@app.on_request
async def read_option_back(request: Any, **server: Any) -> None:
    if request.path == b"/options":
        request.ctx.seen = request.protocol.options["max_queue_size"]


@app.route("/options")
async def options(request: Any, **server: Any) -> str:
    opts = request.protocol.options
    return json.dumps({"seen": request.ctx.seen, "mine": opts["my_own"],
                       "limit": opts["client_max_body_size"], "dict": isinstance(opts, dict),
                       "same": request.protocol is request.protocol,
                       "valid": request.is_valid})


@app.route("/view-id")
async def view_id(request: Any, **server: Any) -> str:
    return str(id(request.protocol))


@app.route("/maxqueue")
async def maxqueue(request: Any, **server: Any) -> str:
    # a pipelined request waits behind this one: with no room for queued events,
    # the connection stops reading (the write takes effect on it)
    before = request.transport.is_reading()
    request.protocol.options["max_queue_size"] = 0
    return json.dumps([before, request.transport.is_reading()])


@app.route("/upload-rate")
async def upload_rate(request: Any, **server: Any) -> str:
    request.protocol.options["upload_rate"] = int(request.query_string or 0)
    t0 = time.monotonic()
    size = len(await request.body())
    return json.dumps([size, time.monotonic() - t0])


@app.route("/recv")
async def recv(request: Any, **server: Any) -> bytes:
    first = await request.recv(4)
    rest = await request.recv()
    return b"|".join([first, rest, await request.recv(0), await request.recv(10)])


@app.route("/recv-get")
async def recv_get(request: Any, **server: Any) -> str:
    t0 = time.monotonic()
    data = await request.recv(100)
    return json.dumps([data.decode(), time.monotonic() - t0])


@app.route("/recv-timeout")
async def recv_timeout(request: Any, **server: Any) -> bytes:
    try:
        await request.recv(100, timeout=0.2)
    except TimeoutError as exc:
        return b"caught %s" % str(exc).encode()
    return b"no timeout"


@app.route("/read-unhandled")
async def read_unhandled(request: Any, **server: Any) -> bytes:
    return await request.read(100)


async def forever() -> None:
    await asyncio.sleep(3600)


async def fail_soon() -> None:
    await asyncio.sleep(0.05)
    raise RuntimeError("the task's own bug")


@app.route("/task")
async def task(request: Any, **server: Any) -> bytes:
    name = request.query_string.decode()
    TASKS[name] = request.protocol.create_task(fail_soon() if name == "fail" else forever())
    return b"started"


@app.route("/sync-task")
def sync_task(request: Any, **server: Any) -> bytes:
    request.protocol.options["max_queue_size"] = 1
    TASKS["sync"] = request.protocol.create_task(forever())
    return b"started %d" % request.protocol.options["max_queue_size"]


@app.route("/task-state")
async def task_state(request: Any, **server: Any) -> str:
    t = TASKS[request.query_string.decode()]
    return json.dumps({"done": t.done(), "cancelled": t.cancelled()})


@app.route("/ws-task")
async def ws_task(request: Any, websocket: Any = None, **server: Any) -> None:
    await websocket.accept()
    TASKS["ws"] = request.protocol.create_task(forever())
    await websocket.send("started")
    await websocket.recv()


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    with serve_in_thread(app, loop=request.param, request_timeout=1, body_min_rate=0,
                         shutdown_timeout=2) as (_, p):
        yield p


def get(port: int, target: str, extra: bytes = b"", timeout: float = 5) -> tuple[int, bytes]:
    [(status, _, body)] = split_responses(exchange(
        port, b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n"
        % (target.encode(), extra), timeout=timeout))
    return int(status.split()[1]), body


def state(port: int, name: str) -> dict[str, bool]:
    return json.loads(get(port, f"/task-state?{name}")[1])  # type: ignore[no-any-return]


def wait_for(check: Any, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_options_are_the_listeners_and_writes_are_read_back(port: int) -> None:
    assert json.loads(get(port, "/options")[1]) == {
        "seen": 123, "mine": "kept", "limit": 2 * 1024 * 1024, "dict": True, "same": True,
        "valid": True}


def test_the_view_is_the_connections(port: int) -> None:
    raw = b"GET /view-id HTTP/1.1\r\nHost: t\r\n\r\n"
    first, second = split_responses(exchange(port, raw + raw.replace(
        b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")))
    assert first[2] == second[2]  # one object for the connection's requests
    assert get(port, "/view-id")[1] != first[2]


def test_a_max_queue_size_write_takes_effect_on_the_connection(port: int) -> None:
    two = (b"GET /maxqueue HTTP/1.1\r\nHost: t\r\n\r\n"
           b"GET /maxqueue HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    first, second = split_responses(exchange(port, two))
    assert json.loads(first[2]) == [True, False]
    assert second[0] == b"HTTP/1.1 200 OK"  # paused, not stuck: answered in turn


@pytest.mark.parametrize("rate", [0, 40000])
def test_an_upload_rate_write_takes_effect_on_the_connection(port: int, rate: int) -> None:
    # the body comes after the write (100-continue), in two reads: past the burst
    # (16 KiB), the second waits for what the first owed (20000 bytes at 40000/s)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /upload-rate?%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                  b"Expect: 100-continue\r\nContent-Length: 36394\r\n\r\n" % rate)
        assert s.recv(4096).startswith(b"HTTP/1.1 100 ")
        s.sendall(b"x" * 36384)
        time.sleep(0.1)
        s.sendall(b"y" * 10)
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    size, waited = json.loads(out.partition(b"\r\n\r\n")[2])
    assert size == 36394
    assert (waited > 0.3) == bool(rate), waited  # about 0.5 s with the rate, 0.1 without


def test_recv_with_a_size(port: int) -> None:
    raw = (b"POST /recv HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 10\r\n"
           b"\r\n0123456789")
    [(status, _, body)] = split_responses(exchange(port, raw))
    assert status == b"HTTP/1.1 200 OK" and body == b"0123|456789||"


def test_recv_on_a_request_without_body_is_empty_at_once(port: int) -> None:
    # RFC 9112 §6.3: no Content-Length nor Transfer-Encoding is no body (the original
    # waits for one until its timeout)
    status, body = get(port, "/recv-get")
    data, waited = json.loads(body)
    assert status == 200 and data == "" and waited < 0.5


def test_a_recv_timeout_is_a_timeout_error(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /recv-timeout HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n123")
        assert s.recv(4096).endswith(b"caught 0: recv timeout")


def test_an_unhandled_recv_timeout_is_408(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /read-unhandled HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n1")
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    assert out.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert out.endswith(b"\r\n\r\n0: recv timeout") and time.monotonic() - t0 < 3


@pytest.mark.parametrize(("target", "name", "answer"), [
    ("/task?keep", "keep", b"started"),
    # a plain handler runs in a thread: its task is made on the loop
    ("/sync-task", "sync", b"started 1"),
])
def test_create_task_is_cancelled_when_the_connection_closes(
        port: int, target: str, name: str, answer: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % target.encode())
        assert s.recv(4096).endswith(answer)
        time.sleep(0.1)
        assert state(port, name) == {"done": False, "cancelled": False}
    assert wait_for(lambda: state(port, name)["cancelled"])


def test_a_failing_task_closes_its_connection(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /task?fail HTTP/1.1\r\nHost: t\r\n\r\n")
        assert s.recv(4096).endswith(b"started")
        assert s.recv(4096) == b""  # closed by the task's failure, as the original


def test_create_task_after_a_websocket_takeover(port: int) -> None:
    with RawWS(port, "/ws-task") as ws:
        assert ws.status == 101 and ws.recv_frame() == (True, 1, b"started")
        assert state(port, "ws") == {"done": False, "cancelled": False}
    assert wait_for(lambda: state(port, "ws")["cancelled"])
