"""The original Tremolo's command line works unchanged: every flag of its
`python3 -m tremolo --help` (0.5.3) means here what it meant there, beside ours; and the
pieces its command line is made of (tremolo.__main__'s usage, bind, version and server,
tremolo.utils.parse_args) do what the original's do. The original itself (in
.venv-tremolo053) is the oracle."""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..helpers import exchange, free_port, stop_process, wait_up

pytestmark = pytest.mark.external  # the original Tremolo's environment

ROOT = Path(__file__).resolve().parents[2]

#: each flag of the original's --help, with a value to try it with (None: a switch)
ORIGINAL_FLAGS: dict[str, str | None] = {
    "--host": "localhost", "--port": "8080", "--worker-num": "3",
    "--thread-pool-size": "7", "--limit-memory": "204800", "--backlog": "50",
    "--ssl-cert": "/path/to/fullchain.pem", "--ssl-key": "/path/to/privkey.pem",
    "--debug": None, "--experimental": None, "--reload": None, "--no-ws": None,
    "--ws-max-payload-size": "4096", "--log-level": "WARNING",
    "--log-fmt": "%(levelname)s %(message)s", "--loop": "asyncio.SelectorEventLoop",
    "--download-rate": "65536", "--upload-rate": "32768", "--buffer-size": "8192",
    "--client-max-body-size": "1048576", "--client-max-header-size": "4096",
    "--max-queue-size": "64", "--request-timeout": "10", "--keepalive-timeout": "5",
    "--keepalive-connections": "100", "--app-handler-timeout": "60",
    "--app-close-timeout": "20", "--shutdown-timeout": "15", "--server-name": "Orig",
    "--root-path": "/base",
    # the original's callbacks (tremolo.__main__): tried in BIND_VALUES and below
    "--bind": "127.0.0.1:8000", "--version": None, "--help": None,
}
#: the original's --bind forms (its help names `127.0.0.1:8000`, `/tmp/file.sock` and
#: `127.0.0.1:8000,:8001`; its tests add a Windows path) and bad ones
BIND_VALUES = ["127.0.0.1:8000", "localhost:8000", ":8001", "[::1]:8000", "[::]:8000",
               "/tmp/file.sock", "file.sock", "run/app.sock", r"C:\Somewhere\Temp\file.sock",
               "/tmp/app", "./app", r"C:\Somewhere\app",
               "127.0.0.1:8000,:8001,/tmp/file.sock", "localhost:xx", "127.0.0.1:"]

#: runs the original's parse_args (with its __main__'s callbacks) over each argv, the
#: same under either tremolo: what it returns or exits with, prints, and binds
READ_ARGS = r"""
import json, sys
from io import StringIO
from tremolo.__main__ import bind, server, usage, version
from tremolo.utils import parse_args

out = []
for argv in json.load(sys.stdin):
    sys.argv[:] = argv
    real, sys.stdout = sys.stdout, StringIO()
    try:
        got = {"options": parse_args(help=usage, bind=bind, version=version), "code": 0}
    except SystemExit as exc:
        got = {"options": None, "code": exc.code}
    got["printed"], sys.stdout = sys.stdout.getvalue(), real
    if hasattr(server, "ports"):  # the original: {(host, port): options}, a path as host
        # a host of None is run()'s 'localhost' there: 127.0.0.1; its create_sock adds
        # .sock to a path without it
        got["listeners"] = [[None, h if h.endswith(".sock") else h + ".sock"]
                            if p is None else [h or "127.0.0.1", p] for h, p in server.ports]
        server.ports.clear()
    else:
        got["listeners"] = [[a.host, a.port] if a.kind == "tcp" else [None, a.path]
                            for a, _ in server.listeners]
        server.listeners.clear()
    out.append(got)
print(json.dumps(out))
"""


def original_python() -> str:
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "original_env.py"),
                          str(ROOT / ".venv-tremolo053")],
                         check=True, capture_output=True, text=True, timeout=600)
    return out.stdout.strip()


