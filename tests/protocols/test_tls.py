"""TLS and mutual TLS: the context (TLS 1.2 at least, Mozilla's intermediate
suites, ALPN http/1.1), client certificates and the ASGI tls extension, checked with
httpx and a real `openssl s_client`; and TLS from the command line."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tremolo.asgi import ASGIAdapter
from tremolo.testing import serve_in_thread

from ..helpers import free_port, wait_up
from ..interfaces.test_shared_behaviour import asgi_app


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    tls = scope["extensions"].get("tls") or {}
    body = json.dumps({"scheme": scope["scheme"], "name": tls.get("client_cert_name"),
                       "version": tls.get("tls_version"),
                       "chain": tls.get("client_cert_chain")})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})


def tls_options(pki: dict[str, Path], reqs: str = "required") -> dict[str, Any]:
    return {"cert": str(pki["server"]), "key": str(pki["server_key"]),
            "ca_certs": str(pki["ca"]), "cert_reqs": reqs}


@pytest.fixture(scope="module")
def mtls(pki: dict[str, Path]) -> Iterator[int]:
    with serve_in_thread(lambda state: ASGIAdapter(app, state), shutdown_timeout=2,
                         ssl=tls_options(pki)) as (_, port):
        yield port


def client(pki: dict[str, Path], who: str | None) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    if who is not None:
        ctx.load_cert_chain(str(pki[who]), str(pki[f"{who}_key"]))
    return httpx.Client(verify=ctx, timeout=5)


def test_a_client_certificate_reaches_the_application(
        mtls: int, pki: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), client(pki, "client") as c:
        for _ in range(3):
            seen = c.get(f"https://127.0.0.1:{mtls}/").json()
            assert seen["scheme"] == "https" and seen["version"] in (0x0303, 0x0304)
            assert seen["name"] == "CN=client-one,O=Tremolo Tests"
            [pem] = seen["chain"]
            assert pem.startswith("-----BEGIN CERTIFICATE-----")
            assert ssl.PEM_cert_to_DER_cert(pem) == ssl.PEM_cert_to_DER_cert(
                pki["client"].read_text())
    # no warning for every TLS connection (asyncio's about eof_received)
    assert not [r for r in caplog.records if "eof_received" in r.getMessage()]


@pytest.mark.parametrize("who", [None, "stranger"])
@pytest.mark.external  # openssl s_client
def test_without_a_trusted_client_certificate_there_is_no_answer(
        mtls: int, pki: dict[str, Path], who: str | None) -> None:
    with client(pki, who) as c, pytest.raises(httpx.TransportError):
        c.get(f"https://127.0.0.1:{mtls}/")


def s_client(port: int, *args: str) -> str:
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       input="", capture_output=True, text=True, timeout=20)
    return r.stdout + r.stderr


@pytest.mark.external  # openssl s_client
def test_openssl_sees_the_intermediate_profile(pki: dict[str, Path]) -> None:
    with serve_in_thread(lambda state: ASGIAdapter(app, state), shutdown_timeout=2,
                         ssl=tls_options(pki, "none")) as (_, port):
        ok = s_client(port, "-alpn", "http/1.1", "-CAfile", str(pki["ca"]))
        assert "ALPN protocol: http/1.1" in ok and "Verify return code: 0 (ok)" in ok
        assert "TLSv1.3" in ok
        ok12 = s_client(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
        assert "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" in ok12
        for refused in (["-tls1_1"], ["-tls1"],
                        ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"],  # CBC
                        ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA"]):
            out = s_client(port, *refused)
            assert "Cipher is (NONE)" in out or "no protocols available" in out, refused


def test_tls_from_the_command_line(tmp_path: Path, pki: dict[str, Path]) -> None:
    (tmp_path / "tlsapp.py").write_text(
        "import json\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    name = scope['extensions']['tls']['client_cert_name']\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': str(name).encode()})\n")
    port = free_port()
    args = [sys.executable, "-m", "tremolo", "--port", str(port), "--worker-num", "0",
            "--ssl-certfile", str(pki["server"]), "--ssl-keyfile", str(pki["server_key"]),
            "--ssl-ca-certs", str(pki["ca"]), "--ssl-cert-reqs", "optional", "tlsapp:app"]
    proc = subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        assert wait_up(f"https://127.0.0.1:{port}/", proc, verify=ctx).text == "None"
        with client(pki, "client") as c:
            assert c.get(f"https://127.0.0.1:{port}/").text == \
                "CN=client-one,O=Tremolo Tests"
    finally:
        proc.terminate()
        proc.wait(15)
    assert "eof_received" not in (proc.stderr.read() if proc.stderr else "")


@pytest.mark.parametrize("flags, message", [
    (["--ssl-certfile", "/nonexistent.pem"], "cannot load the certificate '/nonexistent.pem'"),
    (["--ssl-certfile", "{server}", "--ssl-keyfile", "{server_key}", "--ssl-cert-reqs",
      "required"], "needs ca_certs"),
    (["--ssl-certfile", "{server}", "--ssl-keyfile", "{server_key}", "--ssl-ciphers",
      "NOPE-CIPHER"], "no cipher suite"),
])
def test_tls_mistakes_are_one_line_before_anything_starts(
        tmp_path: Path, pki: dict[str, Path], flags: list[str], message: str) -> None:
    (tmp_path / "tlsapp.py").write_text("async def app(scope, receive, send):\n    pass\n")
    flags = [f.format(**{k: str(v) for k, v in pki.items()}) for f in flags]
    r = subprocess.run([sys.executable, "-m", "tremolo", "--port", "0", *flags,
                        "tlsapp:app"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("tremolo: error: TLS (--ssl-*): ssl:") and message in last, last


def handshake_then(port: int, ctx: ssl.SSLContext, request: bytes, until: bytes) -> bytes:
    """A TLS client whose last handshake message and `request` leave in one write,
    so that the read which ends the server's handshake brings the request too.
    Returns the answer up to `until` (or what came before the server closed)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                data = sock.recv(65536)
                assert data, "closed during the handshake"
                incoming.write(data)
        tls.write(request)
        sock.sendall(outgoing.read())  # the Finished and the request together
        answer = b""
        while not answer.endswith(until):
            try:
                answer += tls.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            data = sock.recv(65536)
            if not data:
                break
            incoming.write(data)
        return answer


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_body_sent_with_the_handshakes_end_is_read(loop: str, pki: dict[str, Path]) -> None:
    """What the read that ends the handshake brings (here a head and 30 KB of body, in
    one segment) is kept until the connection is HTTP. It was bounded by 4 x
    buffer_size (4 KiB here, 64 KiB by default), and asyncio's TLS layer hands over
    all it decrypted at once: such connections were dropped without an answer."""
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    body = b"b" * 30_000
    request = (b"POST /length HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
               % len(body) + body)
    with serve_in_thread(lambda state: ASGIAdapter(asgi_app, state), loop=loop,
                         buffer_size=1024, shutdown_timeout=2, ssl={"cert": str(pki["server"]),
                                                  "key": str(pki["server_key"])}) as (_, port):
        for _ in range(5):
            answer = handshake_then(port, ctx, request, b"30000")
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\n30000")
