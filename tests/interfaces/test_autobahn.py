"""Autobahn|Testsuite chapters 1 to 10 (framing, pings, reserved bits, opcodes,
fragmentation, UTF-8, close handling, limits) against the native and the ASGI echo
servers: no case may fail. `make autobahn` runs every chapter, 12 and 13
(permessage-deflate) included, and writes docs/autobahn-summary.md."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.external  # Autobahn's wstest (Python 2.7)

ROOT = Path(__file__).resolve().parents[2]
WSTEST = ROOT / ".autobahn" / "bin" / "wstest"


@pytest.mark.timeout(330)
def test_autobahn_chapters_1_to_10(tmp_path: Path) -> None:
    assert WSTEST.exists(), "wstest is missing: `make autobahn-env` installs it"
    cases = ",".join(f"{n}.*" for n in range(1, 11))
    # in a session of its own, so that whatever ends the test (its timeout, an
    # interrupt) ends run.py's servers and wstest with it
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "autobahn" / "run.py"),
                             "--cases", cases, "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)  # (it takes about 30 s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log = tmp_path / "wstest.log"
        last = log.read_text()[-2000:] if log.exists() else "(no wstest.log)"
        pytest.fail(f"Autobahn did not finish in 300 s; wstest's last lines:\n{last}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    print(stdout)
    assert proc.returncode == 0, stderr[-5000:]
    assert "tremolo-native" in stdout and "tremolo-asgi" in stdout
    assert "| 10 |" in stdout  # every chapter ran
