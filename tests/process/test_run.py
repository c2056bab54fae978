"""app.run() and app.listen() in real processes: workers, listeners, signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ..helpers import free_port, stop_process, wait_up

APP = """
import os
from tremolo import Tremolo

app = Tremolo()

@app.route('/pid')
async def pid(**server):
    return str(os.getpid())
"""


@contextmanager
def running(tmp_path: Path, body: str, wait_for: str = "press CTRL+C to quit",
            timeout: float = 15) -> Iterator[subprocess.Popen[bytes]]:
    script = tmp_path / "serve.py"
    script.write_text(APP + textwrap.dedent(body))
    proc = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + timeout
        seen = b""
        while wait_for.encode() not in seen:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, f"server exited: {seen.decode()}"
            assert time.monotonic() < deadline, f"no '{wait_for}' in: {seen.decode()}"
            seen += line
        yield proc
    finally:
        stop_process(proc)


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def test_workers_share_the_port_and_stop_together(tmp_path: Path) -> None:
    port = free_port()
    with running(tmp_path, f"app.run('127.0.0.1', {port}, worker_num=2)\n") as proc:
        url = f"http://127.0.0.1:{port}/pid"
        wait_up(url, timeout=10)
        pids = set()
        for _ in range(300):
            with httpx.Client(timeout=5) as client:  # a new connection each time
                pids.add(int(client.get(url).text))
            if len(pids) == 2:
                break
        assert len(pids) == 2, "SO_REUSEPORT did not spread connections over workers"
        assert set(children(proc.pid)) >= pids
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    with running(tmp_path, f"app.run('127.0.0.1', {port}, worker_num=1)\n") as proc:
        url = f"http://127.0.0.1:{port}/pid"
        first = int(wait_up(url, timeout=10).text)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while True:
            try:
                second = int(httpx.get(url, timeout=2).text)
                if second != first:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the worker was not replaced"
            time.sleep(0.1)
        assert proc.poll() is None


@pytest.mark.external  # curl
def test_listeners_ipv6_and_unix(tmp_path: Path) -> None:
    port, extra = free_port(), free_port()
    sock_path = tmp_path / "tremolo.sock"
    body = f"""
    @app.route('/echo')
    async def echo(request, **server):
        return await request.body()

    app.listen({extra}, host='::', client_max_body_size=4)
    app.listen({str(sock_path)!r})
    app.run('127.0.0.1', {port}, worker_num=0)
    """
    with running(tmp_path, body) as proc:
        assert wait_up(f"http://127.0.0.1:{port}/pid", timeout=10).status_code == 200
        assert httpx.get(f"http://[::1]:{extra}/pid", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{extra}/pid", timeout=5).status_code == 200
        # the extra listener has its own, smaller body limit
        assert httpx.post(f"http://127.0.0.1:{port}/echo", content=b"12345",
                          timeout=5).content == b"12345"
        assert httpx.post(f"http://[::1]:{extra}/echo", content=b"12345",
                          timeout=5).status_code == 413
        out = subprocess.run(["curl", "-sS", "-i", "--max-time", "5", "--unix-socket",
                              str(sock_path), "http://localhost/pid"],
                             capture_output=True, check=True).stdout
        assert out.startswith(b"HTTP/1.1 200 OK\r\n")
        assert out.endswith(b"\r\n\r\n" + str(proc.pid).encode())
    assert not sock_path.exists()  # removed on exit


def test_worker_num_zero_serves_in_process(tmp_path: Path) -> None:
    port = free_port()
    with running(tmp_path, f"app.run('127.0.0.1', {port}, worker_num=0)\n") as proc:
        assert int(wait_up(f"http://127.0.0.1:{port}/pid", timeout=10).text) == proc.pid


@pytest.mark.external  # curl
def test_curl_keep_alive_and_head(tmp_path: Path) -> None:
    port = free_port()
    with running(tmp_path, f"app.run('127.0.0.1', {port}, worker_num=0)\n"):
        url = f"http://127.0.0.1:{port}/pid"
        wait_up(url, timeout=10)
        out = subprocess.run(["curl", "-sS", "-v", "--max-time", "5", url, url],
                             capture_output=True, check=True)
        assert b"Re-using existing connection" in out.stderr
        out = subprocess.run(["curl", "-sS", "-I", "--max-time", "5", url],
                             capture_output=True, check=True).stdout
        assert out.startswith(b"HTTP/1.1 200 OK") and b"Content-Length:" in out


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        script = tmp_path / "serve.py"
        for reuse in (False, True):
            script.write_text(APP + f"app.run('127.0.0.1', {port}, reuse_port={reuse})\n")
            proc = subprocess.run([sys.executable, str(script)], capture_output=True,
                                  text=True, timeout=30)
            # one line, no traceback (the program is not at fault), and the way to share
            assert proc.returncode == 2
            assert proc.stderr.splitlines() == [
                f"tremolo: error: cannot listen on http://127.0.0.1:{port}: address already "
                "in use (by another program, or another tremolo; share_port=True, or "
                "--share-port, shares it on purpose)"], proc.stderr


def test_bad_options_name_the_option(tmp_path: Path) -> None:
    script = tmp_path / "serve.py"
    script.write_text(APP + "app.run('127.0.0.1', 0, buffer_size='big')\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "tremolo: error: buffer_size must be an integer, not 'big'"], proc.stderr


def test_log_level_and_format(tmp_path: Path) -> None:
    port = free_port()
    body = f"""
    @app.route('/log')
    async def log(logger, **server):
        logger.info('hidden at WARNING')
        logger.warning('shown at WARNING')
        return b'ok'

    app.run('127.0.0.1', {port}, worker_num=0, log_level='WARNING',
            log_fmt='LOG|%(levelname)s|%(message)s')
    """
    script = tmp_path / "serve.py"
    script.write_text(APP + textwrap.dedent(body))
    proc = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert wait_up(f"http://127.0.0.1:{port}/log", timeout=10).content == b"ok"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert "LOG|WARNING|shown at WARNING" in err.decode()
    assert "hidden at WARNING" not in err.decode()
