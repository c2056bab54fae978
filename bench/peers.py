"""The servers the benchmark knows: how to start each one on a port, and how its peers
get installed (ensure_peers).

Python peers come from PyPI with `python3 -m pip install` (PEER_PACKAGES); nginx, wrk
and the libuv socketify.py links come from Debian (`make system-deps`). The original
Tremolo shares our package name, so it runs from its own virtual environment
(.venv-tremolo053, made on first use by tools/original_env.py).
"""

from __future__ import annotations

import contextlib
import ctypes.util
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness import BENCH, PY, ROOT, SERVER_CPU, VENV053, running

PEER_PACKAGES = ["uvicorn==0.54.0", "httptools==0.9.0", "uvloop==0.23.0", "granian==2.8.7", "h11",
                 "gunicorn==27.0.1", "websockets==17.4", "socketify==0.0.31",
                 "Flask==3.1.3", "Django==5.2.19"]
NGINX_DIR = Path("/tmp/tremolo-bench-nginx")


@dataclass
class Server:
    name: str
    argv: list[str]
    path: str = "/hello"
    script: str | None = None  # a wrk Lua script (uploads)
    connections: int | None = None  # overrides --connections
    cpus: str | None = SERVER_CPU  # taskset's CPU list; None: unpinned
    env: dict[str, str] = field(default_factory=dict)


def start(server: Server, port: int) -> contextlib.AbstractContextManager[int]:
    """Run the server (pinned as it says) until the block ends; gives its pid."""
    return running(server.argv, port, server.name, server.cpus, server.env)


def nginx_conf(port: int, workers: int) -> str:
    """An nginx serving GET /hello (a 12-byte `return`) and /64k (a static 65536-byte
    file), access log off, keep-alive unbounded; its files go to NGINX_DIR."""
    NGINX_DIR.mkdir(exist_ok=True)
    NGINX_DIR.chmod(0o755)  # the worker runs as nobody and reads /64k from here
    (NGINX_DIR / "64k").write_bytes(b"x" * 65536)
    (NGINX_DIR / "64k").chmod(0o644)
    conf = NGINX_DIR / f"nginx-{port}-{workers}.conf"
    conf.write_text(f"""\
worker_processes {workers};
daemon off;
pid {NGINX_DIR}/nginx-{port}.pid;
error_log {NGINX_DIR}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    sendfile on;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {NGINX_DIR};
        location = /hello {{ default_type text/plain; return 200 "Hello world!"; }}
        location = /64k {{ default_type text/plain; }}
    }}
}}
""")
    return str(conf)


