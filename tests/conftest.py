from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tremolo.testing import serve_in_thread

ROOT = Path(__file__).resolve().parents[1]


def load_example(name: str) -> ModuleType:
    """Imports examples/<name>.py as a module (its app.run() is behind __main__)."""
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hello_port() -> Iterator[int]:
    app = load_example("hello").app
    with serve_in_thread(app, shutdown_timeout=2) as (_, port):
        yield port


@pytest.fixture(scope="module")
def stream_port() -> Iterator[int]:
    app = load_example("hello_stream").app
    with serve_in_thread(app, shutdown_timeout=2) as (_, port):
        yield port
