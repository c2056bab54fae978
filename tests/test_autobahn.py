"""Autobahn|Testsuite chapters 1 to 10 (framing, pings, reserved bits, opcodes,
fragmentation, UTF-8, close handling, limits) against the native and the ASGI echo
servers: no case may fail. `make autobahn` runs every chapter, 12 and 13
(permessage-deflate) included, and writes docs/autobahn-summary.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WSTEST = ROOT / ".autobahn" / "bin" / "wstest"


@pytest.mark.timeout(900)
def test_autobahn_chapters_1_to_10(tmp_path: Path) -> None:
    assert WSTEST.exists(), "wstest is missing: `make autobahn-env` installs it"
    cases = ",".join(f"{n}.*" for n in range(1, 11))
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "autobahn" / "run.py"),
                          "--cases", cases, "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=880)
    print(run.stdout)
    assert run.returncode == 0, run.stderr[-5000:]
    assert "tremolo-native" in run.stdout and "tremolo-asgi" in run.stdout
    assert "| 10 |" in run.stdout  # every chapter ran