def servers(port: int) -> list[Server]:
    uv = [PY, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
          "--no-access-log", "--log-level", "warning", "--loop", "uvloop",
          "--app-dir", str(BENCH), "apps.asgi_hello:app"]
    gr = [PY, "-m", "granian", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
          "--no-ws", "--log-level", "warning", "--working-dir", str(BENCH)]
    gr2 = [*gr[:gr.index("--workers")], "--workers", "2", *gr[gr.index("--workers") + 2:]]
    hello = str(BENCH / "apps" / "tremolo_hello.py")
    streaming = str(BENCH / "apps" / "streaming.py")
    ws_echo = str(BENCH / "apps" / "ws_echo.py")
    asgi_hello = str(BENCH / "apps" / "asgi_hello.py") + ":app"
    cli = [PY, "-m", "tremolo", "--port", str(port), "--worker-num", "1",
           "--log-level", "ERROR", "--no-access-log"]
    cli2 = [*cli[:cli.index("--worker-num")], "--worker-num", "2",
            *cli[cli.index("--worker-num") + 2:]]
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return [
        Server("tremolo-asgi", [*cli, asgi_hello]),
        Server("tremolo-wsgi", [*cli, str(BENCH / "apps" / "wsgi_hello.py") + ":app"]),
        Server("tremolo-asgi-metrics", [*cli, "--metrics", f"127.0.0.1:{port + 1}",
                                        asgi_hello]),
        # (above INFO the access log is off, as uvicorn's: --log-level info, as there)
        Server("tremolo-asgi-accesslog", [*cli[:-3], "--log-level", "info", asgi_hello]),
        Server("uvicorn-accesslog", [*[a for a in uv if a != "--no-access-log"][:-1],
                                     "--log-level", "info", "--http", "httptools",
                                     "apps.asgi_hello:app"]),
        *wsgi_servers(port, cli, gr, gr2, cli2),
        Server("tremolo-streaming", [PY, streaming, str(port)]),
        Server("tremolo-streaming-asgi", [*cli, "--client-max-body-size", str(64 << 20),
                                          "--buffer-size", "65536", streaming + ":asgi"]),
        Server("uvicorn-streaming", [*uv[:-1], "--http", "httptools", "apps.streaming:asgi"]),
        Server("granian-streaming", [*gr, "--interface", "rsgi", "apps.streaming:rsgi"]),
        Server("tremolo", [PY, hello, str(port)]),
        Server("uvicorn-httptools", [*uv, "--http", "httptools"]),
        Server("uvicorn-h11", [*uv, "--http", "h11"]),
        Server("granian-asgi", [*gr, "--interface", "asgi", "apps.asgi_hello:app"]),
        Server("granian-rsgi", [*gr, "--interface", "rsgi", "apps.rsgi_hello:app"]),
        Server("tremolo-0.5.3", [str(VENV053 / "bin" / "python"), hello, str(port)]),
        Server("tremolo-ws-native", [PY, ws_echo, str(port)]),
        Server("tremolo-ws-asgi", [*cli, "--ws-max-payload-size", str(1 << 20),
                                   "--buffer-size", "65536", ws_echo + ":asgi"]),
        Server("granian-ws-asgi", [*[a for a in gr if a != "--no-ws"], "--interface", "asgi",
                                   "apps.ws_echo:asgi"]),
        Server("uvicorn-ws", [*uv[:-1], "--http", "httptools", "--ws", "websockets-sansio",
                              "--ws-max-size", str(1 << 20), "apps.ws_echo:asgi"]),
        Server("tremolo-0.5.3-ws", [str(VENV053 / "bin" / "python"), ws_echo, str(port)]),
        # issue 19: socketify.py's own API (HTTP and WebSocket echo), nginx as the ceiling
        Server("socketify", [PY, str(BENCH / "apps" / "socketify_app.py"), str(port)]),
        Server("nginx", [nginx, "-c", nginx_conf(port, 1)]),
        # issue 19's `scaling`: two workers, unpinned
        Server("tremolo-2w", [PY, hello, str(port)], cpus=None, env={"BENCH_WORKERS": "2"}),
        Server("tremolo-asgi-2w", [*cli2, asgi_hello], cpus=None),
        Server("granian-rsgi-2w", [*gr2, "--interface", "rsgi", "apps.rsgi_hello:app"],
               cpus=None),
        Server("granian-asgi-2w", [*gr2, "--interface", "asgi", "apps.asgi_hello:app"],
               cpus=None),
        Server("uvicorn-httptools-2w", [*uv[:-1], "--workers", "2", "--http", "httptools",
                                        "apps.asgi_hello:app"], cpus=None),
        Server("nginx-2w", [nginx, "-c", nginx_conf(port, 2)], cpus=None),
    ]


def wsgi_servers(port: int, cli: list[str], gr: list[str], gr2: list[str],
                 cli2: list[str]) -> list[Server]:
    """Each WSGI app (bench/apps/wsgi_*.py) under tremolo, granian and gunicorn (sync,
    and gthread with tremolo's default of 5 threads): `NAME` for the plain app,
    `NAME-flask` and `NAME-django` for the frameworks' hello world."""
    gun = [PY, "-m", "gunicorn", "-w", "1", "--chdir", str(BENCH), "-b", f"127.0.0.1:{port}",
           "--log-level", "warning"]
    out = []
    for suffix, module in (("", "wsgi_hello"), ("-flask", "wsgi_flask"),
                           ("-django", "wsgi_django")):
        target = str(BENCH / "apps" / f"{module}.py") + ":app"
        out += [
            Server(f"tremolo-wsgi{suffix}", [*cli, target]),
            Server(f"granian-wsgi{suffix}", [*gr, "--interface", "wsgi", f"apps.{module}:app"]),
            Server(f"gunicorn-sync{suffix}", [*gun, "-k", "sync", f"apps.{module}:app"]),
            Server(f"gunicorn-gthread{suffix}", [*gun, "-k", "gthread", "--threads", "5",
                                                 f"apps.{module}:app"]),
        ]
    hello = str(BENCH / "apps" / "wsgi_hello.py") + ":app"
    return [*out,
            Server("tremolo-wsgi-2w", [*cli2, hello], cpus=None),
            Server("granian-wsgi-2w", [*gr2, "--interface", "wsgi", "apps.wsgi_hello:app"],
                   cpus=None)]


def ensure_peers(names: set[str]) -> None:
    """Install the Python peers and the original Tremolo's environment; stop with what
    to install when a Debian package a chosen server needs is missing."""
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk (or make system-deps)")
    if any(n.startswith("nginx") for n in names) and shutil.which("nginx") is None:
        sys.exit("nginx is missing: apt-get install nginx-light (or make system-deps)")
    if "socketify" in names and ctypes.util.find_library("uv") is None:
        sys.exit("libuv is missing (socketify.py links it): apt-get install libuv1 "
                 "(or make system-deps)")
    subprocess.run([PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *PEER_PACKAGES], check=True)
    subprocess.run([PY, str(ROOT / "tools" / "original_env.py"), str(VENV053)], check=True,
                   stdout=subprocess.DEVNULL)
