"""python3 -m tremolo: messages, exit codes, and serving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from ..helpers import free_port, wait_up

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
        (["--no-such-flag", "x:app"], "unknown flag --no-such-flag"),
        (["--buffer-size", "big", "x:app"], "argument --buffer-size"),
        (["--interface", "cgi", "x:app"], "argument --interface"),
        (["--bind", "nowhere", "myapp:app"], "argument --bind"),
        ([], "the APP argument is required"),
        (["nosuchmodule:app"], "no module named 'nosuchmodule'"),
        (["myapp:nothere"], "has no attribute 'nothere'"),
        (["missing/file.py"], "no such file"),
        (["--buffer-size", "10", "myapp:app"],
         "argument --buffer-size (or $TREMOLO_BUFFER_SIZE): buffer_size must be at least"),
    ]
    for args, message in cases:
        r = tremolo(*args, cwd=tmp_path)
        assert r.returncode != 0, args
        lines = r.stderr.strip().splitlines()
        assert message in lines[-1], (args, r.stderr)
    # uvicorn's variable, named as one read too
    r = subprocess.run([sys.executable, "-m", "tremolo", "myapp:app"], capture_output=True,
                       text=True, timeout=30, cwd=tmp_path,
                       env={**os.environ, "FORWARDED_ALLOW_IPS": "bad"})
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(
        "tremolo: error: argument --trusted-proxies (or $TREMOLO_TRUSTED_PROXIES, "
        "$FORWARDED_ALLOW_IPS): trusted_proxies: 'bad' is not"), r.stderr


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


# -- every option a flag and a variable -------------------------------------------

def documented_options() -> list[str]:
    table = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    return [line.split("|")[1].strip() for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| option")]


def test_every_documented_option_is_a_flag_with_help_and_a_variable() -> None:
    from tremolo.cli import build_parser

    text = build_parser().format_help()
    for name in documented_options():
        if name == "ssl":
            continue  # its flags come with TLS on the command line
        flag = "--" + name.replace("_", "-")
        assert flag in text, flag
        assert f"$TREMOLO_{name.upper()}" in " ".join(text.split()), name
    for action in build_parser()._actions:
        if action.option_strings and action.dest not in ("help", "version", "habits"):
            assert action.help, action.option_strings
            assert "default" in action.help or action.dest == "factory", action.option_strings


def settings(argv: list[str], env: dict[str, str]) -> dict[str, object]:
    from tremolo.cli import build_parser, gather

    return gather(build_parser().parse_args(argv), env)


def test_variables_flags_and_their_precedence() -> None:
    env = {"TREMOLO_PORT": "9001", "TREMOLO_CLIENT_MAX_BODY_SIZE": "10M",
           "TREMOLO_REQUEST_TIMEOUT": "500ms", "TREMOLO_WS": "off", "TREMOLO_APP": "m:app",
           "TREMOLO_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1", "WEB_CONCURRENCY": "3"}
    got = settings([], env)
    assert got["port"] == 9001 and got["client_max_body_size"] == 10 << 20
    assert got["request_timeout"] == 0.5 and got["ws"] is False and got["app"] == "m:app"
    assert got["trusted_proxies"] == ("10.0.0.0/8", "127.0.0.1")
    assert got["worker_num"] == 3  # WEB_CONCURRENCY, as the other servers read it
    got = settings(["--port", "9002", "--client-max-body-size", "512K", "--ws",
                    "--workers", "2", "other:app"], {**env, "TREMOLO_WORKER_NUM": "5"})
    assert got["port"] == 9002 and got["client_max_body_size"] == 512 << 10
    assert got["ws"] is True and got["worker_num"] == 2 and got["app"] == "other:app"
    assert settings([], {"TREMOLO_WORKER_NUM": "4", "WEB_CONCURRENCY": "9"})["worker_num"] == 4
    assert settings(["--forwarded-allow-ips", "unix,10.0.0.0/8"], {})["trusted_proxies"] == (
        "unix", "10.0.0.0/8")
    assert settings([], {"FORWARDED_ALLOW_IPS": "*"})["trusted_proxies"] == ("*",)
    assert settings(["--download-rate", "1.5M", "--keepalive-timeout", "2m"], {}) == {
        "download_rate": 3 << 19, "keepalive_timeout": 120.0}


def test_a_bad_variable_is_one_line_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    from tremolo.cli import main

    for env, message in [({"TREMOLO_BUFFER_SIZE": "lots"}, "$TREMOLO_BUFFER_SIZE: 'lots'"),
                         ({"TREMOLO_DEBUG": "maybe"}, "$TREMOLO_DEBUG: 'maybe' is not one of"),
                         ({"WEB_CONCURRENCY": "two"}, "$WEB_CONCURRENCY: 'two'")]:
        assert main(["m:app"], env) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


# -- what APP can be --------------------------------------------------------------

KINDS = """
from tremolo import Tremolo

