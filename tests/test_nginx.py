"""Behind a real nginx (Debian's, started here): the proxy fields nginx sets are
believed from it, and only from it; a client's own X-Forwarded-For is not."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from .helpers import eventually, free_port, start_nginx, stop_process

APP = """
import json
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    body = json.dumps({"client": scope["client"][0] if scope["client"] else None,
                       "scheme": scope["scheme"], "host": headers[b"host"].decode()})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})
"""

HTTP = """
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://unix:{sock}:;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-Host public.example;
        }}
        location /rfc7239/ {{
            proxy_pass http://unix:{sock}:;
            proxy_set_header Forwarded "for=$remote_addr;proto=https;host=rfc.example";
        }}
    }}
"""


def test_behind_nginx(tmp_path: Path) -> None:
    sock = tmp_path / "app.sock"
    (tmp_path / "fwd.py").write_text(APP)
    app = subprocess.Popen([sys.executable, "-m", "tremolo", "--bind", str(sock),
                            "--workers", "0", "--no-access-log",
                            "--forwarded-allow-ips", "unix", "fwd:app"], cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    proxy = start_nginx(tmp_path, HTTP.format(port=port, sock=sock))
    try:
        eventually(sock.exists, "tremolo", app)
        url = f"http://127.0.0.1:{port}"
        eventually(lambda: httpx.get(url + "/", timeout=1).status_code == 200, "nginx", proxy)
        # the client's own claim is left of what nginx appends: not believed
        seen = httpx.get(url + "/", headers={"X-Forwarded-For": "6.6.6.6"}, timeout=5).json()
        assert seen == {"client": "127.0.0.1", "scheme": "https", "host": "public.example"}
        seen = httpx.get(url + "/rfc7239/", headers={"Forwarded": "for=6.6.6.6"},
                         timeout=5).json()
        assert seen == {"client": "127.0.0.1", "scheme": "https", "host": "rfc.example"}
    finally:
        stop_process(proxy, signal.SIGQUIT, 10)
        stop_process(app, signal.SIGINT, 10)
