"""Real ASGI frameworks behind the real server, driven by httpx over 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, UploadFile
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.routing import Route

from tremolo.asgi import ASGIAdapter
from tremolo.testing import serve_in_thread

FILE: dict[str, Path] = {}


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
    yield {"db": "connected"}


async def home(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world", "db": request.state.db,
                         "query": dict(request.query_params)})


async def stream(request: Request) -> StreamingResponse:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(5):
            yield b"part %d\n" % i
    return StreamingResponse(gen(), media_type="text/plain")


async def upload(request: Request) -> JSONResponse:
    form = await request.form()
    f = form["file"]
    data = await f.read()  # type: ignore[union-attr]
    return JSONResponse({"name": f.filename, "size": len(data), "field": form["field"]})  # type: ignore[union-attr]


async def file(request: Request) -> FileResponse:
    return FileResponse(FILE["path"])


starlette_app = Starlette(routes=[Route("/", home), Route("/stream", stream),
                                  Route("/upload", upload, methods=["POST"]),
                                  Route("/file", file)], lifespan=lifespan)

fastapi_app = FastAPI(lifespan=lifespan)


@fastapi_app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None) -> dict[str, Any]:
    return {"item_id": item_id, "q": q}


@fastapi_app.post("/items")
async def create_item(item: dict[str, Any]) -> dict[str, Any]:
    return {"created": item}


@fastapi_app.post("/files")
async def files(file: UploadFile) -> dict[str, Any]:
    return {"name": file.filename, "size": len(await file.read())}


def serve(app: Any) -> Any:
    return serve_in_thread(lambda state: ASGIAdapter(app, state), shutdown_timeout=2,
                           download_rate=1 << 40, client_max_body_size=16 << 20)


@pytest.fixture(scope="module")
def starlette_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    FILE["path"] = tmp_path_factory.mktemp("fw") / "page.html"
    FILE["path"].write_bytes(b"<p>" + b"x" * 50_000 + b"</p>")
    with serve(starlette_app) as (_, port):
        yield port


def test_starlette(starlette_port: int) -> None:
    base = f"http://127.0.0.1:{starlette_port}"
    with httpx.Client(base_url=base, timeout=10) as c:
        assert c.get("/?a=1").json() == {"hello": "world", "db": "connected", "query": {"a": "1"}}
        r = c.get("/stream")
        assert r.text == "".join(f"part {i}\n" for i in range(5))
        r = c.post("/upload", data={"field": "v"}, files={"file": ("f.bin", b"z" * 300_000)})
        assert r.json() == {"name": "f.bin", "size": 300_000, "field": "v"}
        r = c.get("/file")
        assert r.content == FILE["path"].read_bytes()
        assert r.headers["content-type"].startswith("text/html")
        assert c.get("/missing").status_code == 404


def test_fastapi() -> None:
    with serve(fastapi_app) as (_, port), httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        assert c.get("/items/5?q=x").json() == {"item_id": 5, "q": "x"}
        assert c.get("/items/notanint").status_code == 422
        assert c.post("/items", json={"a": [1, 2]}).json() == {"created": {"a": [1, 2]}}
        r = c.post("/files", files={"file": ("data.txt", b"hello" * 1000)})
        assert r.json() == {"name": "data.txt", "size": 5000}
        assert c.get("/docs").status_code == 200


def test_a_failed_body_is_answered_with_its_status_not_the_apps_500() -> None:
    """FastAPI turns the disconnect it is given into a 500 of its own; the server
    answers the body's failure instead: 400 for a malformed chunked body, 408 for a
    body that does not come."""
    import socket

    with serve_in_thread(lambda state: ASGIAdapter(fastapi_app, state), shutdown_timeout=2,
                         request_timeout=0.5) as (_, port):
        for request, status in [
            (b"POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nzz\r\n", b"400"),
            (b"POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             b"Content-Length: 10\r\n\r\n{}", b"408"),
        ]:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(request)
                answer = b""
                while b"\r\n\r\n" not in answer:
                    chunk = sock.recv(4096)
                    assert chunk, answer
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 " + status), answer