native = Tremolo()
NUMBER = 3

@native.route("/")
async def index(**server):
    return b"native"

async def plain(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"asgi"})

async def app(scope, receive, send):
    if scope["type"] == "http":
        await plain(scope, receive, send)

class Wrapper:  # __call__ is a plain function that returns a coroutine
    def __call__(self, scope, receive, send):
        return app(scope, receive, send)

wrapped = Wrapper()

def wsgi(environ, start_response):
    start_response("200 OK", [])
    return [b"wsgi"]

def make():
    return wsgi

def odd(*args):
    return None

async def http_only(scope, receive, send):
    assert scope["type"] == "http"
    await plain(scope, receive, send)
"""


@pytest.mark.parametrize("args, body", [
    (["kinds:native"], b"native"),
    (["kinds:app"], b"asgi"),
    (["--interface", "asgi3", "kinds:app"], b"asgi"),
    (["kinds:wrapped"], b"asgi"),
    (["kinds:wsgi"], b"wsgi"),
    (["--factory", "kinds:make"], b"wsgi"),
    (["--app-dir", "sub", "kinds:app"], b"asgi"),
])
def test_serves_every_kind_of_app(tmp_path: Path, args: list[str], body: bytes) -> None:
    (tmp_path / "kinds.py").write_text(KINDS)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "kinds.py").write_text(KINDS)
    cwd = tmp_path if "--app-dir" not in args else tmp_path / "sub" / ".."
    port = free_port()
    proc = serve(cwd, "--port", str(port), "--worker-num", "0", *args)
    try:
        assert wait_up(f"http://127.0.0.1:{port}/", proc).content == body
    finally:
        assert stop(proc) == 0
    assert "serving" in proc.stderr.read() if proc.stderr else True


def test_app_errors_explain_themselves(tmp_path: Path) -> None:
    (tmp_path / "kinds.py").write_text(KINDS)
    (tmp_path / "broken.py").write_text("import os\n\nURL = os.environ['NO_SUCH_VARIABLE_X']\n")
    (tmp_path / "badsyntax.py").write_text("def f(:\n")
    cases = [
        (["broken:app"], 1, [f"{tmp_path / 'broken.py'}\", line 3", "KeyError: 'NO_SUCH"]),
        (["badsyntax:app"], 1, [f"{tmp_path / 'badsyntax.py'}\", line 1", "SyntaxError"]),
        (["kinds:NUMBER"], 1, ["kinds:NUMBER is an int (3), not an application"]),
        (["kinds:Wrapper"], 1, ["is a class, not an application", "--factory"]),
        (["kinds:odd"], 1, ["cannot tell whether", "--interface asgi"]),
        (["--interface", "wsgi", "kinds:native"], 1, ["not callable"]),
        (["--factory", "kinds:native"], 1, ["--factory needs a function"]),
        (["--loop", "trio", "kinds:app"], 2, ["argument --loop (or $TREMOLO_LOOP)"]),
        (["--loop", "nosuch.Loop", "kinds:app"], 2, ["cannot load 'nosuch.Loop'"]),
        (["--lifespan", "on", "--port", "0", "kinds:http_only"], 3,
         ["does not support the lifespan"]),
    ]
    for args, code, messages in cases:
        r = tremolo("--worker-num", "0", *args, cwd=tmp_path)
        assert r.returncode == code, (args, r.returncode, r.stderr)
        for message in messages:
            assert message in r.stderr, (args, r.stderr)
        # a SyntaxError says where it is itself: no frames of the importing machinery
        assert "Traceback" not in r.stderr or args[0] == "broken:app", r.stderr


def test_a_port_in_use_is_refused_unless_shared(tmp_path: Path) -> None:
    import socket

    (tmp_path / "kinds.py").write_text(KINDS)
    with socket.socket() as other:  # another program
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        r = tremolo("--port", str(port), "kinds:app", cwd=tmp_path)
        assert r.returncode == 2
        assert f"cannot listen on http://127.0.0.1:{port}: address already in use" in r.stderr
    port = free_port()
    first = serve(tmp_path, "--port", str(port), "--worker-num", "2", "kinds:app")
    try:
        wait_up(f"http://127.0.0.1:{port}/", first)
        # another tremolo on the same port: refused, not sharing the traffic
        r = tremolo("--port", str(port), "kinds:wsgi", cwd=tmp_path)
        assert r.returncode == 2 and "address already in use" in r.stderr
        assert "--share-port" in r.stderr
        sock = tmp_path / "s.sock"
        unix = serve(tmp_path, "--bind", str(sock), "--worker-num", "0", "kinds:app")
        try:
            transport = httpx.HTTPTransport(uds=str(sock))
            for _ in range(100):
                try:
                    httpx.Client(transport=transport).get("http://x/", timeout=1)
                    break
                except httpx.TransportError:
                    import time
                    time.sleep(0.05)
            r = tremolo("--bind", str(sock), "kinds:wsgi", cwd=tmp_path)
            assert r.returncode == 2 and f"cannot listen on unix:{sock}" in r.stderr
        finally:
            assert stop(unix) == 0
    finally:
        assert stop(first) == 0
    shared = serve(tmp_path, "--port", str(port), "--share-port", "--worker-num", "0",
                   "kinds:app")
    try:
        wait_up(f"http://127.0.0.1:{port}/", shared)
        second = serve(tmp_path, "--port", str(port), "--share-port", "--worker-num", "0",
                       "kinds:wsgi")
        try:
            # both serve the port: new connections reach one or the other
            seen = set()
            for _ in range(400):
                seen.add(wait_up(f"http://127.0.0.1:{port}/", second).content)
                if seen == {b"asgi", b"wsgi"}:
                    break
            assert seen == {b"asgi", b"wsgi"}
        finally:
            assert stop(second) == 0
    finally:
        assert stop(shared) == 0


def test_a_proxy_on_a_unix_socket_is_trusted_with_unix(tmp_path: Path) -> None:
    (tmp_path / "fwd.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body',\n"
        "                'body': f\"{scope['client']} {scope['scheme']}\".encode()})\n")
    for allow, expected in (("unix", b"('203.0.113.1', 0) https"), ("127.0.0.1", b"None http")):
        sock = tmp_path / f"{allow}.sock"
        proc = serve(tmp_path, "--bind", str(sock), "--worker-num", "0",
                     "--forwarded-allow-ips", allow, "fwd:app")
        try:
            transport = httpx.HTTPTransport(uds=str(sock))
            headers = {"X-Forwarded-For": "203.0.113.1", "X-Forwarded-Proto": "https"}
            for _ in range(200):
                try:
                    r = httpx.Client(transport=transport).get("http://x/", headers=headers,
                                                              timeout=2)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None
                    import time
                    time.sleep(0.05)
            assert r.content == expected
        finally:
            assert stop(proc) == 0


SAMPLES = {"SIZE": ("2K", 2048), "RATE": ("1M", 1 << 20), "SECONDS": ("1.5m", 90.0),
           "N": ("3", 3), "TEXT": ("word", "word"), "LIST": ("a, b", ("a", "b")),
           "MODE": ("660", 0o660),
           "": ("off", False)}


def test_every_option_flag_and_variable_sets_it() -> None:
    from tremolo.cli_options import FLAGS, env_name, flag

    for name, spec in FLAGS.items():
        kind = spec.kind
        text, value = SAMPLES[kind.metavar]
        if spec.choices:
            text = value = spec.choices[-1]
        assert settings([], {env_name(name): text})[name] == value, name
        argv = [f"--no-{flag(name)[2:]}"] if kind.metavar == "" else [flag(name), text]
        assert settings(argv, {env_name(name): "junk"})[name] == value, name
