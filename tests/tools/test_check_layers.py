"""tools/check_layers.py: the import arrows and the adapters' seam hold in the code,
and each rule fails on a violation planted in a copy of the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "tools" / "check_layers.py"


def check(root: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = [] if root is None else ["--root", str(root)]
    return subprocess.run([sys.executable, str(CHECK), *args], capture_output=True,
                          text=True, timeout=60)


def test_the_code_keeps_its_layers_and_seam() -> None:
    done = check()
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("module", "line", "said"), [
    ("asgi/http.py", "    x = ex.protocol.state", "an adapter reads .protocol"),
    ("wsgi/cycle.py", "    x = self.ex._body", "reads ex._body, an Exchange's private"),
    ("asgi/http.py", "    x = getattr(ex, 'protocol')", "reaches .protocol with getattr()"),
    ("framework/websocket.py", "    x = ex.flow.closed", "an adapter reads .flow"),
    ("framework/native.py", "    from ..protocols.http import HTTPProtocol",
     "an adapter imports HTTPProtocol"),
    ("framework/request.py", "    from ..protocols import http",
     "an adapter imports protocols.http"),
    ("protocols/flow.py", "    from ..asgi import adapter", "an arrow pointing up"),
    ("asgi/http.py", "    from ..wsgi import cycle", "an arrow pointing sideways"),
])
def test_each_rule_fails_on_a_violation(tmp_path: Path, module: str, line: str,
                                        said: str) -> None:
    copy = tmp_path / "python"
    shutil.copytree(ROOT / "python" / "tremolo", copy / "tremolo",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "tremolo" / module
    target.write_text(target.read_text() + f"\n\ndef _planted(ex, self) -> None:\n{line}\n")
    done = check(copy)
    assert done.returncode == 1 and said in done.stderr, done.stderr
    assert f"tremolo/{module}:" in done.stderr