def cases() -> list[list[str]]:
    argvs = [["prog", flag] + ([] if value is None else [value])
             for flag, value in ORIGINAL_FLAGS.items()]
    argvs += [["prog", "--bind", value] for value in BIND_VALUES]
    argvs += [
        ["prog", "--host", "0.0.0.0", "--port", "9000", "--worker-num", "2", "--debug",
         "example:app"],
        ["prog", "--bind", "127.0.0.1:8000", "--port", "9000", "--no-ws", "example:app"],
        ["prog", "--ssl-cert", "/c.pem", "--ssl-key", "/k.pem", "--port", "8443", "x:app"],
        ["prog", "--port", "xx"], ["prog", "--worker-num", "2.5"], ["prog", "--invalid"],
        ["prog", "--log-fmt", "--debug"],  # every argument is looked at as a flag too
        ["prog", "", "example:app"],
    ]
    return argvs


def read_args(python: str, argvs: list[list[str]]) -> list[dict[str, Any]]:
    r = subprocess.run([python, "-c", READ_ARGS], input=json.dumps(argvs), text=True,
                       capture_output=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


@pytest.fixture(scope="module")
def original() -> list[dict[str, Any]]:
    return read_args(original_python(), cases())


def test_every_flag_of_the_original_help_is_covered() -> None:
    r = subprocess.run([original_python(), "-m", "tremolo", "--help"], capture_output=True,
                       text=True, timeout=30)
    listed = re.findall(r"^  (--[a-z-]+)", r.stdout, re.M)
    assert len(listed) > 30 and set(listed) == set(ORIGINAL_FLAGS)
    ours = subprocess.run([sys.executable, "-m", "tremolo", "--help"], capture_output=True,
                          text=True, timeout=30)
    assert ours.returncode == 0 and ours.stdout.startswith(
        "Usage: python3 -m tremolo [OPTIONS] APP\n")
    for flag in listed:
        assert re.search(rf"(^|[ ,]){flag}\b(?!-)", ours.stdout, re.M), flag


def test_parse_args_and_the_callbacks_do_what_the_originals_do(
        original: list[dict[str, Any]]) -> None:
    ours = read_args(sys.executable, cases())
    for argv, theirs, mine in zip(cases(), original, ours, strict=True):
        if argv[1] in ("--help", "--version"):
            assert mine["code"] == theirs["code"] == 0
            assert mine["printed"].split()[0] == theirs["printed"].split()[0], argv
            continue
        assert mine == theirs, argv


def test_version_prints_as_the_original(original: list[dict[str, Any]]) -> None:
    theirs = next(o for a, o in zip(cases(), original, strict=True) if a[1] == "--version")
    shape = r"tremolo \S+ \((\w+) (\d+\.\d+\.\d+), (\w+)\)\n"
    they = re.fullmatch(shape, theirs["printed"])
    assert they is not None
    r = subprocess.run([sys.executable, "-m", "tremolo", "--version"], capture_output=True,
                       text=True, timeout=30)
    mine = re.fullmatch(shape, r.stdout)
    assert mine is not None and r.returncode == 0
    assert mine.group(1) == they.group(1) and mine.group(3) == they.group(3)


# -- python3 -m tremolo with the original's flags ----------------------------------

CAPTURED = """
from tremolo import Tremolo
app = Tremolo()
"""


def cli_settings(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> dict[str, Any]:
    """What `python3 -m tremolo ARGV` would serve with: serve_app()'s arguments (or
    {'reload': True} when it would reload), the app loaded but nothing started."""
    import tremolo.cli as cli

    got: dict[str, Any] = {}
    monkeypatch.setattr(cli.launch, "serve_app", lambda app, **kw: got.update(kw))
    monkeypatch.setattr(cli.launch, "restart_on_change",
                        lambda *a: got.update(reload=True) or 0)
    (tmp_path / "capp.py").write_text(CAPTURED)
    code = cli.main([*argv, "--app-dir", str(tmp_path), "capp:app"], {})
    assert code == 0, argv
    return got


def test_each_original_flag_means_what_it_meant(
        original: list[dict[str, Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The options the original's reader gives for a command line are what
    python3 -m tremolo serves with (listeners of --bind included)."""
    checked = 0
    for argv, theirs in zip(cases(), original, strict=True):
        if theirs["code"] != 0 or argv[1] in ("--help", "--version"):
            continue
        if argv[1:3] in (["--log-fmt", "--debug"], ["--ssl-key", "/path/to/privkey.pem"]):
            # a value that is a flag is for parse_args only; a key without its
            # certificate cannot serve (refused here, the original fails in its workers)
            continue
        args = [a for a in argv[1:] if a not in ("", "example:app", "x:app")]
        mine = cli_settings(args, tmp_path, monkeypatch)
        if mine.get("reload"):
            assert theirs["options"]["reload"] is True
            checked += 1
            continue
        for key, value in theirs["options"].items():
            if key == "ssl":
                assert mine.get("ssl", {}) == value, argv
            elif key == "host" and value is None:  # --bind: its listeners instead
                assert [[a.host, a.port] if a.kind == "tcp" else [None, a.path]
                        for a in mine["bind"]] == theirs["listeners"], argv
            elif key != "port" or "bind" not in mine:
                assert mine[key] == value, (argv, key)
        checked += 1
    # each flag but --help, --version and --ssl-key alone; 13 good --bind values; 4 more
    assert checked == 30 + 13 + 4


def test_unix_prefix_keeps_the_path_as_given() -> None:
    """Ours beside the original's: `unix:PATH` is not given `.sock`; a bare path is."""
    from tremolo.cli import parse_bind
    from tremolo.sockets import Address

    assert parse_bind("unix:/run/app,/run/app,unix:app.sock,[::]:80") == [
        Address.unix("/run/app"), Address.unix("/run/app.sock"), Address.unix("app.sock"),
        Address.tcp("::", 80)]


@pytest.mark.parametrize("argv, message", [
    (["--port", "xx"], "argument --port: 'xx' is not a whole number"),
    (["--worker-num", "two"], "argument --worker-num/--workers/-w: 'two' is not a "
                                  "whole number"),
    (["--request-timeout", "soon"], "argument --request-timeout: 'soon' is not a duration"),
    (["--bind", "localhost:xx"], "argument --bind: 'localhost:xx' is not host:port"),
    (["--bind", "8000"], "argument --bind: '8000' is not host:port"),
    (["--bind", "nowhere"], "argument --bind: 'nowhere' is not host:port"),
    (["--ssl-key", "/k.pem"], "the other --ssl-* flags need --ssl-certfile (--ssl-cert)"),
    (["--ssl-cert", "/nonexistent.pem"], "cannot load the certificate '/nonexistent.pem'"),
    (["--experimental=yes"], "argument --experimental: ignored explicit argument 'yes'"),
    (["--log-level", "LOUD"], "log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    (["--loop", "nosuch.Loop"], "argument --loop (or $TREMOLO_LOOP): loop: cannot load"),
    (["--invalid"], "unknown flag --invalid"),
    (["--client-max-header-size", "10"], "client_max_header_size must be at least 256"),
])
def test_wrong_input_is_one_line_and_exit_2(tmp_path: Path, argv: list[str],
                                            message: str) -> None:
    (tmp_path / "capp.py").write_text(CAPTURED)
    r = subprocess.run([sys.executable, "-m", "tremolo", "--port", "0", *argv, "capp:app"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (argv, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tremolo: error: "), r.stderr
    assert message in lines[0], r.stderr


def test_importing_main_starts_nothing() -> None:
    r = subprocess.run([sys.executable, "-c", "import tremolo.__main__ as m; "
                        "print(m.usage, m.bind, m.version, type(m.server).__name__)"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.rstrip().endswith(" Tremolo")


# -- serving with the original's flags -------------------------------------------

NATIVE = """
from tremolo import Tremolo

app = Tremolo()

@app.route('/')
async def index(request, **server):
    await request.body()  # (a body left unread would end the connection)
    return b'hello'

@app.route('/boom')
async def boom(**server):
    raise ValueError('it broke here')

@app.route('/experimental')
async def experimental(globals, **server):
    return repr(globals.options.get('experimental')).encode()
"""


def serve(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    (tmp_path / "native.py").write_text(NATIVE)
    return subprocess.Popen([sys.executable, "-m", "tremolo", "--worker-num", "0", *args,
                             "native:app"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)


def test_the_original_flags_change_serving(tmp_path: Path) -> None:
    """--bind with the original's forms (:port; a path relative to the current
    directory, .sock added as the original does), --debug, --experimental, --no-ws, --server-name,
    --client-max-header-size, --log-fmt, --log-level, --loop; --port beside --bind is
    not used, and said so."""
    first, second = free_port(), free_port()
    proc = serve(tmp_path, "--bind", f"127.0.0.1:{first},:{second},./app", "--port", "9",
                 "--debug", "--experimental", "--no-ws", "--server-name", "Orig",
                 "--client-max-header-size", "1024", "--log-level", "info",
                 "--log-fmt", "ORIG %(levelname)s %(message)s",
                 "--loop", "asyncio.SelectorEventLoop")
    try:
        r = wait_up(f"http://127.0.0.1:{first}/", proc)
        assert r.content == b"hello" and r.headers["server"] == "Orig"
        assert httpx.get(f"http://127.0.0.1:{second}/experimental").content == b"True"
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(tmp_path / "app.sock"))) as c:
            assert c.get("http://x/").content == b"hello"
        boom = httpx.get(f"http://127.0.0.1:{first}/boom")
        assert boom.status_code == 500 and "it broke here" in boom.text  # --debug
        upgrade = exchange(first, b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                  b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                           expect=b"hello")
        assert upgrade.startswith(b"HTTP/1.1 200 ") and upgrade.endswith(b"hello")
        big = httpx.get(f"http://127.0.0.1:{first}/", headers={"x-big": "a" * 2000})
        assert big.status_code == 431
        # what --experimental turns on in the original (the connection goes on after a
        # chunked request body), tremolo always does
        two = exchange(first, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                              b"\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n")
        assert two.count(b"HTTP/1.1 200 OK") == 2 and two.endswith(b"hello")
    finally:
        assert stop_process(proc) == 0
    err = proc.stderr.read() if proc.stderr else ""
    assert "tremolo: warning: --port not used: --bind names every listener" in err
    assert re.search(r"^ORIG INFO tremolo .* serving .* on http://127\.0\.0\.1:\d+, "
                     r"http://127\.0\.0\.1:\d+, unix:\./app\.sock, "
                     r"asyncio\.SelectorEventLoop loop", err, re.M), err
    assert "ORIG ERROR unhandled error on /boom" in err


def test_ssl_cert_and_ssl_key_serve_https(tmp_path: Path, pki: dict[str, Path]) -> None:
    port = free_port()
    proc = serve(tmp_path, "--host", "127.0.0.1", "--port", str(port),
                 "--ssl-cert", str(pki["server"]), "--ssl-key", str(pki["server_key"]))
    try:
        ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        assert wait_up(f"https://127.0.0.1:{port}/", proc, verify=ctx).content == b"hello"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
            plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"hello" not in plain.recv(4096)
    finally:
        assert stop_process(proc) == 0


EMBEDDED = """
from tremolo.__main__ import bind, server, usage, version
from tremolo.utils import parse_args

@server.route('/')
async def index(**_):
    return b'embedded'

server.run(**parse_args(help=usage, bind=bind, version=version))
"""


def test_a_program_that_embeds_the_original_command_line(tmp_path: Path) -> None:
    (tmp_path / "embedded.py").write_text(EMBEDDED)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "embedded.py", "--bind",
                             f"127.0.0.1:{port},embedded.sock", "--worker-num", "0"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_up(f"http://127.0.0.1:{port}/", proc).content == b"embedded"
        with httpx.Client(transport=httpx.HTTPTransport(
                uds=str(tmp_path / "embedded.sock"))) as c:
            assert c.get("http://x/").content == b"embedded"
    finally:
        assert stop_process(proc) == 0
    err = proc.stderr.read() if proc.stderr else ""
    # --bind names every listener: nothing on the default host and port
    assert re.search(rf" on http://127\.0\.0\.1:{port}, unix:embedded\.sock, ", err), err
