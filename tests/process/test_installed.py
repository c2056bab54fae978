"""The original Tremolo installed beside this project: said once at start, with the
way out (both provide the package `tremolo`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tremolo import installed

from ..helpers import free_port, wait_up


def fake_original(where: Path) -> Path:
    """A distribution named `tremolo` 0.5.3 as pip leaves it (its metadata)."""
    info = where / "tremolo-0.5.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tremolo\nVersion: 0.5.3\n")
    return where


def test_nothing_is_said_without_the_original() -> None:
    assert installed.clash() is None


def test_the_original_beside_this_one_is_named_with_the_way_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(fake_original(tmp_path)))
    warning = installed.clash()
    assert warning is not None
    assert "tremolo 0.5.3" in warning
    assert "pip uninstall -y tremolo tremolo-server && pip install tremolo-server" in warning


def test_the_server_says_it_at_start(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def app(environ, start_response):\n"
                                     "    start_response('200 OK', [])\n"
                                     "    return [b'ok']\n")
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(fake_original(tmp_path / "site"))}
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--port", str(port),
                             "--worker-num", "0", "app:app"], cwd=tmp_path,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert wait_up(f"http://127.0.0.1:{port}/", proc).content == b"ok"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert "WARNING: the original Tremolo (tremolo 0.5.3) is installed" in err
