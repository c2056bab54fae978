"""What else is installed beside tremolo. The original Tremolo (PyPI's `tremolo`) and
this project (PyPI's `tremolo-server`) both provide the package `tremolo`: installed
in one environment, each overwrites the other's files, and uninstalling either removes
files of both. Nothing at import time can repair that, so the server says it once at
start, with the way out."""

from __future__ import annotations

import importlib.metadata

DISTRIBUTION = "tremolo-server"
ORIGINAL = "tremolo"


def clash() -> str | None:
    """A warning when the original's distribution is installed here too, else None."""
    try:
        version = importlib.metadata.version(ORIGINAL)
    except importlib.metadata.PackageNotFoundError:
        return None
    return (f"the original Tremolo ({ORIGINAL} {version}) is installed in this environment "
            f"as well as {DISTRIBUTION}: both provide the package 'tremolo' and overwrite "
            f"each other's files; run `pip uninstall -y {ORIGINAL} {DISTRIBUTION} && "
            f"pip install {DISTRIBUTION}` (or give each its own virtual environment)")
