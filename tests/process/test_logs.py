"""Logs: the access log and its atoms, refused requests, the server's own loggers
(the root logger is the application's), --log-config, and the messages of starting
and stopping."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tremolo import Tremolo
from tremolo.asgi import ASGIAdapter
from tremolo.logs import AccessLog, check_format
from tremolo.testing import serve_in_thread

from ..helpers import exchange, free_port

native = Tremolo()


@native.route("/hello")
async def hello(response: Any, **server: Any) -> bytes:
    response.set_header("X-Trace", "t-1")
    return b"hello"


@native.route("/stream")
async def stream(**server: Any) -> Any:
    yield b"abc"
    yield b"de"


@native.route("/ws")
async def ws(websocket: Any = None, **server: Any) -> None:
    await websocket.accept()
    await websocket.close()


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with serve_in_thread(native, shutdown_timeout=2, access_log=True,
                         access_log_format="combined") as (_, p):
        yield p


def lines(caplog: pytest.LogCaptureFixture, name: str = "tremolo.access") -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == name]


def wait_for(caplog: pytest.LogCaptureFixture, count: int, name: str = "tremolo.access"
             ) -> list[str]:
    deadline = time.monotonic() + 5
    while len(lines(caplog, name)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return lines(caplog, name)


def test_combined_lines(port: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    auth = "Basic " + base64.b64encode(b"ann:secret").decode()
    httpx.get(f"http://127.0.0.1:{port}/hello?q=1", timeout=5,
              headers={"Referer": "http://ref.test/", "User-Agent": "agent/1",
                       "Authorization": auth})
    httpx.head(f"http://127.0.0.1:{port}/hello", timeout=5)
    httpx.get(f"http://127.0.0.1:{port}/stream", timeout=5)
    httpx.get(f"http://127.0.0.1:{port}/nothing", timeout=5)
    got = wait_for(caplog, 4)
    first, head, streamed, missing = got[:4]
    assert first.startswith("127.0.0.1 - ann [")
    assert first.endswith('"GET /hello?q=1 HTTP/1.1" 200 5 "http://ref.test/" "agent/1"')
    assert '"HEAD /hello HTTP/1.1" 200 - ' in head  # no body bytes were sent
    assert '"GET /stream HTTP/1.1" 200 5 ' in streamed
    assert '"GET /nothing HTTP/1.1" 404 ' in missing


def test_the_websocket_handshake_is_logged(port: int, caplog: pytest.LogCaptureFixture
                                           ) -> None:
    caplog.set_level(logging.INFO)
    exchange(port, b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n\r\n", timeout=2)
    assert any('"GET /ws HTTP/1.1" 101 ' in line for line in wait_for(caplog, 1))


@native.route("/echo")
async def echo(websocket: Any = None, **server: Any) -> None:
    async for message in websocket:
        await websocket.send(message)


async def talk(port: int) -> None:
    import websockets

    async with websockets.connect(f"ws://127.0.0.1:{port}/echo", compression=None) as ws:
        await ws.send("x" * 100)
        assert await ws.recv() == "x" * 100
        await ws.close(4001, "bye")


@pytest.mark.parametrize("fmt", ["default", "json", "%(r)s %(s)s %(I)s %(b)s"])
async def test_a_websocket_is_logged_when_it_closes(
        fmt: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with serve_in_thread(native, access_log=True, access_log_format=fmt,
                         shutdown_timeout=2) as (_, p):
        started = time.monotonic()
        await talk(p)
        lasted = time.monotonic() - started
        # (only this server's lines: another test's server in this worker may log too)
        deadline = time.monotonic() + 5
        while len(mine := [x for x in lines(caplog) if "/echo" in x]) < 2:
            assert time.monotonic() < deadline, lines(caplog)
            await asyncio.sleep(0.02)
    handshake, closed = mine[-2:]
    # the client sent 100 bytes of text in a masked frame (6 bytes of head) and a
    # close (2 + 4 mask + 2 code + 3 reason); the server 102 and its close (2 + 2 code)
    if fmt == "json":
        record = json.loads(closed)
        assert json.loads(handshake)["status"] == 101
        assert (record["websocket"], record["status"], record["bytes_in"], record["bytes"],
                record["target"]) == (True, 4001, 117, 106, "/echo")
        assert 0 <= record["duration_ms"] <= lasted * 1000 + 1
    elif fmt == "default":
        assert '"GET /echo HTTP/1.1" 101 - ' in handshake
        assert re.fullmatch(r'127\.0\.0\.1 \[.+\] "GET /echo HTTP/1\.1" 4001 106 \d+ms '
                            r'\(WebSocket closed, 117 bytes in\)', closed), closed
    else:
        assert closed == "GET /echo HTTP/1.1 4001 117 106"


@pytest.mark.parametrize("fmt", ["default", "combined", "json"])
def test_requests_the_server_refuses_are_in_the_access_log(
        fmt: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    sent = [(b"GET / HTTP/1.1\r\nHost: t\r\nBad Field: x\r\n\r\n", 400),
            (b"POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 99999\r\n\r\n", 413),
            (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
            (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"b" * 600 + b"\r\n\r\n", 431),
            (b"GET / HTTP/1.1\r\nHost: t\r\n", 408)]  # and never the rest of the head
    with serve_in_thread(native, access_log=True, access_log_format=fmt, shutdown_timeout=2,
                         client_max_body_size=1000, max_request_line=256,
                         client_max_header_size=512, request_timeout=0.5) as (_, p):
        for data, _ in sent:
            exchange(p, data, timeout=5)
        got = wait_for(caplog, len(sent))
    assert len(got) == len(sent), got
    for line, (_, status) in zip(got, sent, strict=True):
        if fmt == "json":
            record = json.loads(line)
            assert (record["status"], record["client"], record["target"], record["refused"]
                    ) == (status, "127.0.0.1", None, True), line
            assert record["bytes"] > 0
        elif fmt == "default":
            assert re.fullmatch(rf'127\.0\.0\.1 \[[^]]+\] "-" {status} \d+ 0ms', line), line
        else:
            assert re.fullmatch(rf'127\.0\.0\.1 - - \[[^]]+\] "-" {status} \d+ "-" "-"',
                                line), line


def test_a_connection_over_the_limit_is_in_the_access_log(
        caplog: pytest.LogCaptureFixture) -> None:

    caplog.set_level(logging.INFO)
    with serve_in_thread(native, access_log=True, shutdown_timeout=2,
                         limit_concurrency=1) as (_, p), \
            socket.create_connection(("127.0.0.1", p), timeout=5) as first:
        first.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        assert first.recv(4096).startswith(b"HTTP/1.1 200 ")  # it holds the one place
        with socket.create_connection(("127.0.0.1", p), timeout=5) as second:
            # answered on arrival, before it sends anything
            assert second.recv(4096).startswith(b"HTTP/1.1 503 ")
        got = wait_for(caplog, 2)
    assert re.fullmatch(r'127\.0\.0\.1 \[[^]]+\] "-" 503 \d+ 0ms', got[1]), got


def test_atoms_and_json(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    fmt = "%(m)s %(U)s %(q)s %(H)s %(s)s %(B)s %({x-trace}o)s %({x-in}i)s %(D)s %(L)s"
    with serve_in_thread(native, access_log=True, access_log_format=fmt,
                         shutdown_timeout=2) as (_, p):
        httpx.get(f"http://127.0.0.1:{p}/hello?a=b", headers={"X-In": "v"}, timeout=5)
        [line] = wait_for(caplog, 1)
    method, path, query, proto, status, size, trace, given, micros, seconds = line.split()
    assert (method, path, query, proto, status, size, trace, given) == (
        "GET", "/hello", "a=b", "HTTP/1.1", "200", "5", "t-1", "v")
    assert int(micros) >= 0 and float(seconds) < 5
    caplog.clear()
    with serve_in_thread(native, access_log=True, access_log_format="json",
                         shutdown_timeout=2) as (_, p):
        httpx.get(f"http://127.0.0.1:{p}/hello", timeout=5)
        [line] = wait_for(caplog, 1)
    record = json.loads(line)
    assert {k: record[k] for k in ("client", "method", "target", "status", "bytes")} == {
        "client": "127.0.0.1", "method": "GET", "target": "/hello", "status": 200,
        "bytes": 5}
    assert record["user"] is None
    caplog.clear()
    auth = "Basic " + base64.b64encode("zoë:secret".encode()).decode()
    with serve_in_thread(native, access_log=True, access_log_format="json",
                         shutdown_timeout=2) as (_, p):
        httpx.get(f"http://127.0.0.1:{p}/hello", headers={"Authorization": auth}, timeout=5)
        [line] = wait_for(caplog, 1)
    assert json.loads(line)["user"] == "zoë"


def test_a_forwarded_client_is_logged_from_a_trusted_proxy(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with serve_in_thread(native, access_log=True, shutdown_timeout=2) as (_, p):
        httpx.get(f"http://127.0.0.1:{p}/hello", headers={"X-Forwarded-For": "203.0.113.9"},
                  timeout=5)
        [line] = wait_for(caplog, 1)
    # the default format: with the time, as gunicorn's and nginx's
    assert re.fullmatch(r'203\.0\.113\.9 \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
                        r'"GET /hello HTTP/1\.1" 200 5 \d+ms', line), line


def test_bad_formats_are_refused() -> None:
    assert check_format("combined").endswith('"%(f)s" "%(a)s"')
    for bad in ("%(zz)s", "%(h)d %", "%(h)s %(r"):
        with pytest.raises(ValueError):
            AccessLog(bad)
    # from a hostile review: each passed the check, then failed on every request (a
    # worker's SyntaxError, a traceback per line, an object's repr per line)
    for bad, said in [("", "empty"), ("  ", "empty"), ("%s", "only %(atom)s and %%"),
                      ("%(h)s %(s)d", "only %(atom)s and %%"),
                      ("%({\u00fc\u20ac}i)s", "printable ASCII"), ("%({}o)s", "ASCII")]:
        with pytest.raises(ValueError, match=re.escape(said)):
            check_format(bad)
    assert check_format("100%% %(s)s") == AccessLog("100%% %(s)s").fmt == "100%% %(s)s"
    assert AccessLog("json").fmt == "json"


class _Lines(AccessLog):
    """An access log whose lines are kept (as with a logging setup of the user's own)."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self.gather = False
        self.got: list[str] = []

    def _emit(self, line: str) -> None:
        self.got.append(line)


class _Peer:
    """A connection as a refused request's line reads it: its peer."""

    def __init__(self, peer: str) -> None:
        self.info = type("Info", (), {"peer": (peer, 1)})()


def test_a_stream_that_cannot_be_written_is_said_once(caplog: pytest.LogCaptureFixture
                                                     ) -> None:
    """A full disk (/dev/full) used to cost a traceback per line in the error log."""
    class Full:
        def __init__(self) -> None:
            self.full = True
            self.written: list[str] = []

        def write(self, text: str) -> None:
            if self.full:
                raise OSError(28, "No space left on device")
            self.written.append(text)

        def flush(self) -> None:
            pass

    log = AccessLog("%(h)s %(s)s")
    stream = Full()
    log.handler, log.gather = SimpleNamespace(stream=stream), True
    caplog.set_level(logging.INFO)
    for _ in range(3):
        log.refused(_Peer("192.0.2.1"), 400, 0)  # no loop: each line flushed at once
    said = [r.getMessage() for r in caplog.records if r.name == "tremolo.error"]
    assert said == ["the access log cannot be written ([Errno 28] No space left on "
                    "device); its lines are dropped until it can"]
    stream.full = False
    log.refused(_Peer("192.0.2.1"), 431, 0)
    assert stream.written == ["192.0.2.1 431\n"] and not log.failing


def test_a_log_file_that_cannot_be_written_is_said_once() -> None:
    """An error log on a full disk used to print a traceback per message."""
    code = ("import logging; from tremolo import logs\n"
            "logs.configure('INFO', '%(message)s', error_file='/dev/full')\n"
            "for n in range(5): logging.getLogger('tremolo').info('message %d', n)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0
    assert re.fullmatch(r"tremolo\[\d+\]: cannot write the log /dev/full \(\[Errno 28\] No "
                        r"space left on device\); its messages are dropped until it can\n",
                        done.stderr), done.stderr


def test_every_unprintable_character_is_escaped_as_python_sees_it() -> None:
    # the core's table against Python's str.isprintable, over every code point (the
    # peer is the one atom a test can fill with anything): the same verdict but for
    # code points Unicode has not assigned (written as they are)
    import unicodedata
    log = _Lines("%(h)s")
    step = 4096
    for start in range(0, 0x110000, step):
        chars = [chr(c) for c in range(start, start + step) if not 0xd800 <= c < 0xe000]
        log.refused(_Peer("".join(chars)), 400, 0)
        written = log.got.pop()
        pieces = re.findall(r'\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|["\\])|.', written,
                            re.S)
        assert len(pieces) == len(chars), hex(start)
        for c, piece in zip(chars, pieces, strict=True):
            escaped = piece != c
            expected = not c.isprintable() or c in '"\\'
            if escaped != expected:
                assert unicodedata.category(c) == "Cn", (hex(ord(c)), piece)


def test_refused_requests_are_logged_once_without_a_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with serve_in_thread(lambda s: ASGIAdapter(_asgi, s), shutdown_timeout=2,
                         access_log=True) as (_, p):
        exchange(p, b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n")
        exchange(p, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        found = wait_for(caplog, 2, "tremolo.error")
    assert len(found) == 2
    assert "refused a request from 127.0.0.1:" in found[0]
    assert found[0].endswith("400 Bad Request: obsolete line folding")
    assert "414 URI Too Long" in found[1]
    records = [r for r in caplog.records if r.name == "tremolo.error"]
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in records)


async def _asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


# -- under python3 -m tremolo ------------------------------------------------------

APP = """
import logging
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    logging.getLogger("myapp").warning("from the application")
    body = repr([type(h).__name__ for h in logging.getLogger().handlers]).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    (tmp_path / "logapp.py").write_text(APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--port", str(port), *args,
                             "logapp:app"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc, port


def read_until(stream: Any, text: str, timeout: float = 15) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        line = stream.readline()
        assert line, f"no {text!r} in {seen!r}"
        assert time.monotonic() < deadline, seen
        seen += line
    return seen


def test_startup_access_log_and_stopping_under_the_cli(tmp_path: Path) -> None:
    proc, port = start(tmp_path, "--workers", "2")
    try:
        banner = read_until(proc.stderr, "press CTRL+C to quit")
        assert "tremolo " in banner and "serving logapp:app (ASGI 3)" in banner
        assert f"on http://127.0.0.1:{port}, uvloop loop, 2 workers (pid " in banner
        r = httpx.get(f"http://127.0.0.1:{port}/x", timeout=5)
        assert r.text == "[]"  # the root logger is the application's: no handler set
        assert '"GET /x HTTP/1.1" 200' in read_until(proc.stdout, "GET /x")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "stopping 2 worker(s)" in err


def _until(check: Any, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.05)


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("workers", ["0", "2"])
def test_sigusr1_reopens_the_log_files(tmp_path: Path, workers: str) -> None:
    """logrotate's postrotate: the files moved away, SIGUSR1 to the master (or the one
    process) and every process writes to new ones by the same names, as nginx and
    gunicorn do. SIGUSR1 used to kill the master."""
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    proc, port = start(tmp_path, "--workers", workers, "--access-log-file", str(access),
                       "--error-log-file", str(errors))
    try:
        _until(lambda: "press CTRL+C to quit" in _text(errors), "serving line")
        httpx.get(f"http://127.0.0.1:{port}/before", timeout=5)
        _until(lambda: "GET /before" in _text(access), "access line")
        access.rename(tmp_path / "access.log.1")
        errors.rename(tmp_path / "error.log.1")
        proc.send_signal(signal.SIGUSR1)
        _until(lambda: "log files reopened (SIGUSR1)" in _text(errors), "reopened line")
        # the workers reopen theirs as the signal reaches them: in a row, requests
        # that each worker answers all land in the new file
        landed = 0
        for n in range(200):
            if landed == 8:
                break
            httpx.get(f"http://127.0.0.1:{port}/after-{n}", timeout=5)
            time.sleep(0.02)
            landed = landed + 1 if f"GET /after-{n} " in _text(access) else 0
        assert landed == 8, _text(access)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "GET /before" in _text(tmp_path / "access.log.1")  # nothing lost before
    assert "stopped" in _text(errors) and "reopened" not in _text(tmp_path / "error.log.1")


def _workers(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(p) for p in text.split()}


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/x", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_sigusr1_while_the_logs_cannot_be_written_leaves_the_master_supervising(
        tmp_path: Path) -> None:
    """From a hostile review: reopening flushed the old file first, which raised on a
    full disk, out of the master's watch loop; it no longer replaced a worker killed
    afterwards, and never passed the signal on."""
    proc, port = start(tmp_path, "--workers", "2", "--error-log-file", "/dev/full",
                       "--access-log-file", "/dev/full")
    try:
        _until(lambda: _answers(port) and len(_workers(proc.pid)) == 2, "two workers")
        for _ in range(3):
            proc.send_signal(signal.SIGUSR1)
            time.sleep(0.2)
        before = _workers(proc.pid)
        os.kill(min(before), signal.SIGKILL)
        _until(lambda: len(_workers(proc.pid)) == 2 and _workers(proc.pid) != before,
               "the killed worker replaced")
        assert _answers(port) and proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err, err
    # said once per process (the master and each of its workers), not per message
    assert err.count("cannot write the log /dev/full") <= 5, err


def test_sigusr1_to_the_whole_group_replaces_no_worker(tmp_path: Path) -> None:
    """systemctl kill signals every process of a unit unless told otherwise: a
    worker takes SIGUSR1 as the master does (its logs reopened), not as "replaced"."""
    (tmp_path / "logapp.py").write_text(APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--port", str(port),
                             "--workers", "2", "logapp:app"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _until(lambda: _answers(port) and len(_workers(proc.pid)) == 2, "two workers")
        workers = _workers(proc.pid)
        os.killpg(proc.pid, signal.SIGUSR1)
        time.sleep(1.0)
        assert _workers(proc.pid) == workers and _answers(port)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert "log files reopened (SIGUSR1)" in err and "replacing" not in err, err


#: an application that logs nothing of its own (its stderr is not read after the start)
QUIET = """
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
"""


def _pipelined(port: int, count: int, target: str, agent: bytes = b"t") -> int:
    """`count` requests sent at once on one connection; the answers counted."""
    one = (f"GET {target} HTTP/1.1\r\nHost: x\r\nUser-Agent: ").encode() + agent + \
        b"\r\n\r\n"
    last = one.replace(b"Host: x", b"Host: x\r\nConnection: close")
    return exchange(port, one * (count - 1) + last, timeout=10).count(b"HTTP/1.1 200 ")


def test_workers_lines_on_one_pipe_never_tear(tmp_path: Path) -> None:
    """From a hostile review: two workers writing a turn's lines to one stdout pipe
    at once tore them (a write past PIPE_BUF is not atomic on a pipe): about one
    line in a hundred under wrk. Each write is now whole lines within PIPE_BUF."""
    (tmp_path / "quiet.py").write_text(QUIET)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--port", str(port),
                             "--workers", "2", "--access-log-format", "combined",
                             "quiet:app"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    target = "/" + "x" * 400
    try:
        read_until(proc.stderr, "press CTRL+C to quit")
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answered = sum(pool.map(lambda _: _pipelined(port, 400, target), range(32)))
        assert answered == 32 * 400
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
        reader.join(10)
    access = [line for line in out if target in line or "GET" in line]
    torn = [line for line in access if not re.fullmatch(
        r'127\.0\.0\.1 - - \[[^]]+\] "GET /x{400} HTTP/1\.1" 200 2 "-" "t"\n', line)]
    assert len(access) == answered and not torn, torn[:3]


def test_a_stdout_that_cannot_hold_a_character_loses_no_line(tmp_path: Path) -> None:
    """From a hostile review: with stdout in ASCII, one User-Agent of obs-text lost
    the whole turn's lines; the character is written as the encoding allows."""
    (tmp_path / "quiet.py").write_text(QUIET)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--port", str(port),
                             "--workers", "0", "--access-log-format", "combined",
                             "quiet:app"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            env={**os.environ, "PYTHONIOENCODING": "ascii"})
    try:
        read_until(proc.stderr, "press CTRL+C to quit")
        assert _pipelined(port, 100, "/a", b"caf\xe9") == 100
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    lines = [line for line in out.splitlines() if "GET /a " in line]
    assert len(lines) == 100 and all(line.endswith('"caf\\xe9"') for line in lines), lines[:2]


def test_sigusr2_does_not_stop_a_server_of_one_process(tmp_path: Path) -> None:
    """SIGUSR2 is what a master sends a worker it replaces; a server of one process
    has no master, and says so rather than stopping (from a cold read)."""
    proc, port = start(tmp_path, "--workers", "0")
    try:
        read_until(proc.stderr, "press CTRL+C to quit")
        proc.send_signal(signal.SIGUSR2)
        said = read_until(proc.stderr, "SIGUSR2")
        assert "nothing done" in said and _answers(port) and proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_no_access_log_and_a_log_config_file(tmp_path: Path) -> None:
    proc, port = start(tmp_path, "--no-access-log", "--workers", "0")
    try:
        read_until(proc.stderr, "press CTRL+C to quit")
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert "GET /" not in out
    logfile = tmp_path / "access.log"
    (tmp_path / "logging.json").write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(name)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(logfile),
                              "formatter": "plain"}},
        "loggers": {"tremolo": {"handlers": ["file"], "level": "INFO",
                                "propagate": False}},
    }))
    proc, port = start(tmp_path, "--log-config", "logging.json", "--workers", "0")
    try:
        deadline = time.monotonic() + 15
        while "press CTRL+C" not in (logfile.read_text() if logfile.exists() else ""):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        httpx.get(f"http://127.0.0.1:{port}/configured", timeout=5)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    text = logfile.read_text()
    assert re.search(r'tremolo\.access 127\.0\.0\.1 \[[^]]+\] "GET /configured HTTP/1\.1" '
                     r'200', text), text


