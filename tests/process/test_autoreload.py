"""Reloading on code changes: with the command line and with app.run(reload=True); a
change that does not compile keeps the old code serving; the poll fallback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tremolo.autoreload import Watch, compiles

from ..helpers import free_port

ASGI = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"VERSION"})
"""

NATIVE = """
from tremolo import Tremolo
app = Tremolo()

@app.route("/")
async def index(**server):
    return b"VERSION"

app.run("127.0.0.1", PORT, worker_num=0, reload=True)
"""


def answer(port: int) -> str | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text
    except httpx.TransportError:
        return None


def wait_answer(port: int, expected: str, proc: subprocess.Popen[str],
                timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while answer(port) != expected:
        assert proc.poll() is None, "the reloader exited"
        assert time.monotonic() < deadline, f"never answered {expected!r}"
        time.sleep(0.1)


def rewrite(path: Path, text: str) -> None:
    path.write_text(text)
    # a later mtime even on coarse clocks, for the polling watcher
    later = time.time() + 1
    os.utime(path, (later, later))


def exercise(tmp_path: Path, source: Path, template: str, argv: list[str], port: int) -> str:
    rewrite(source, template.replace("VERSION", "v1"))
    proc = subprocess.Popen(argv, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_answer(port, "v1", proc)
        rewrite(source, template.replace("VERSION", "v2"))
        wait_answer(port, "v2", proc)
        rewrite(source, template.replace("VERSION", "v3") + "\ndef broken(:\n")
        time.sleep(2)  # the reloader saw it and refused it
        assert answer(port) == "v2"  # the old code keeps serving
        rewrite(source, template.replace("VERSION", "v4"))
        wait_answer(port, "v4", proc)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert answer(port) is None  # the serving child is gone too
    return err


def test_the_command_line_reloads(tmp_path: Path) -> None:
    port = free_port()
    err = exercise(tmp_path, tmp_path / "devapp.py", ASGI,
                   [sys.executable, "-m", "tremolo", "--port", str(port), "--worker-num", "0",
                    "--reload", "devapp:app"], port)
    assert "reloading on changes to *.py" in err
    assert "devapp.py changed: reloading" in err
    assert "not reloading: devapp.py does not compile" in err and "SyntaxError" in err


def test_app_run_reloads(tmp_path: Path) -> None:
    port = free_port()
    script = tmp_path / "serve.py"
    err = exercise(tmp_path, script, NATIVE.replace("PORT", str(port)),
                   [sys.executable, str(script)], port)
    assert "serve.py changed: reloading" in err


def test_the_watch_rules_and_the_polling_watcher(tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    (tmp_path / ".git").mkdir()
    for name in ("keep/a.py", "keep/b.txt", ".git/c.py", "d.py~"):
        (tmp_path / name).write_text("x = 1\n")
    watch = Watch([str(tmp_path)], [], [".*", "*~"])
    assert {p.name for p in watch.files()} == {"a.py"}
    stop = threading.Event()
    seen: list[set[Path]] = []

    def collect() -> None:
        for batch in watch._poll(stop):
            seen.append(batch)
            stop.set()
    thread = threading.Thread(target=collect)
    thread.start()
    time.sleep(0.7)
    rewrite(tmp_path / "keep" / "a.py", "x = 2\n")
    thread.join(10)
    stop.set()
    assert seen == [{tmp_path / "keep" / "a.py"}]
    assert compiles({tmp_path / "keep" / "a.py"}) is None
    (tmp_path / "bad.py").write_text("def f(:\n")
    assert "SyntaxError" in (compiles({tmp_path / "bad.py"}) or "")


SLOW = """
import asyncio
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await asyncio.sleep(1.5)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})
"""


def test_ctrl_c_under_reload_drains_instead_of_forcing(tmp_path: Path) -> None:
    """CTRL+C signals the terminal's whole process group; the server must get one
    SIGTERM from the watcher (a graceful stop), not that SIGINT and then another."""
    (tmp_path / "slowapp.py").write_text(SLOW)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--reload", "--port", str(port),
                             "--workers", "0", "--no-access-log", "slowapp:app"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            process_group=0, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    got: dict[str, str] = {}

    def ask() -> None:
        try:
            got["answer"] = httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text
        except httpx.TransportError as exc:
            got["answer"] = repr(exc)
    try:
        deadline = time.monotonic() + 15
        while True:
            line = proc.stderr.readline() if proc.stderr else ""
            assert line and time.monotonic() < deadline
            if "press CTRL+C to quit" in line:
                break
        asker = threading.Thread(target=ask)
        asker.start()
        time.sleep(0.5)  # the request is being handled
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's CTRL+C does
        asker.join(10)
        assert got == {"answer": "done"}
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    err = proc.stderr.read() if proc.stderr else ""
    assert "forced to stop" not in err


def test_sighup_to_the_watcher_reaches_the_server(tmp_path: Path) -> None:
    """Under --reload the server is the watcher's child: SIGHUP (systemctl reload, a
    terminal closing) is passed on to it, which reloads its workers, rather than
    ending the watcher and the server with it."""
    (tmp_path / "hup.py").write_text(ASGI.replace("VERSION", "up"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--reload", "--port", str(port),
                             "--workers", "1", "--no-access-log", "hup:app"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_answer(port, "up", proc)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while True:
            line = proc.stderr.readline() if proc.stderr else ""
            assert line and time.monotonic() < deadline, "no reload"
            if "reload done" in line:
                break
        assert proc.poll() is None and answer(port) == "up"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_a_setting_refused_ends_the_watcher_too(tmp_path: Path) -> None:
    """A bad flag (exit 2) is not mended by an edit: the watcher does not wait for one
    (it did, for ever, after printing the error)."""
    (tmp_path / "wapp.py").write_text("def app(environ, start_response):\n"
                                      "    start_response('200 OK', [])\n"
                                      "    return [b'ok']\n")
    r = subprocess.run([sys.executable, "-m", "tremolo", "--reload", "--port", "99999",
                        "wapp:app"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2
    assert "port must be an integer from 0 to 65535" in r.stderr
