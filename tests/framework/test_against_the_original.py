"""The differential suite: the same Tremolo programs (tests/differential/apps.py) run
under this tremolo and under the original (tremolo==0.5.3, in .venv-tremolo053, made
here when missing), the same requests go to both, and the answers are compared:
status, reason, every field but Date, Server and the framing ones
(Content-Length, Transfer-Encoding, Connection), and the body. A difference fails,
unless it is listed in tests/differential/cases.py:EXPECTED with its reason (and in
docs/differences.md); a listed difference that is gone fails too."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..differential.cases import CASES, EXPECTED, Case, Difference
from ..helpers import exchange, free_port

pytestmark = pytest.mark.external  # the original Tremolo's environment

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parents[1] / "differential" / "apps.py"
VENV = ROOT / ".venv-tremolo053"
DROPPED = {b"date", b"server", b"content-length", b"transfer-encoding", b"connection"}


def original_python() -> str:
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "original_env.py"), str(VENV)],
                         check=True, capture_output=True, text=True, timeout=600)
    return out.stdout.strip()


class Running:
    """One server process (group), stopped for sure."""

    def __init__(self, python: str, variant: str, log: Path) -> None:
        self.port = free_port()
        self.log = log.open("wb")
        self.proc = subprocess.Popen([python, str(APPS), str(self.port), variant],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=str(APPS.parent))
        deadline = time.monotonic() + 30
        while not self.answers():
            assert self.proc.poll() is None, f"{variant} server exited: see {log}"
            assert time.monotonic() < deadline, f"{variant} server never answered: see {log}"
            time.sleep(0.1)

    def answers(self) -> bool:
        try:
            return b"HTTP/" in exchange(self.port, b"GET /diff-probe HTTP/1.1\r\nHost: x\r\n"
                                        b"Connection: close\r\n\r\n", timeout=1)
        except OSError:
            return False

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        """SIGTERM (already sent to all of them, so they stop side by side), then
        SIGKILL for one that is still there after 10 s."""
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)
        self.log.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[int, int]]]:
    """variant -> (this tremolo's port, the original's port)."""
    logs = tmp_path_factory.mktemp("differential")
    original = original_python()
    running: list[Running] = []
    ports = {}
    try:
        for variant in sorted({c.variant for c in CASES}):
            ours = Running(sys.executable, variant, logs / f"ours-{variant}.log")
            running.append(ours)
            theirs = Running(original, variant, logs / f"original-{variant}.log")
            running.append(theirs)
            ports[variant] = (ours.port, theirs.port)
        yield ports
    finally:
        for r in running:
            r.signal(signal.SIGTERM)
        for r in running:
            r.stop()


def parse(raw: bytes, method: bytes) -> dict[str, Any]:
    """What is compared of an answer."""
    if not raw:
        return {"answer": None}
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return {"garbled": raw[:200]}
    status_line, *lines = head.split(b"\r\n")
    _, code, reason = [*status_line.split(b" ", 2), b""][:3]
    fields = []
    framing = {}
    for line in lines:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name in DROPPED:
            framing[name] = value
        else:
            fields.append((name.decode("latin-1"), value.decode("latin-1")))
    if method == b"HEAD" or code in (b"204", b"304") or code.startswith(b"1"):
        body = rest  # nothing should follow (for a 101, the frames)
    elif framing.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = dechunk(rest)
    elif b"content-length" in framing:
        body = rest[:int(framing[b"content-length"])]
    else:
        body = rest
    return {"status": int(code), "reason": reason.decode("latin-1"),
            "fields": sorted(fields), "body": body}


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


def ask(port: int, case: Case) -> dict[str, Any]:
    if case.frames:
        return parse(websocket_exchange(port, case), case.method)
    return parse(exchange(port, case.request, timeout=10), case.method)


def websocket_exchange(port: int, case: Case) -> bytes:
    """The handshake, then the client's frames once the answer came; all the server
    sent until it closed (bounded)."""
    deadline = time.monotonic() + 10
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(case.request)
        raw = b""
        sent = False
        while time.monotonic() < deadline:
            if not sent and b"\r\n\r\n" in raw:
                sock.sendall(case.frames)
                sent = True
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            raw += chunk
    return raw


def without(answer: dict[str, Any], d: Difference) -> dict[str, Any]:
    """`answer` without the parts `d` expects to differ."""
    out = dict(answer)
    if d.status:
        out.pop("status", None)
        out.pop("reason", None)
    if d.body:
        out.pop("body", None)
    if d.fields and "fields" in out:
        out["fields"] = [f for f in out["fields"] if f[0] not in d.fields]
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_same_answer_as_the_original(case: Case, servers: dict[str, tuple[int, int]]) -> None:
    ours_port, theirs_port = servers[case.variant]
    ours, theirs = ask(ours_port, case), ask(theirs_port, case)
    expected = EXPECTED.get(case.name)
    if expected is None:
        assert ours == theirs
        return
    assert ours != theirs, (f"{case.name} is listed as a difference but is answered alike: "
                            "take it off EXPECTED and docs/differences.md")
    if not expected.everything:
        # it differs where it is expected to, and only there
        assert without(ours, expected) == without(theirs, expected)


def test_every_expected_difference_has_a_case_and_the_docs_count_them() -> None:
    assert set(EXPECTED) <= {c.name for c in CASES}
    docs = " ".join((ROOT / "docs" / "differences.md").read_text().split())
    assert f"the same {len(CASES)} requests" in docs
    assert f"The {len(EXPECTED)} listed differences" in docs
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"{len(CASES)} requests, every difference listed" in readme
