"""The release wheels: built by tools/build_wheels.py (maturin --zig, manylinux_2_17)
for every CPython 3.11+ found here, checked by auditwheel, each installed into a fresh
virtual environment of its version whose PATH has no Rust toolchain, and serving a
native app, an ASGI app (HTTP and WebSocket) and a WSGI app from there. The sdist
carries what a build from source needs."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from ..helpers import free_port, stop_process, wait_up
from ..process.test_metrics import APP as ASGI  # HTTP, and a WebSocket echo

pytestmark = pytest.mark.external
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from build_wheels import interpreters  # noqa: E402

PYTHONS = interpreters(current_only=False)
#: a PATH without cargo, rustc or maturin (they live in ~/.cargo/bin and the
#: development interpreter's bin)
BARE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

NATIVE = """
import sys
from tremolo import Tremolo

app = Tremolo()

@app.route("/hello")
async def hello(**server):
    return "native from " + __import__("tremolo").__file__

@app.route("/ws")
async def echo(websocket=None, **server):
    async for message in websocket:
        await websocket.send(message)

if __name__ == "__main__":
    app.run("127.0.0.1", int(sys.argv[1]), worker_num=1)
"""

WSGI = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi ", environ["SERVER_PROTOCOL"].encode()]
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheels, built once per run: pytest-xdist's workers share the base of their
    temporary directories, and the first to take the lock builds there (two builds
    at once would share cargo's target directory, and each take both cores)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # this run's, shared by its workers
    out = shared / "dist"
    with open(shared / "dist.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "built").exists():
            out.mkdir(exist_ok=True)
            built = subprocess.run([sys.executable, str(ROOT / "tools" / "build_wheels.py"),
                                    "--out", str(out)], capture_output=True, text=True,
                                   timeout=1200)
            assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
            assert built.stdout.count("ok, manylinux_2_17_x86_64") == len(PYTHONS), \
                built.stdout
            (out / "built").touch()
    return out


@pytest.fixture(scope="module", params=sorted(PYTHONS), ids=lambda v: f"cp{v[0]}{v[1]}")
def venv(request: pytest.FixtureRequest, dist: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Path:
    major, minor = request.param
    home = tmp_path_factory.mktemp(f"venv{major}{minor}")
    env = {"PATH": BARE_PATH, "HOME": str(home)}
    subprocess.run([PYTHONS[request.param], "-m", "venv", str(home / "v")], check=True,
                   env=env, timeout=300)
    python = home / "v" / "bin" / "python"
    (wheel,) = dist.glob(f"tremolo_server-*-cp{major}{minor}-*.whl")
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                                "--only-binary", ":all:", str(wheel)],
                               capture_output=True, text=True, timeout=600,
                               env={**env, "PIP_CACHE_DIR": os.path.expanduser(
                                   "~/.cache/pip")})
    assert installed.returncode == 0, installed.stderr
    return python


def test_the_wheels_are_manylinux_and_the_sdist_is_whole(dist: Path) -> None:
    wheels = sorted(dist.glob("tremolo_server-*.whl"))
    assert [w.name.split("-")[2] for w in wheels] == [f"cp{a}{b}" for a, b in sorted(PYTHONS)]
    for wheel in wheels:
        assert "manylinux_2_17_x86_64" in wheel.name
        shown = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)],
                               capture_output=True, text=True, timeout=120)
        assert '"manylinux_2_17_x86_64"' in shown.stdout.replace("\n", " "), shown.stdout
    (sdist,) = dist.glob("tremolo_server-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for needed in ("Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md",
                   "rust/src/lib.rs", "python/tremolo/__init__.py", "python/tremolo/_core.pyi"):
        assert needed in names, needed


def test_the_installed_wheel_needs_no_rust(venv: Path, tmp_path: Path) -> None:
    env = {"PATH": f"{venv.parent}:{BARE_PATH}"}
    assert shutil.which("cargo", path=env["PATH"]) is None
    assert shutil.which("rustc", path=env["PATH"]) is None
    where = subprocess.run([str(venv), "-c", "import tremolo, tremolo._core as c; "
                            "print(tremolo.__file__); print(c.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert where.returncode == 0, where.stderr
    assert all(str(venv.parent.parent) in line for line in where.stdout.split())


@pytest.fixture
def served(venv: Path, tmp_path: Path) -> Iterator[Callable[..., int]]:
    procs: list[subprocess.Popen[bytes]] = []
    env = {"PATH": f"{venv.parent}:{BARE_PATH}", "HOME": str(tmp_path)}

    def start(*args: str) -> int:
        port = free_port()
        proc = subprocess.Popen([str(venv), *[a.replace("PORT", str(port)) for a in args]],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_up(f"http://127.0.0.1:{port}/hello", proc, timeout=30)
        return port
    (tmp_path / "native.py").write_text(NATIVE)
    (tmp_path / "asgi.py").write_text(ASGI)
    (tmp_path / "wsgi.py").write_text(WSGI)
    yield start
    for proc in procs:
        stop_process(proc, signal.SIGTERM, 20)


def test_native_asgi_wsgi_and_websocket_from_the_wheel(served: Callable[..., int],
                                                       venv: Path) -> None:
    port = served("native.py", "PORT")
    text = httpx.get(f"http://127.0.0.1:{port}/hello").text
    assert text.startswith("native from " + str(venv.parent.parent))
    with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
        ws.send("ping")
        assert ws.recv(timeout=10) == "ping"
    port = served("-m", "tremolo", "--port", "PORT", "asgi:app")
    assert httpx.get(f"http://127.0.0.1:{port}/hello").text == "hello"
    with connect(f"ws://127.0.0.1:{port}/", open_timeout=10) as ws:
        ws.send("echo")
        assert ws.recv(timeout=10) == "echo"
    port = served("-m", "tremolo", "--port", "PORT", "wsgi:app")
    assert httpx.get(f"http://127.0.0.1:{port}/hello").text == "wsgi HTTP/1.1"
