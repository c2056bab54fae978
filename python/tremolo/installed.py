"""What else is installed beside tremolo. The original Tremolo (PyPI's `tremolo`) and
this project (PyPI's `tremolo-server`) both provide the package `tremolo`: installed
in one environment, each overwrites the other's files, and uninstalling either removes
files of both. Nothing at import time can repair that, so the server says it once at
start, with the way out."""

from __future__ import annotations

import os
import sys

DISTRIBUTION = "tremolo-server"
ORIGINAL = "tremolo"


def original_version() -> str | None:
    """The version of the original's distribution where this Python finds packages,
    from its metadata directory's name (`tremolo-0.5.3.dist-info`). Read from the
    directories themselves, not importlib.metadata: that module and the email
    package it needs are 2 MB of every process, workers included, for one look."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith(ORIGINAL + "-") and name.endswith((".dist-info", ".egg-info")):
                rest = name[len(ORIGINAL) + 1:].removesuffix(".dist-info")
                return rest.removesuffix(".egg-info").split("-")[0]
    return None


def clash() -> str | None:
    """A warning when the original's distribution is installed here too, else None."""
    version = original_version()
    if version is None:
        return None
    return (f"the original Tremolo ({ORIGINAL} {version}) is installed in this environment "
            f"as well as {DISTRIBUTION}: both provide the package 'tremolo' and overwrite "
            f"each other's files; run `pip uninstall -y {ORIGINAL} {DISTRIBUTION} && "
            f"pip install {DISTRIBUTION}` (or give each its own virtual environment)")
