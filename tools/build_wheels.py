"""Builds the release wheels and the sdist into dist/ (make wheel).

One wheel per CPython found here (3.11 and later: this interpreter, those on PATH,
pyenv's), each linked against glibc 2.17 by maturin's --zig, so that it installs on
any common Linux (manylinux2014, manylinux_2_17) without a Rust toolchain; then the
sdist. `auditwheel show` checks each wheel's platform tag. Not one abi3 wheel: the
stable ABI was measured to cost instructions per request (docs/install.md).

    python3 tools/build_wheels.py [--out dist] [--current]   (--current: this Python only)
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPATIBILITY = "manylinux2014"
TAG = "manylinux_2_17_x86_64"
OLDEST = (3, 11)


def version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    major, minor = map(int, out.split())
    return major, minor


def interpreters(current_only: bool) -> dict[tuple[int, int], str]:
    """Each supported CPython version once, by the first interpreter found for it."""
    candidates = [sys.executable]
    if not current_only:
        for minor in range(OLDEST[1], 20):
            found = shutil.which(f"python3.{minor}")
            if found:
                candidates.append(found)
        home = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
        candidates += sorted(glob.glob(f"{home}/versions/3.*/bin/python3"))
    out: dict[tuple[int, int], str] = {}
    for python in candidates:
        v = version(python)
        if v is not None and v >= OLDEST and v not in out:
            out[v] = python
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "dist"))
    ap.add_argument("--current", action="store_true", help="this interpreter's wheel only")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    found = interpreters(args.current)
    print("building for CPython " + ", ".join(f"{a}.{b}" for a, b in sorted(found)))
    command = [sys.executable, "-m", "maturin", "build", "--release", "--zig",
               "--compatibility", COMPATIBILITY, "--out", str(out)]
    for python in found.values():
        command += ["-i", python]
    subprocess.run(command, cwd=ROOT, check=True)
    subprocess.run([sys.executable, "-m", "maturin", "sdist", "--out", str(out)], cwd=ROOT,
                   check=True)
    failed = []
    for wheel in sorted(out.glob("tremolo_server-*.whl")):
        shown = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)],
                               capture_output=True, text=True)
        ok = f'"{TAG}"' in shown.stdout.replace("\n", " ")
        print(f"{wheel.name}: {'ok, ' + TAG if ok else 'NOT ' + TAG}")
        if not ok:
            failed.append(shown.stdout + shown.stderr)
    if failed:
        print("\n".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
