"""Makes a Python 2.7 virtual environment with Autobahn|Testsuite (wstest) in DIR.

    python3 tools/autobahn_env.py .autobahn

wstest runs on Python 2.7 only. It is taken from pyenv (~/.pyenv/versions/2.7.*) or
the system (python2.7; Debian's python2.7 package), and gets virtualenv<20.22 (the
last that makes 2.7 environments) and autobahntestsuite==25.10.1, which pins its own
2.7 dependencies.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys


def python27() -> str | None:
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/2.7*/bin/python2.7")))
    if found:
        return found[-1]
    return shutil.which("python2.7")


def main() -> int:
    target = sys.argv[1] if len(sys.argv) > 1 else ".autobahn"
    py = python27()
    if py is None:
        print("autobahn: no Python 2.7 here (pyenv's 2.7, or apt-get install python2.7); "
              "the Autobahn tests cannot run", file=sys.stderr)
        return 1
    quiet = ["--quiet", "--disable-pip-version-check"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    subprocess.run([py, "-m", "pip", "install", *quiet, "virtualenv<20.22"], check=True,
                   env=env)
    subprocess.run([py, "-m", "virtualenv", "--quiet", target], check=True, env=env)
    subprocess.run([os.path.join(target, "bin", "pip"), "install", *quiet,
                    "autobahntestsuite==25.10.1"], check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
