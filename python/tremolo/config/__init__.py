"""Every server option: declared once (options.py), with the kinds of value they hold
(kinds.py) and the reference table made from them (reference.py)."""

from .kinds import ConfigError, Kind, MiB, Spec
from .options import LOG_LEVELS, SPECS, UNLIMITED, Options

__all__ = ["LOG_LEVELS", "SPECS", "UNLIMITED", "ConfigError", "Kind", "MiB", "Options", "Spec"]
