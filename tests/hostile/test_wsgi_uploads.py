"""Clients uploading long bodies to a WSGI application as fast as they can (the
bodies its threads read from the socket, protocols/lending.py): the worker's descriptors
and memory come back to where they were once they stop.

The threads' reads leave glibc's heaps fragmented (pieces freed by other threads
than made them, in another order), and glibc keeps freed heap mapped until told;
the worker tells it once a second while such bodies come. Before that, these
sixteen clients left the worker at +8 to +9 MiB for good (wrk's, at +23 MiB).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from .server import PeakRSS, serve, wait_for

KIB, MIB = 1024, 1024 * 1024
CLIENTS = 16
BODY = b"u" * MIB
#: growth while the clients upload (sixteen 1 MiB bodies in flight: 16 MiB of socket
#: buffers are the kernel's, not the worker's)
ATTACK_CEILING = 32 * MIB
#: and after: what glibc keeps for the next ones (measured: under 3 MiB)
AFTER_CEILING = 4 * MIB

APP = """
def app(environ, start_response):
    stream, size = environ["wsgi.input"], 0
    while data := stream.read(65536):
        size += len(data)
    body = str(size).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""

REQUEST = (b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY


def upload(port: int, until: float, done: list[int]) -> None:
    """Uploads BODY again and again on one connection until `until`."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        while time.monotonic() < until:
            s.sendall(REQUEST)
            answer = b""
            while not answer.endswith(b"\r\n\r\n%d" % len(BODY)):
                chunk = s.recv(4096)
                assert chunk, answer
                answer += chunk
            done.append(1)


def test_uploads_give_back_descriptors_and_memory(tmp_path: Path) -> None:
    with serve(tmp_path, APP) as server:
        done: list[int] = []
        upload(server.port, time.monotonic() + 0.5, done)  # warm-up: the whole path
        base_fds = server.steady_fds()
        base_rss = server.rss_kib()
        until = time.monotonic() + 3
        with PeakRSS(server) as rss:
            clients = [threading.Thread(target=upload, args=(server.port, until, done))
                       for _ in range(CLIENTS)]
            for c in clients:
                c.start()
            for c in clients:
                c.join(15)
        assert len(done) > 4 * CLIENTS, f"only {len(done)} uploads answered"
        growth = (rss.peak - base_rss) * KIB
        assert growth < ATTACK_CEILING, f"+{growth / MIB:.1f} MiB during the uploads"
        wait_for(lambda: server.fds() == base_fds, "fds back to the baseline", 5)
        wait_for(lambda: (server.rss_kib() - base_rss) * KIB < AFTER_CEILING,
                 f"RSS back within {AFTER_CEILING // MIB} MiB of the baseline", 5)
