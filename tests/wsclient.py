"""A raw WebSocket client for tests: it sends any frame, valid or not, and reads the
server's frames one by one. Every read is bounded by a timeout."""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
from typing import Any

from tremolo import _core

KEY = base64.b64encode(b"0123456789abcdef")


class RawWS:
    def __init__(self, port: int, path: str = "/", *, headers: list[tuple[str, str]] | None = None,
                 timeout: float = 5.0, version: str = "13", key: bytes = KEY,
                 early: bytes = b"") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key.decode()}",
                 f"Sec-WebSocket-Version: {version}"]
        lines += [f"{n}: {v}" for n, v in headers or []]
        # `early`: frames sent with the handshake, before its answer
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + early)
        while b"\r\n\r\n" not in self.buf:
            chunk = self._recv()
            if not chunk:
                raise ConnectionError(f"closed during the handshake: {self.buf!r}")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *fields = head.split(b"\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in
                        (f.partition(b":") for f in fields)}

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(1 << 20)
        except (TimeoutError, ConnectionResetError):
            return b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, payload: bytes | str, opcode: int | None = None, fin: bool = True,
             mask: bool = True) -> None:
        if opcode is None:
            opcode = 1 if isinstance(payload, str) else 2
        self.sock.sendall(_core.ws_frame(payload, opcode, fin, os.urandom(4) if mask else None))

    def _need(self, n: int, deadline: float) -> bool:
        while len(self.buf) < n:
            if time.monotonic() > deadline:
                return False
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self._recv()
            if not chunk:
                return False
            self.buf += chunk
        return True

    def recv_frame(self, timeout: float | None = None) -> tuple[bool, int, bytes] | None:
        """(fin, opcode, payload) of the server's next frame (the RSV1 bit is kept in
        the opcode as 0x40), or None if the connection closed or the time ran out."""
        deadline = time.monotonic() + (timeout or self.timeout)
        if not self._need(2, deadline):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        assert b1 & 0x80 == 0, "a server frame must not be masked"
        n, pos = b1 & 0x7F, 2
        if n == 126:
            if not self._need(4, deadline):
                return None
            n, pos = int.from_bytes(self.buf[2:4], "big"), 4
        elif n == 127:
            if not self._need(10, deadline):
                return None
            n, pos = int.from_bytes(self.buf[2:10], "big"), 10
        if not self._need(pos + n, deadline):
            return None
        payload, self.buf = self.buf[pos:pos + n], self.buf[pos + n:]
        return bool(b0 & 0x80), b0 & 0x4F, payload

    def recv_close(self, timeout: float | None = None) -> int | None:
        """Reads frames up to the server's Close; its code (1005 for none), or None."""
        while (frame := self.recv_frame(timeout)) is not None:
            if frame[1] == 8:
                return int.from_bytes(frame[2][:2], "big") if frame[2] else 1005
        return None

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """Whether the server closes the TCP connection within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
        return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawWS:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def close_code_on_stop(target: Any, path: str, **options: Any) -> int | None:
    """Serves `target`, opens a WebSocket on `path` (an echo), then stops the server
    gracefully: the close code the client got (None if it got none in 10 s)."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from tremolo.testing import serve_in_thread

    got: dict[str, int | None] = {}
    server = serve_in_thread(target, **options)
    _, port = server.__enter__()
    try:
        with connect(f"ws://127.0.0.1:{port}{path}") as ws:
            ws.send("x")
            assert ws.recv(timeout=5) == "x"

            def read() -> None:
                try:
                    ws.recv(timeout=10)
                except ConnectionClosed as exc:
                    got["code"] = exc.rcvd.code if exc.rcvd else None

            reader = threading.Thread(target=read)
            reader.start()
            stopping, server = server, None
            stopping.__exit__(None, None, None)  # a graceful stop, bounded
            reader.join(10)
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    return got.get("code")
