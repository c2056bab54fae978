"""TLS, bounded: a handshake is a phase of the connection, under request_timeout and
limit_concurrency like any other, and the PROXY protocol header comes before it, as
load balancers send it."""

from __future__ import annotations

import socket
import ssl
import struct
import time
from pathlib import Path

import pytest

from .server import serve, wait_for

APP = '''
async def app(scope, receive, send):
    body = f"{scope['client'][0]} {scope['scheme']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
'''

GET = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def tls_args(certificate: tuple[Path, Path]) -> list[str]:
    cert, key = certificate
    return ["--interface", "asgi", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]


def client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def https_get(port: int, preamble: bytes = b"", together: bool = False,
              timeout: float = 5) -> bytes:
    """GET / over TLS on a raw socket; `preamble` (a PROXY header) is sent first:
    alone, or in the same write as the ClientHello (`together`)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context().wrap_bio(incoming, outgoing)
    if preamble and not together:
        sock.sendall(preamble)
        time.sleep(0.05)
        preamble = b""
    deadline = time.monotonic() + timeout
    with sock:
        while True:
            assert time.monotonic() < deadline, "the handshake never ended"
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            out = preamble + outgoing.read()
            preamble = b""
            if out:
                sock.sendall(out)
            data = sock.recv(65536)
            assert data, "closed during the handshake"
            incoming.write(data)
        tls.write(GET)
        sock.sendall(outgoing.read())
        answer = b""
        while time.monotonic() < deadline:
            try:
                piece = tls.read(65536)
            except ssl.SSLWantReadError:
                piece = None
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            if piece == b"":
                break  # the server's close_notify
            if piece:
                answer += piece
                continue
            data = sock.recv(65536)
            if not data:
                break
            incoming.write(data)
        return answer


def test_a_silent_client_is_dropped_within_request_timeout(
        tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    """A ClientHello that never comes was held 60 s (the TLS layer's own default),
    whatever request_timeout said."""
    with serve(tmp_path, APP, *tls_args(certificate), "--request-timeout", "2") as srv:
        clients = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(20)]
        try:
            wait_for(lambda: srv.sockets("ESTABLISHED") == 20, "connections accepted", 5)
            took = wait_for(lambda: srv.sockets() == 0, "silent handshakes dropped", 6)
            assert took < 4.5, took
        finally:
            for c in clients:
                c.close()
        assert https_get(srv.port).endswith(b"127.0.0.1 https")


def test_handshakes_count_against_limit_concurrency(
        tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    """300 silent ClientHellos under --limit-concurrency 50 were all accepted and
    held; now past 50 they are closed at once (no handshake spent on them)."""
    with serve(tmp_path, APP, *tls_args(certificate), "--limit-concurrency", "50",
               "--request-timeout", "10") as srv:
        fds = srv.fds()
        clients = []
        try:
            for _ in range(300):
                clients.append(socket.create_connection(("127.0.0.1", srv.port)))
            wait_for(lambda: srv.sockets("ESTABLISHED") <= 50, "the excess closed", 5)
            time.sleep(0.3)
            assert srv.sockets("ESTABLISHED") == 50
            assert srv.fds() <= fds + 50 + 5
            # every one past the limit sees its connection closed, without a byte
            closed = 0
            for c in clients[50:]:
                c.settimeout(2)
                try:
                    closed += c.recv(1) == b""
                except OSError:
                    closed += 1
            assert closed == 250
        finally:
            for c in clients:
                c.close()
        wait_for(lambda: srv.sockets() == 0, "all gone", 5)
        assert https_get(srv.port).endswith(b"127.0.0.1 https")


def proxy_v1(client: str) -> bytes:
    return f"PROXY TCP4 {client} 127.0.0.1 4444 443\r\n".encode()


def proxy_v2(client: str) -> bytes:
    addresses = socket.inet_aton(client) + socket.inet_aton("127.0.0.1") + \
        struct.pack("!HH", 4444, 443)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + \
        struct.pack("!H", len(addresses)) + addresses


@pytest.mark.parametrize("together", [False, True], ids=["apart", "same-write"])
@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_proxy_header_comes_before_tls(tmp_path: Path, certificate: tuple[Path, Path],
                                           version: str, together: bool, loop: str) -> None:
    """HAProxy and cloud load balancers send the PROXY header on the TCP connection,
    before the TLS ClientHello (tremolo expected it inside TLS: every handshake
    failed). Also when the header and the ClientHello arrive in one read."""
    header = proxy_v1("198.51.100.4") if version == "v1" else proxy_v2("198.51.100.4")
    with serve(tmp_path, APP, *tls_args(certificate), "--proxy-protocol", version,
               "--loop", loop) as srv:
        for _ in range(3):
            answer = https_get(srv.port, header, together)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert answer.endswith(b"198.51.100.4 https")

