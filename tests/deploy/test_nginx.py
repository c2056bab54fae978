"""Behind a real nginx (Debian's, started here) configured with the snippet of
docs/deployment.md as it is written there (TLS included): the proxy fields nginx sets
are believed from it, and only those; a client's own X-Forwarded-* and Forwarded
fields reach no application (native, ASGI, WSGI) as its address, scheme or host."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ..helpers import eventually, free_port, start_nginx, stop_process

pytestmark = pytest.mark.external  # nginx

ROOT = Path(__file__).resolve().parents[2]

APPS = {
    "tremolo": """
import json
from tremolo import Tremolo
app = Tremolo()

@app.route("/")
async def seen(request, **server):
    return json.dumps({"client": request.ip.decode(), "scheme": request.scheme.decode(),
                       "host": request.host.decode()})
""",
    "asgi": """
import json
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    body = json.dumps({"client": scope["client"][0] if scope["client"] else None,
                       "scheme": scope["scheme"], "host": headers[b"host"].decode()})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})
""",
    "wsgi": """
import json
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"client": environ["REMOTE_ADDR"],
                        "scheme": environ["wsgi.url_scheme"],
                        "host": environ["HTTP_HOST"]}).encode()]
""",
}


def documented_nginx(sock: Path, port: int, cert: Path, key: Path,
                     clears_forwarded: bool = True) -> str:
    """The nginx snippet of docs/deployment.md, with this test's socket, port and
    certificate in place of the example's (and, unless `clears_forwarded`, without
    its line that clears a client's Forwarded field)."""
    doc = (ROOT / "docs" / "deployment.md").read_text()
    snippet = re.search(r"## Behind nginx\n\n```nginx\n(.*?)```", doc, re.S)
    assert snippet is not None, "docs/deployment.md has no nginx snippet"
    text = snippet.group(1)
    edits = [("unix:/run/myapp/app.sock", f"unix:{sock}"),
                     ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
                     ("# ssl_certificate ...;",
                      f"ssl_certificate {cert}; ssl_certificate_key {key};")]
    if not clears_forwarded:
        edits.append(('proxy_set_header Forwarded "";', ""))
    for old, new in edits:
        assert old in text, f"the documented snippet changed: no {old!r}"
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize("clears_forwarded", [True, False],
                         ids=["as-documented", "forwarded-passed-through"])
@pytest.mark.parametrize("interface", list(APPS))
def test_behind_the_documented_nginx(tmp_path: Path, interface: str, clears_forwarded: bool,
                                     certificate: tuple[Path, Path]) -> None:
    """Also with nginx passing a client's Forwarded on (a snippet without the line
    that clears it, as this project documented before): the server itself believes
    only the family it is told to (X-Forwarded-* by default)."""
    sock = tmp_path / "app.sock"
    (tmp_path / "fwd.py").write_text(APPS[interface])
    # as docs/deployment.md runs it: trusting the UNIX socket's peer, nginx
    app = subprocess.Popen([sys.executable, "-m", "tremolo", "--bind", str(sock),
                            "--workers", "0", "--no-access-log", "--interface", interface,
                            "--forwarded-allow-ips", "unix", "fwd:app"], cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    proxy = start_nginx(tmp_path, documented_nginx(sock, port, *certificate,
                                                        clears_forwarded))
    try:
        eventually(sock.exists, "tremolo", app)
        url = f"https://127.0.0.1:{port}/"
        eventually(lambda: httpx.get(url, timeout=1, verify=False).status_code == 200,
                   "nginx", proxy)
        honest = httpx.get(url, timeout=5, verify=False).json()
        assert honest == {"client": "127.0.0.1", "scheme": "https", "host": "127.0.0.1"}
        # a client's own claims, in both families: nginx sets the X-Forwarded-* ones
        # itself (appending to X-Forwarded-For) and clears Forwarded
        forged = httpx.get(url, timeout=5, verify=False, headers={
            "Forwarded": "for=6.6.6.6;proto=http;host=evil.example",
            "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": "evil.example"}).json()
        assert forged == honest
    finally:
        stop_process(proxy, signal.SIGQUIT, 10)
        stop_process(app, signal.SIGINT, 10)
