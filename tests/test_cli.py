"""python3 -m tremolo: messages, exit codes, and serving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

from .helpers import free_port, wait_up

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"cli " + scope["root_path"].encode()})

async def count(scope, receive, send):
    if scope["type"] != "http":
        return
    size = 0
    while True:
        msg = await receive()
        size += len(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})

async def failing(scope, receive, send):
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "cannot reach the database"})
"""


def tremolo(*args: str, cwd: Path | None = None, timeout: float = 30
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tremolo", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def test_help_and_version() -> None:
    r = tremolo("--help")
    assert r.returncode == 0
    for flag in ("--bind", "--host", "--port", "--worker-num", "--debug", "--log-level",
                 "--loop", "--buffer-size", "--client-max-body-size", "--request-timeout",
                 "--keepalive-timeout", "--app-handler-timeout", "--download-rate",
                 "--upload-rate", "--server-name", "--root-path", "--no-ws", "--interface"):
        assert flag in r.stdout, flag
    r = tremolo("--version")
    assert r.returncode == 0 and r.stdout.startswith("tremolo ")


def test_bad_input_gives_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(ASGI_APP)
    cases = [
        (["--no-such-flag", "x:app"], "unrecognized arguments: --no-such-flag"),
        (["--buffer-size", "big", "x:app"], "argument --buffer-size"),
        (["--interface", "cgi", "x:app"], "argument --interface"),
        (["--bind", "nowhere", "myapp:app"], "argument --bind"),
        ([], "the APP argument is required"),
        (["nosuchmodule:app"], "cannot import 'nosuchmodule'"),
        (["myapp:nothere"], "has no attribute 'nothere'"),
        (["missing/file.py"], "no such file"),
        (["--buffer-size", "10", "myapp:app"], "argument --buffer-size: buffer_size must be"),
    ]
    for args, message in cases:
        r = tremolo(*args, cwd=tmp_path)
        assert r.returncode != 0, args
        lines = r.stderr.strip().splitlines()
        assert message in lines[-1], (args, r.stderr)


def serve(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tremolo", *args], cwd=tmp_path,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise


def test_serves_a_module_and_a_file(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(ASGI_APP)
    for spec in ("myapp:app", str(tmp_path / "myapp.py"), "myapp"):
        port = free_port()
        proc = serve(tmp_path, "--port", str(port), "--root-path", "/base",
                     "--worker-num", "0", spec)
        try:
            r = wait_up(f"http://127.0.0.1:{port}/", proc)
            assert r.content == b"cli /base"
        finally:
            assert stop(proc) == 0


def test_asgi_apps_get_no_body_limit_by_default(tmp_path: Path) -> None:
    """The framework sets its own limit, as behind uvicorn; one flag sets ours."""
    (tmp_path / "myapp.py").write_text(ASGI_APP)
    body = b"x" * (3 << 20)
    for args, expected in (([], b"3145728"), (["--client-max-body-size", "1048576"], None)):
        port = free_port()
        proc = serve(tmp_path, "--port", str(port), "--worker-num", "0", *args, "myapp:count")
        try:
            wait_up(f"http://127.0.0.1:{port}/", proc)
            r = httpx.post(f"http://127.0.0.1:{port}/", content=body, timeout=10)
            if expected is None:
                assert r.status_code == 413
            else:
                assert r.content == expected
        finally:
            assert stop(proc) == 0


def test_bind_with_unix_socket_and_workers(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(ASGI_APP)
    port = free_port()
    sock = tmp_path / "s.sock"
    proc = serve(tmp_path, "--bind", f"127.0.0.1:{port},{sock}", "--worker-num", "2",
                 "myapp:app")
    try:
        assert wait_up(f"http://127.0.0.1:{port}/", proc).content == b"cli "
        transport = httpx.HTTPTransport(uds=str(sock))
        assert httpx.Client(transport=transport).get("http://x/", timeout=5).content == b"cli "
    finally:
        assert stop(proc) == 0


def test_lifespan_failure_exits_with_the_message(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(ASGI_APP)
    for workers in ("0", "2"):
        r = tremolo("--port", str(free_port()), "--worker-num", workers, "myapp:failing",
                    cwd=tmp_path)
        assert r.returncode != 0
        assert "cannot reach the database" in r.stderr


def test_tremolo_run(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "runner.py").write_text(ASGI_APP + textwrap.dedent(f"""
        import tremolo
        tremolo.run(app, port={port}, worker_num=0)
    """))
    proc = subprocess.Popen([sys.executable, str(tmp_path / "runner.py")], text=True,
                            stderr=subprocess.PIPE)
    try:
        assert wait_up(f"http://127.0.0.1:{port}/", proc).content == b"cli "
    finally:
        assert stop(proc) == 0
