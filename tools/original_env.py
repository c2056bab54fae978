"""Makes a virtual environment with the original Tremolo (tremolo==0.5.3 from PyPI) in
DIR, unless it is there already; prints its python.

    python3 tools/original_env.py .venv-tremolo053

The original shares our package name, so it gets an environment of its own: the
differential tests (tests/framework/test_against_the_original.py) and the benchmarks
run it from there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ORIGINAL = "tremolo==0.5.3"


def ensure(target: Path) -> Path:
    python = target / "bin" / "python"
    # (-I: a PYTHONPATH pointing at our tremolo must not make it look missing)
    probe = [str(python), "-I", "-c",
             "import tremolo, sys; sys.exit(tremolo.__version__ != '0.5.3')"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(target)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    ORIGINAL], check=True)
    subprocess.run(probe, check=True)
    return python


if __name__ == "__main__":
    print(ensure(Path(sys.argv[1] if len(sys.argv) > 1 else ".venv-tremolo053").resolve()))
