"""Fails when an import in python/tremolo points up or sideways between layers.

Every import counts: at module level, inside functions, and under TYPE_CHECKING. A
module may import its own group (a package or module listed below) and any group in a
lower layer; groups that share a layer never import each other.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

# top to bottom; a layer is a list of independent groups
LAYERS: list[list[str]] = [
    ["tremolo", "tremolo.__main__"],
    ["tremolo.application", "tremolo.cli", "tremolo.testing", "tremolo.lib"],
    ["tremolo.supervisor", "tremolo.loading", "tremolo.cli_options", "tremolo.cli_habits",
     "tremolo.reload"],
    ["tremolo.worker_process"],
    ["tremolo.listening", "tremolo.metrics", "tremolo.signals"],
    ["tremolo.server"],
    ["tremolo.framework", "tremolo.asgi", "tremolo.wsgi"],
    ["tremolo.protocols", "tremolo.tls"],
    ["tremolo.config", "tremolo.exceptions", "tremolo.locks", "tremolo.utils",
     "tremolo.logs", "tremolo.installed"],
    ["tremolo._core"],
]
ROOT = Path(__file__).resolve().parent.parent / "python"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return (base.with_suffix(".py").exists() or (base / "__init__.py").exists()
            or any(base.parent.glob(base.name + ".*.so")) or base.with_suffix(".pyi").exists())


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every tremolo module `path` imports."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.append((node.lineno, full if is_module(full) else base))
    return [(line, m) for line, m in out if m == "tremolo" or m.startswith("tremolo.")]


def place(module: str) -> tuple[int, str] | None:
    """(layer, group) of a module: the longest group name it falls under."""
    best: tuple[int, str] | None = None
    for depth, groups in enumerate(LAYERS):
        for group in groups:
            if (module == group or module.startswith(group + ".")) and (
                    best is None or len(group) > len(best[1])):
                best = (depth, group)
    return best


def main() -> int:
    errors = []
    for path in sorted(ROOT.joinpath("tremolo").rglob("*.py")):
        source = module_name(path)
        here = place(source)
        if here is None:
            errors.append(f"{path}: module {source} is in no layer (add it to LAYERS)")
            continue
        for line, target in imports(path):
            there = place(target)
            if there is None:
                errors.append(f"{path}:{line}: {target} is in no layer")
            elif there[1] != here[1] and there[0] <= here[0]:
                way = "up" if there[0] < here[0] else "sideways"
                errors.append(f"{path}:{line}: {source} imports {target}: an arrow "
                              f"pointing {way} ({here[1]} -> {there[1]})")
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
