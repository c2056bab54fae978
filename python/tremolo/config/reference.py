"""The names an option goes by outside Python (its flag, its variable), how its default
is shown, and the table of docs/configuration.md, all made from the declarations
(`tools/config_table.py` writes the table; a test checks the docs hold it)."""

from __future__ import annotations

from typing import Any

from .kinds import SIZE, MiB, Spec
from .options import SPECS

ENV_PREFIX = "TREMOLO_"
#: the docs/configuration.md lines between which the table is written
BEGIN = "<!-- options: made from python/tremolo/config/options.py by tools/config_table.py -->"
END = "<!-- end of options -->"


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def shown(name: str, spec: Spec, default: Any) -> str:
    """The default as people write it: `2 MiB`, `'INFO'`, `None (off)`."""
    if spec.shown is not None:
        return spec.shown
    if spec.kind is SIZE and isinstance(default, int) and default >= MiB \
            and default % MiB == 0:
        return f"{default // MiB} MiB"
    return repr(default)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table() -> str:
    """The options table of docs/configuration.md."""
    from .options import Options

    defaults = Options()
    rows = ["| option | default | flag, variable | meaning |", "|---|---|---|---|"]
    for name, spec in SPECS.items():
        names = f"`{flag(name)}`" + "".join(f", `{a}`" for a in spec.aliases) + \
            f", `${env_name(name)}`" if spec.flag else "the `--ssl-*` flags"
        meaning = spec.doc or spec.help
        rows.append(f"| {name} | {_cell(shown(name, spec, getattr(defaults, name)))} | "
                    f"{names} | {meaning} |")
    return "\n".join(rows)
