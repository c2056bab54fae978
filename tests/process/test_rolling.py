"""Replacing workers while clients keep coming: SIGHUP reloads the application's code
one worker at a time, recycling replaces a worker, SIGTERM drains; wrk and real
clients count every failed request. WebSockets learn why they are closed (1012 on a
reload, 1001 on a stop)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ..helpers import free_port, stop_process
from .test_supervisor import alive, children, until

APP = """
import helper

async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": helper.VERSION.encode()})
"""

SCRIPT = """
import os
from tremolo import Tremolo
import helper

app = Tremolo()

@app.route("/")
async def index(**server):
    return helper.VERSION

{run}
"""

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None,
                               reason="wrk is missing (make system-deps installs it)")


def write_version(directory: Path, version: str) -> None:
    """A new helper.py, with a newer mtime than the cached bytecode's."""
    path = directory / "helper.py"
    path.write_text(f"VERSION = {version!r}\n" if version else "VERSION = \n")
    later = time.time() + 2 + len(version)
    os.utime(path, (later, later))


@contextmanager
def server(command: list[str], cwd: Path, port: int
           ) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """A master with its stderr read into a list of lines as it comes."""
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "PORT": str(port)})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")),
                              daemon=True)
    reader.start()
    try:
        until(lambda: any("press CTRL+C" in line for line in lines) or proc.poll() is not None,
              "the server never said it was ready")
        assert proc.poll() is None, "".join(lines)
        yield proc, lines
    finally:
        stop_process(proc, signal.SIGTERM, 30)
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)
        reader.join(5)


def cli(tmp_path: Path, port: int, *args: str) -> list[str]:
    (tmp_path / "hello.py").write_text(APP)
    return [sys.executable, "-m", "tremolo", "--port", str(port), "--workers", "2",
            "--no-access-log", *args, "hello:app"]


def versions(port: int, n: int = 12) -> set[str]:
    # new connections each time: both workers answer
    return {httpx.get(f"http://127.0.0.1:{port}/", timeout=5,
                      headers={"connection": "close"}).text for _ in range(n)}


def wrk(port: int, seconds: int) -> subprocess.Popen[str]:
    return subprocess.Popen(["wrk", "-t1", "-c16", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_result(load: subprocess.Popen[str]) -> int:
    """The number of requests wrk made; fails on any socket error or non-2xx answer."""
    out, _ = load.communicate(timeout=60)
    assert "Socket errors" not in out and "Non-2xx" not in out, out
    return int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]


@needs_wrk
@pytest.mark.external  # wrk
def test_sighup_replaces_every_worker_with_the_new_code_under_load(tmp_path: Path) -> None:
    write_version(tmp_path, "v1")
    port = free_port()
    with server(cli(tmp_path, port), tmp_path, port) as (proc, lines):
        assert versions(port) == {"v1"}
        old = children(proc.pid)
        load = wrk(port, 5)
        time.sleep(1.5)
        write_version(tmp_path, "v2")
        proc.send_signal(signal.SIGHUP)
        until(lambda: any("reload done" in line for line in lines), "the reload never ended")
        until(lambda: not any(alive(pid) for pid in old), "old workers still there")
        made = wrk_result(load)
        assert made > 500
        assert versions(port) == {"v2"}
        assert len(children(proc.pid)) == 2 and not children(proc.pid) & old


def test_a_reload_whose_code_fails_keeps_the_old_workers(tmp_path: Path) -> None:
    write_version(tmp_path, "v1")
    port = free_port()
    with server(cli(tmp_path, port), tmp_path, port) as (proc, lines):
        old = children(proc.pid)
        write_version(tmp_path, "")  # a syntax error
        proc.send_signal(signal.SIGHUP)
        until(lambda: any("reload abandoned" in line for line in lines), "no abandon")
        text = "".join(lines)
        assert "SyntaxError" in text and "helper.py" in text
        assert children(proc.pid) == old and versions(port) == {"v1"}
        write_version(tmp_path, "v3")  # fixed: the next reload takes it
        proc.send_signal(signal.SIGHUP)
        until(lambda: sum("reload done" in line for line in lines) == 1, "no second reload")
        until(lambda: not children(proc.pid) & old, "old workers still there")
        assert versions(port) == {"v3"}


@pytest.mark.parametrize("run", [
    'if __name__ == "__main__":\n'
    '    app.run("127.0.0.1", port=int(os.environ["PORT"]), worker_num=2)',
    'app.run("127.0.0.1", port=int(os.environ["PORT"]), worker_num=2)  # no __main__ guard',
], ids=["guarded", "unguarded"])
def test_sighup_reloads_a_tremolo_script(tmp_path: Path, run: str) -> None:
    (tmp_path / "site.py").write_text(SCRIPT.format(run=run))
    write_version(tmp_path, "s1")
    port = free_port()
    with server([sys.executable, "site.py"], tmp_path, port) as (proc, lines):
        assert versions(port) == {"s1"}
        write_version(tmp_path, "s2")
        proc.send_signal(signal.SIGHUP)
        until(lambda: any("reload done" in line for line in lines), "no reload")
        until(lambda: versions(port) == {"s2"}, "old code still answers")


def test_websockets_are_closed_with_1012_on_a_reload_and_1001_on_a_stop(
        tmp_path: Path) -> None:
    write_version(tmp_path, "v1")
    port = free_port()
    with server(cli(tmp_path, port), tmp_path, port) as (proc, lines):
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws, \
                pytest.raises(ConnectionClosed) as closed:
            proc.send_signal(signal.SIGHUP)
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1012, "server restarting")
        until(lambda: any("reload done" in line for line in lines), "no reload")
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws, \
                pytest.raises(ConnectionClosed) as closed:
            proc.send_signal(signal.SIGTERM)
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert proc.wait(15) == 0