def test_a_yaml_log_config(tmp_path: Path) -> None:
    logfile = tmp_path / "server.log"
    (tmp_path / "logging.yaml").write_text(
        "version: 1\n"
        "disable_existing_loggers: false\n"
        "handlers:\n"
        f"  file: {{class: logging.FileHandler, filename: '{logfile}'}}\n"
        "loggers:\n"
        "  tremolo: {handlers: [file], level: INFO, propagate: false}\n")
    proc, _ = start(tmp_path, "--log-config", "logging.yaml", "--workers", "0")
    try:
        deadline = time.monotonic() + 15
        while "press CTRL+C" not in (logfile.read_text() if logfile.exists() else ""):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


@pytest.mark.parametrize("args, message", [
    (["--access-log-format", "%(nope)s"], "argument --access-log-format"),
    (["--log-config", "missing.json"],
     "argument --log-config (or $TREMOLO_LOG_CONFIG): log_config: cannot read 'missing.json'"),
])
def test_bad_log_settings_are_one_line(tmp_path: Path, args: list[str], message: str
                                       ) -> None:
    (tmp_path / "logapp.py").write_text(APP)
    r = subprocess.run([sys.executable, "-m", "tremolo", "--port", "0", *args,
                        "logapp:app"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and message in r.stderr.strip().splitlines()[-1], r.stderr


SLOW = """
import asyncio
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await asyncio.sleep(30)
"""


@contextmanager
def serving_a_busy_request(tmp_path: Path, *args: str
                           ) -> Iterator[subprocess.Popen[str]]:
    """`python3 -m tremolo ARGS slow:app`, serving one request whose handler runs for
    30 s; killed at the end if it is still there."""

    (tmp_path / "slow.py").write_text(SLOW)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--port", str(port), *args,
                             "slow:app"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        read_until(proc.stderr, "press CTRL+C to quit")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as busy:
            busy.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            time.sleep(0.5)  # the handler is running
            yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_stopping_says_what_it_waits_for_and_ctrl_c_again_forces(
        tmp_path: Path, workers: str) -> None:
    with serving_a_busy_request(tmp_path, "--workers", workers) as proc:
        proc.send_signal(signal.SIGINT)
        said = read_until(proc.stderr, "waiting up to 30s for 1 connection(s) to finish")
        # said once: by the master, or by the one process serving
        assert said.count("(CTRL+C again to force)") == 1, said
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        read_until(proc.stderr, "forced to stop: closing 1 connection(s) now")
        proc.wait(10)
        assert time.monotonic() - started < 5


def test_a_reload_drains_without_offering_ctrl_c_and_a_stop_ends_with_stopped(
        tmp_path: Path) -> None:
    with serving_a_busy_request(tmp_path, "--workers", "1", "--shutdown-timeout", "1"
                                ) as proc:
        proc.send_signal(signal.SIGHUP)
        said = read_until(proc.stderr, "waiting up to 1s for 1 connection(s) to finish")
        assert "reload done" in said and "CTRL+C" not in said.splitlines()[-1], said
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        rest = proc.stderr.read() if proc.stderr else ""
    assert rest.splitlines()[-1].endswith("supervisor: INFO: stopped"), rest
    assert "CTRL+C" not in rest, rest  # SIGTERM: nobody is at a keyboard


def test_connections_cut_at_the_deadline_are_counted(tmp_path: Path) -> None:
    with serving_a_busy_request(tmp_path, "--workers", "0", "--shutdown-timeout", "1"
                                ) as proc:
        proc.send_signal(signal.SIGINT)
        read_until(proc.stderr, "closing 1 connection(s) still busy after "
                                "shutdown_timeout (1s)")
        assert proc.wait(10) == 0
