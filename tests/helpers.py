"""Shared test helpers: vectors, parser runs, and raw socket exchanges."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tremolo import _core

VECTORS = Path(__file__).parent / "vectors" / "h1"


def load_vectors() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(VECTORS.glob("*.json")):
        cases.extend(json.loads(path.read_text()))
    return cases


def latin1(s: str) -> bytes:
    return s.encode("latin-1")


@dataclass
class Req:
    method: bytes
    target: bytes
    version: str
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    complete: bool = False


@dataclass
class Outcome:
    requests: list[Req]
    error: int | None
    paused: bool
    #: the body of the answer to a refusal
    answer: str | None = None


def run_parser(pieces: list[bytes], **limits: int) -> Outcome:
    """Feeds pieces to a fresh parser; returns what came out, split-independent."""
    parser = _core.RequestParser(**limits)
    reqs: list[Req] = []
    error = None
    answer = None
    for piece in pieces:
        for ev in parser.feed(piece):
            if isinstance(ev, _core.RequestHead):
                reqs.append(Req(ev.method, ev.target, ev.version, ev.headers))
            elif isinstance(ev, bytes):
                reqs[-1].body += ev
            elif ev is None or isinstance(ev, list):
                reqs[-1].trailers = ev or []
                reqs[-1].complete = True
            else:
                assert isinstance(ev, _core.HTTPParseError), ev
                error, answer = ev.status, ev.answer
    return Outcome(reqs, error, parser.paused, answer)


#: each pytest-xdist worker takes its ports from a range of its own, below the
#: kernel's ephemeral ones: a port the kernel picks for one worker (bind to port 0,
#: then closed) could otherwise be picked for another before the first server binds it
_PORTS = 2000
_next_port = [0]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    base = 10000 + int(worker[2:]) % 8 * _PORTS
    for _ in range(_PORTS):
        port = base + _next_port[0] % _PORTS
        _next_port[0] += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # held by something else: the next one
            return port
    raise AssertionError(f"no free port from {base} to {base + _PORTS}")


def wait_up(url: str, proc: subprocess.Popen[Any] | None = None, timeout: float = 15,
            **kw: Any) -> Any:
    """GETs `url` until the server answers (httpx.Response); fails if `proc` exits or
    `timeout` passes first."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2, **kw)
        except httpx.TransportError:
            assert proc is None or proc.poll() is None, f"server exited ({proc.returncode})"
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen[Any], sig: int = 2, timeout: float = 15) -> int:
    """Sends `sig` (SIGINT by default) to a server process and waits for it; kills it
    when it is still there after `timeout`. Returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def exchange(port: int, data: bytes, *, timeout: float = 5.0, host: str = "127.0.0.1",
             until_closed: bool = True, expect: bytes | None = None) -> bytes:
    """Sends raw bytes; returns what the server answered, until it closes the
    connection (or `expect` was seen). Bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
            if expect is not None and expect in out:
                break
        return out


def split_responses(data: bytes) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """Splits Content-Length or chunked responses: (status line, headers, body)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip()
        if b"content-length" in headers:
            n = int(headers[b"content-length"])
            body, data = rest[:n], rest[n:]
        elif headers.get(b"transfer-encoding") == b"chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    _, _, data = rest.partition(b"\r\n")
                    break
                body += rest[:size]
                rest = rest[size + 2:]
        else:
            body, data = rest, b""
        out.append((lines[0], headers, body))
    return out


def eventually(check: Any, what: str, proc: subprocess.Popen[Any] | None = None,
               timeout: float = 15) -> None:
    """Waits until `check()` is true (a connection error counts as not yet); fails if
    `proc` exits or `timeout` passes first."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (OSError, httpx.TransportError):
            pass
        assert proc is None or proc.poll() is None, f"{what} exited"
        assert time.monotonic() < deadline, f"{what} never came up"
        time.sleep(0.05)


def start_nginx(directory: Path, http: str) -> subprocess.Popen[bytes]:
    """A real nginx (Debian's) in the foreground, everything of it in `directory`,
    with `http` as the body of its http block. Stop it with SIGQUIT."""
    import os
    import shutil

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(nginx), "nginx is missing: `make system-deps` installs it"
    d = directory
    # as root, nginx's workers would drop to nobody, who cannot reach sockets here
    user = "user root;" if os.geteuid() == 0 else ""
    (d / "nginx.conf").write_text(
        f"{user}\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n access_log off;\n client_body_temp_path {d}/body;\n"
        f" proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n"
        f" uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n{http}\n}}\n")
    return subprocess.Popen([nginx, "-p", str(d), "-c", str(d / "nginx.conf"), "-g",
                             "daemon off;"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