@needs_wrk
@pytest.mark.external  # wrk
def test_recycling_under_load_fails_no_request(tmp_path: Path) -> None:
    write_version(tmp_path, "v1")
    port = free_port()
    metrics = free_port()
    with server(cli(tmp_path, port, "--max-requests", "2000", "--metrics",
                    f"127.0.0.1:{metrics}"), tmp_path, port) as (_, lines):
        made = wrk_result(wrk(port, 4))
        replaced = sum("served max_requests" in line for line in lines)
        assert made > 4000 and replaced >= 2, (made, replaced)
        # the metrics keep the requests of the workers replaced, and say why they went
        time.sleep(0.6)
        text = httpx.get(f"http://127.0.0.1:{metrics}/metrics").text
        answered = float(re.search(r'requests_total\{interface="asgi",status="2xx"\} (\S+)',
                                   text).group(1))  # type: ignore[union-attr]
        restarts = float(re.search(r'restarts_total\{cause="max_requests"\} (\S+)',
                                   text).group(1))  # type: ignore[union-attr]
        assert answered >= made and restarts >= replaced, (answered, made, restarts)


def test_sigterm_under_load_answers_every_request_sent_before_it(tmp_path: Path) -> None:
    """Clients send request after request on keep-alive connections; whatever was
    sent before the signal is answered, whatever came after may be refused."""
    write_version(tmp_path, "v1")
    port = free_port()
    signalled: list[float] = []
    results: list[tuple[float, str]] = []

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            while not signalled or time.monotonic() < signalled[0] + 3:
                sent = time.monotonic()
                try:
                    r = http.get(f"http://127.0.0.1:{port}/")
                    results.append((sent, "ok" if r.text == "v1" else r.text))
                except httpx.TransportError as exc:
                    results.append((sent, repr(exc)))
                    if signalled:
                        return

    with server(cli(tmp_path, port), tmp_path, port) as (proc, _):
        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(2)
        signalled.append(time.monotonic())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        for t in threads:
            t.join(15)
    before = [outcome for sent, outcome in results if sent < signalled[0]]
    assert len(before) > 200
    assert all(outcome == "ok" for outcome in before), \
        [o for o in before if o != "ok"][:5]


@needs_wrk
@pytest.mark.external  # wrk
def test_sigterm_under_wrk_load_cuts_no_request(tmp_path: Path) -> None:
    """wrk keeps 16 connections busy through the stop: no request it sent is cut (a
    cut shows as a read error: the connection ended before the response did) or
    answered with an error status. Once the server is gone, wrk's reconnections are
    refused: its non-blocking connect reports that as write errors, which is all a
    stop may do."""
    write_version(tmp_path, "v1")
    port = free_port()
    with server(cli(tmp_path, port), tmp_path, port) as (proc, _):
        load = wrk(port, 4)
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        out, _ = load.communicate(timeout=60)
    assert "Non-2xx" not in out, out
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    if errors is not None:
        assert errors.group(2, 4) == ("0", "0"), out
    assert int(re.search(r"(\d+) requests in", out).group(1)) > 500  # type: ignore[union-attr]


def test_sighup_to_a_single_process_server_is_not_its_end(tmp_path: Path) -> None:
    write_version(tmp_path, "v1")
    port = free_port()
    command = cli(tmp_path, port)
    command[command.index("--workers") + 1] = "0"
    with server(command, tmp_path, port) as (proc, lines):
        proc.send_signal(signal.SIGHUP)
        until(lambda: any("nothing reloaded" in line for line in lines), "no warning")
        assert proc.poll() is None and versions(port, 2) == {"v1"}


SLOW = """
import asyncio

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(1.5)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})
"""


@pytest.mark.parametrize("how", ["systemd", "ctrl-c twice"])
def test_sigterm_to_every_process_drains_and_ctrl_c_twice_forces(tmp_path: Path,
                                                                 how: str) -> None:
    """systemd's stop signals every process of the unit: each worker gets SIGTERM from
    it and from the master, and must still drain. A terminal's CTRL+C twice (SIGINT to
    the whole group, twice) forces the stop."""
    (tmp_path / "slow.py").write_text(SLOW)
    port = free_port()
    command = [sys.executable, "-m", "tremolo", "--port", str(port), "--workers", "2",
               "--no-access-log", "slow:app"]
    with server(command, tmp_path, port) as (proc, lines):
        result: list[object] = []
        client = threading.Thread(target=lambda: result.append(_get_slow(port)))
        client.start()
        time.sleep(0.5)  # the request is in its handler
        group = [proc.pid, *children(proc.pid)]
        signum = signal.SIGTERM if how == "systemd" else signal.SIGINT
        for _ in range(1 if how == "systemd" else 2):
            for pid in group:
                with contextlib.suppress(ProcessLookupError):  # an idle worker is gone
                    os.kill(pid, signum)
            time.sleep(0.2)
        client.join(15)
        assert proc.wait(15) == 0
    if how == "systemd":
        assert result == ["done"], result
    else:
        assert result and result[0] != "done", result  # cut: the stop was forced
        assert any("forcing the workers to stop" in line for line in lines)


def _get_slow(port: int) -> object:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/slow", timeout=10).text
    except httpx.TransportError as exc:
        return exc
