"""Every program in examples/ does what its docstring says: each is started as
`python3 examples/<name>.py` in a process of its own (PORT=<a free port>), talked to
with real clients (httpx, the `websockets` package, raw sockets), and stopped."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tremolo import Tremolo
from tremolo.testing import serve_in_thread

from ..conftest import load_example
from ..helpers import eventually, exchange, free_port, stop_process

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@contextlib.contextmanager
def example(name: str, cwd: Path, **env: str) -> Iterator[int]:
    """Runs examples/<name>.py on a free port; yields the port once it accepts
    connections. On the way out the program is stopped with SIGINT (as Ctrl-C does)
    and must exit 0; whatever of its process group is left is killed."""
    port = free_port()
    log_path = cwd / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / f"{name}.py")], cwd=cwd,
            env={**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1", **env},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", port), timeout=1):
                break
            assert proc.poll() is None, f"{name} exited: {log_path.read_text()}"
            assert time.monotonic() < deadline, f"{name} never listened"
            time.sleep(0.05)
        yield port
        code = stop_process(proc)
        assert code == 0, f"{name} exited {code}: {log_path.read_text()}"
    finally:
        stop_process(proc, timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its workers, if the master left any


def client(port: int) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)


def raw_get(port: int, target: bytes) -> tuple[int, bytes]:
    """GETs `target` exactly as given (no client normalises it): (status, response)."""
    out = exchange(port, b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % target)
    return int(out.split(b" ", 2)[1]), out


# -- static_files.py -----------------------------------------------------------

SECRET = b"TOP SECRET, outside the root"


@pytest.fixture(scope="module")
def static(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    d = tmp_path_factory.mktemp("static")
    root, outside = d / "root", d / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (root / "hello.txt").write_bytes(b"Hello, static world!\n")
    (root / "index.html").write_bytes(b"<p>the index</p>")
    (root / "sub" / "index.html").write_bytes(b"<p>sub index</p>")
    (root / "a b.txt").write_bytes(b"spaced")
    (root / ".env").write_bytes(b"PASSWORD=hunter2")
    (root / "data.bin").write_bytes(bytes(range(256)) * 40)
    (root / "link_in.txt").symlink_to("hello.txt")
    (root / "link_out.txt").symlink_to(outside / "secret.txt")
    (root / "dir_out").symlink_to(outside)
    with example("static_files", d, STATIC_ROOT=str(root)) as port:
        yield port, root


def test_static_files_are_served_with_validators(static: tuple[int, Path]) -> None:
    port, _ = static
    with client(port) as c:
        r = c.get("/hello.txt")
        assert r.status_code == 200 and r.content == b"Hello, static world!\n"
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert r.headers["accept-ranges"] == "bytes"
        assert r.headers["cache-control"] == "public, max-age=60"
        etag, modified = r.headers["etag"], r.headers["last-modified"]
        r = c.get("/hello.txt", headers={"If-None-Match": etag})
        assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
        r = c.get("/hello.txt", headers={"If-Modified-Since": modified})
        assert r.status_code == 304
        assert c.get("/hello.txt", headers={"If-None-Match": '"other"'}).status_code == 200
        r = c.head("/hello.txt")
        assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "21"
        assert c.get("/").content == b"<p>the index</p>"
        assert c.get("/a%20b.txt").content == b"spaced"
        assert c.get("/link_in.txt").content == b"Hello, static world!\n"  # inside: served
        assert c.get("/data.bin").headers["content-type"] == "application/octet-stream"
        r = c.get("/sub?x=1")
        assert r.status_code == 301 and r.headers["location"] == "/sub/?x=1"
        assert c.get("/sub/").content == b"<p>sub index</p>"
        assert c.get("/hello.txt/").status_code == 404
        # the application's routes are still there, and an unknown path is its 404
        assert c.get("/api/time").text.endswith("Z")
        assert c.get("/nothing.txt").status_code == 404
        assert c.post("/hello.txt").status_code == 404  # GET and HEAD only


def test_static_files_ranges(static: tuple[int, Path]) -> None:
    port, root = static
    data = (root / "data.bin").read_bytes()
    with client(port) as c:
        r = c.get("/data.bin", headers={"Range": "bytes=10-19"})
        assert r.status_code == 206 and r.content == data[10:20]
        assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
        assert c.get("/data.bin", headers={"Range": "bytes=-7"}).content == data[-7:]
        r = c.get("/data.bin", headers={"Range": "bytes=0-1, 100-101"})
        assert r.status_code == 206
        assert r.headers["content-type"].startswith("multipart/byteranges; boundary=")
        assert data[0:2] in r.content and data[100:102] in r.content
        r = c.get("/data.bin", headers={"Range": f"bytes={len(data)}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
        etag = c.head("/data.bin").headers["etag"]
        r = c.get("/data.bin", headers={"Range": "bytes=0-3", "If-Range": etag})
        assert r.status_code == 206 and r.content == data[:4]
        r = c.get("/data.bin", headers={"Range": "bytes=0-3", "If-Range": '"stale"'})
        assert r.status_code == 200 and r.content == data


def test_static_files_under_a_prefix(static: tuple[int, Path]) -> None:
    _, root = static
    app = Tremolo()
    load_example("static_files").StaticFiles(app, root, prefix="/static/", index="")

    @app.route("/page")
    async def page(**server: Any) -> str:
        return "a route"

    with serve_in_thread(app, shutdown_timeout=2) as (_, port), client(port) as c:
        assert c.get("/static/hello.txt").content == b"Hello, static world!\n"
        assert c.get("/static/sub/index.html").content == b"<p>sub index</p>"
        assert c.get("/page").text == "a route"
        for path in ("/hello.txt", "/statichello.txt", "/static", "/static/", "/static/sub"):
            assert c.get(path).status_code == 404, path  # outside the prefix, or no index
        assert raw_get(port, b"/static/../hello.txt")[0] == 403


@pytest.mark.parametrize(("target", "status"), [
    (b"/../outside/secret.txt", 403),
    (b"/%2e%2e/outside/secret.txt", 403),
    (b"/%2E%2E%2Foutside%2Fsecret.txt", 403),
    (b"/sub/../../outside/secret.txt", 403),
    (b"/sub%2f..%2f..%2foutside/secret.txt", 403),
    (b"/..\\outside\\secret.txt", 403),
    (b"/./hello.txt", 403),
    (b"//etc/passwd", 404),  # an absolute path stays inside the root
    (b"/%2fetc%2fpasswd", 404),
    (b"/link_out.txt", 404),  # a symlink to a file outside
    (b"/dir_out/secret.txt", 404),  # through a symlink to a directory outside
    (b"/dir_out", 404),
    (b"/.env", 404),  # dotfiles are not published
    (b"/hello.txt%00.html", 400),
    (b"/%ff", 404),  # not UTF-8
])
def test_static_files_never_leave_the_root(static: tuple[int, Path], target: bytes,
                                           status: int) -> None:
    port, _ = static
    got, out = raw_get(port, target)
    assert got == status, out
    assert SECRET not in out and b"hunter2" not in out and b"root:" not in out


# -- json_api.py -----------------------------------------------------------------

def test_json_api(tmp_path: Path) -> None:
    with example("json_api", tmp_path) as port, client(port) as c:
        assert c.get("/books").json() == {"books": []}
        r = c.post("/books", json={"title": "Dune", "author": "Frank Herbert", "year": 1965})
        assert r.status_code == 201 and r.headers["location"] == "/books/1"
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"id": 1, "title": "Dune", "author": "Frank Herbert", "year": 1965}
        assert c.get("/books/1").json()["title"] == "Dune"
        r = c.put("/books/1", json={"title": "Dune", "author": "F. Herbert"})
        assert r.json() == {"id": 1, "title": "Dune", "author": "F. Herbert", "year": None}
        assert c.get("/books", params={"author": "F. Herbert"}).json()["books"][0]["id"] == 1
        assert c.get("/books", params={"author": "nobody"}).json() == {"books": []}
        assert c.delete("/books/1").status_code == 204

        def error(r: httpx.Response, status: int) -> str:
            assert r.status_code == status, r.text
            assert r.headers["content-type"] == "application/json"
            body = r.json()["error"]
            assert body["status"] == status
            return str(body["message"])

        assert error(c.get("/books/1"), 404) == "no book 1"
        assert error(c.get("/no/such/path"), 404) == "Not Found"
        assert error(c.post("/books", content=b"x"), 415) == "send the book as application/json"
        assert error(c.post("/books", content=b"{", headers={"content-type": "application/json"}),
                     400) == "the body is not valid JSON"
        assert error(c.post("/books", json={"title": 3}), 400) == \
            '"title" must be a non-empty string'
        assert error(c.post("/books", json={"title": "a", "author": "b", "year": "x"}),
                     400) == '"year" must be a whole number'
        r = c.patch("/books")
        assert error(r, 405) == "Method Not Allowed"
        assert r.headers["allow"] == "GET, HEAD, POST"
        r = c.get("/bug")
        assert error(r, 500) == "Internal Server Error" and "secret" not in r.text

        def chunked() -> Iterator[bytes]:
            yield b"[" + b" " * 70000 + b"]"

        r = c.post("/books", content=chunked(), headers={"content-type": "application/json"})
        error(r, 413)  # through the JSON handler (its message is the server's)
    assert "KeyError: 'a secret the client must not see'" in \
        (tmp_path / "json_api.log").read_text()  # the bug is logged


# -- WebSocket examples ------------------------------------------------------------

def test_websocket_broadcast_reaches_every_client(tmp_path: Path) -> None:
    with example("websocket_broadcast", tmp_path) as port:
        url = f"ws://127.0.0.1:{port}/ws"
        with connect(url) as a, connect(url) as b, connect(url) as c:
            a.send("hello, everyone")
            assert [ws.recv(timeout=5) for ws in (a, b, c)] == ["hello, everyone"] * 3
            b.send(b"\x00\x01binary")
            assert [ws.recv(timeout=5) for ws in (a, b, c)] == [b"\x00\x01binary"] * 3
            r = httpx.post(f"http://127.0.0.1:{port}/publish", content=b"from HTTP", timeout=5)
            assert r.text == "sent to 3 client(s)\n"
            assert [ws.recv(timeout=5) for ws in (a, b, c)] == ["from HTTP"] * 3
            for i in range(50):
                a.send(f"m{i}")
            for ws in (a, b, c):
                assert [ws.recv(timeout=5) for _ in range(50)] == [f"m{i}" for i in range(50)]
            c.close()
            eventually(lambda: httpx.post(f"http://127.0.0.1:{port}/publish", content=b"",
                                          timeout=5).text == "sent to 2 client(s)\n",
                       "the broadcast after a client left", timeout=5)
        r = httpx.get(f"http://127.0.0.1:{port}/ws", timeout=5)
        assert r.status_code == 426 and "WebSocket" in r.text


def test_websocket_broadcast_426_names_the_protocol(tmp_path: Path) -> None:
    with example("websocket_broadcast", tmp_path) as port:
        r = httpx.get(f"http://127.0.0.1:{port}/ws", timeout=5)
        assert r.status_code == 426 and r.headers.get("upgrade") == "websocket"
        assert "upgrade" in r.headers.get("connection", "").split(", ")  # RFC 9110 §7.8


def test_websocket_chat(tmp_path: Path) -> None:
    with example("websocket_chat", tmp_path) as port, client(port) as http:
        page = http.get("/")
        assert page.status_code == 200 and "new WebSocket(" in page.text
        url = f"ws://127.0.0.1:{port}/"
        with connect(url + "?name=alice") as alice:
            assert alice.recv(timeout=5) == "* alice joined (1 here)"
            with connect(url + "?name=bob") as bob:
                assert bob.recv(timeout=5) == "* alice joined (1 here)"  # the history
                assert bob.recv(timeout=5) == "* bob joined (2 here)"
                assert alice.recv(timeout=5) == "* bob joined (2 here)"
                bob.send("hi alice")
                for ws in (alice, bob):
                    line = str(ws.recv(timeout=5))
                    assert line.startswith("[") and line.endswith("] bob: hi alice")
                alice.send("   ")  # blank lines are not said
                alice.send("hi bob")
                assert str(bob.recv(timeout=5)).endswith("] alice: hi bob")
                assert str(alice.recv(timeout=5)).endswith("] alice: hi bob")
                assert http.get("/members").json() == {"members": 2}
            assert alice.recv(timeout=5) == "* bob left"
            assert http.get("/members").json() == {"members": 1}
        eventually(lambda: http.get("/members").json() == {"members": 0}, "alice's leave")
        with connect(url) as guest:  # no name: Guest<port>, after the last lines said
            lines = [guest.recv(timeout=5) for _ in range(7)]
            assert lines[-2] == "* alice left"
            assert lines[-1] == f"* Guest{guest.local_address[1]} joined (1 here)"


# -- sse_notifications.py -------------------------------------------------------

def test_sse_notifications(tmp_path: Path) -> None:
    with example("sse_notifications", tmp_path) as port, client(port) as c, \
            client(port) as other:
        assert c.get("/notifications").status_code == 403  # no session yet
        r = c.get("/")
        assert "EventSource('/notifications')" in r.text and "session" in c.cookies
        other.get("/")

        def events(lines: Iterator[str], n: int) -> list[tuple[str, dict[str, str]]]:
            out = []
            while len(out) < n:
                data = next(lines)
                assert data.startswith("data: "), data
                event = next(lines)
                assert next(lines) == ""
                out.append((event, json.loads(data[6:])))
            return out

        with c.stream("GET", "/notifications") as s, \
                other.stream("GET", "/notifications") as s2:
            assert s.headers["content-type"] == "text/event-stream"
            assert s.headers["cache-control"] == "no-cache, must-revalidate"
            mine, theirs = s.iter_lines(), s2.iter_lines()
            listening = ("event: notify", {"text": "listening", "class": "message"})
            assert events(mine, 1) == events(theirs, 1) == [listening]
            assert c.post("/login", data={"password": "tremolo"}).text == "welcome\n"
            assert c.post("/login", data={"password": "guess"}).text == "try again\n"
            assert events(mine, 2) == [
                ("event: notify", {"text": "correct password", "class": "message"}),
                ("event: notify", {"text": "incorrect password", "class": "error"})]
            assert httpx.get(f"http://127.0.0.1:{port}/ping").text == \
                "ping to 2 listener(s)\n"
            ping = ("event: notify", {"text": "ping!", "class": "message"})
            # the other session saw the ping, and not this one's login
            assert events(mine, 1) == events(theirs, 1) == [ping]


# -- uploads ----------------------------------------------------------------------

def test_upload_and_save(tmp_path: Path) -> None:
    big = os.urandom(300_000)
    with example("upload_and_save", tmp_path) as port, client(port) as c:
        files = [("file1", ("notes.txt", b"some notes\n", "text/plain")),
                 ("file2", ("../../evil name.bin", big, "application/octet-stream"))]
        r = c.post("/upload", files=files, data={"field": "x"})
        assert r.status_code == 200
        assert 'Saved <a href="/uploads/notes.txt">notes.txt</a> (11 bytes)' in r.text
        assert 'Saved <a href="/uploads/evil_name.bin">evil_name.bin</a> (300000' in r.text
        uploads = tmp_path / "uploads"
        assert sorted(p.name for p in uploads.iterdir()) == ["evil_name.bin", "notes.txt"]
        assert (uploads / "evil_name.bin").read_bytes() == big
        assert not list(tmp_path.parent.glob("evil*"))  # nothing written outside
        r = c.get("/uploads/evil_name.bin")
        assert r.content == big
        assert r.headers["content-disposition"] == 'attachment; filename="evil_name.bin"'
        assert c.get("/uploads/notes.txt").headers["content-type"] == "text/plain"
        assert c.get("/uploads/..%2fupload_and_save.log").status_code == 404
        r = c.post("/upload", files={"file1": ("", b"", "application/octet-stream")})
        assert "No file was uploaded" in r.text  # an empty file input
        assert c.post("/upload", data={"field": "x"}).status_code == 400  # not multipart

        # an upload cut short leaves nothing behind
        boundary = b"cut"
        head = (b"--cut\r\nContent-Disposition: form-data; name=f; filename=cut.bin\r\n"
                b"Content-Type: application/octet-stream\r\n\r\n")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data;"
                      b" boundary=" + boundary + b"\r\nContent-Length: 1000000\r\n\r\n"
                      + head + b"x" * 200_000)
            eventually(lambda: (uploads / "cut.bin.uploading").exists(), "the partial file")
        eventually(lambda: not (uploads / "cut.bin.uploading").exists(),
                   "the partial file's removal", timeout=10)
        assert not (uploads / "cut.bin").exists()


def test_upload_and_stream(tmp_path: Path) -> None:
    data = os.urandom(500_000)
    with example("upload_and_stream", tmp_path) as port, client(port) as c:
        r = c.post("/upload", data={"before": "x"},
                   files={"file": ("photo.png", data, "image/png")})
        assert r.status_code == 200 and r.content == data
        assert r.headers["content-type"] == "image/png"
        assert r.headers["transfer-encoding"] == "chunked"  # sent as it was read
        r = c.post("/upload", data={"only": "fields"}, files={"x": ("", b"", "text/plain")})
        assert r.status_code == 400 and r.text == "no file in the body"
        assert c.get("/upload").status_code == 400
        assert 'type="file"' in c.get("/").text
    assert "streamed back photo.png (sha256 " in (tmp_path / "upload_and_stream.log").read_text()


# -- redirections and views ------------------------------------------------------

def test_url_redirections(tmp_path: Path) -> None:
    with example("url_redirections", tmp_path) as port, client(port) as c:
        for path in ("/example", "/redirect"):
            r = c.get(path)
            assert r.status_code == 301 and r.headers["location"] == "http://example.com/"
            assert r.content == b""
        r = c.post("/signup", data={"name": "ada"})
        assert r.status_code == 303 and r.headers["location"] == "/welcome"
        assert c.get("/signup").status_code == 405
        r = c.get("/old/a/b", params={"x": "1"})
        assert r.status_code == 308 and r.headers["location"] == "/new/a/b?x=1"
        r = c.post("/old/a", content=b"kept", follow_redirects=True)
        assert r.text == "the new place: /new/a\n" and r.request.method == "POST"
        for target, location in [("/welcome", "/welcome"), ("//evil.example/", "/"),
                                 ("/\\evil.example", "/"), ("https://evil.example", "/"),
                                 ("/a\r\nSet-Cookie: x=1", "/")]:
            r = c.get("/go", params={"next": target})
            assert r.status_code == 302 and r.headers["location"] == location, target
        assert c.post("/signup", data={"name": "ada"}, follow_redirects=True).text == \
            "Welcome!\n"


def test_class_based_views(tmp_path: Path) -> None:
    with example("class_based_views", tmp_path) as port, client(port) as c:
        r = c.post("/notes", content=b"buy milk")
        assert r.status_code == 201 and r.text == "note 1 added\n"
        c.post("/notes", content=b"call mum")
        assert c.get("/notes").text == "1. buy milk\n2. call mum\n"
        assert c.get("/shared/notes").text == "1. buy milk\n2. call mum\n"  # same store
        r = c.post("/shared/notes", content=b"x")  # other options: read-only
        assert r.status_code == 403 and r.text == "these notes are read-only here"
        assert c.post("/notes", content=b"").status_code == 400
        r = c.put("/notes")
        assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, HEAD, POST"
        r = c.head("/notes")
        assert r.status_code == 200 and r.content == b""
        assert c.delete("/shared/notes").status_code == 403
        assert c.delete("/notes").status_code == 204 and c.get("/notes").text == ""
        hits = [c.get("/uptime").text for _ in range(3)]  # one instance for all
        assert [h.split(", ")[1] for h in hits] == \
            ["1 request(s)\n", "2 request(s)\n", "3 request(s)\n"]


def test_module_based_views(tmp_path: Path) -> None:
    with example("module_based_views", tmp_path) as port, client(port) as c:
        r = c.get("/fruits")
        assert '<a href="/fruits/apple">Apple</a>' in r.text and "<li>Banana</li>" in r.text
        assert "fruits/apple.py" in c.get("/fruits/apple").text
        r = c.post("/fruits", data={"fruit": ["Orange", "<b>Kiwi"]})
        assert r.status_code == 303 and r.headers["location"] == "/fruits"
        page = c.get("/fruits/").text
        assert "<li>Orange</li>" in page and "<li>&lt;b&gt;Kiwi</li>" in page
        assert c.post("/fruits/apple").status_code == 405


# -- multiprocess_dict.py --------------------------------------------------------

def test_multiprocess_dict(tmp_path: Path) -> None:
    with example("multiprocess_dict", tmp_path, WORKERS="2") as port:
        url = f"http://127.0.0.1:{port}/"
        seen: dict[str, int] = {}
        requests = 0
        while len(seen) < 2:
            assert requests < 300, "the connections never reached the second worker"
            with httpx.Client(timeout=5) as c:  # a new connection each time
                body = c.get(url).json()
            requests += 1
            seen = body["hits"]
        # every worker counted in the same dict: the counts add up to the requests
        assert body["workers_seen"] == 2 and sum(seen.values()) == requests
