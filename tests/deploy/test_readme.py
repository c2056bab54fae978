"""The README's quick start does what it says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from tremolo.testing import serve_in_thread

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_app() -> Any:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    code = "\n".join(blocks)
    # the blocking parts are for humans; the test serves the app itself
    code = "\n".join(line for line in code.splitlines()
                     if not line.lstrip().startswith(("app.run(", "app.listen(",
                                                      "if __name__")))
    namespace: dict[str, Any] = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace["app"]


def test_readme_quick_start() -> None:
    app = readme_app()
    with serve_in_thread(app, shutdown_timeout=2) as (_, port), \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
        assert c.get("/hello").text == "Hello world!"
        r = c.get("/stream")
        assert r.text == "Hello world!" and r.headers["transfer-encoding"] == "chunked"
        assert c.get("/page/5?x=1").content == b"page 5, x=1"
        assert c.get("/items").text == "list"
        assert c.post("/items", content=b"new").content == b"new"
        assert c.get("/admin/panel").status_code == 403
        assert c.get("/admin/panel", headers={"token": "t"}).status_code == 404
        assert c.get("/echo").text == "this is a WebSocket endpoint"
        with connect(f"ws://127.0.0.1:{port}/echo") as ws:
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
