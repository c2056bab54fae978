"""Fails when an import in python/tremolo points up or sideways between layers, or
when an application adapter reaches past the Exchange into the connection.

Every import counts: at module level, inside functions, and under TYPE_CHECKING. A
module may import its own group (a package or module listed below) and any group in a
lower layer; groups that share a layer never import each other.

The adapters (ADAPTERS) see a connection only as protocols.Connection (an Exchange's
`connection`, or what connection_made/lost get): they never import HTTPProtocol,
never read an attribute named `protocol` (but `request.protocol`, the original's API
for programs) or `flow` (the Exchange and the WebSocket session say what an adapter
needs of it), by name or with getattr, and never read an Exchange's private
attributes (`ex._body`). The names an Exchange goes by are EXCHANGES: an Exchange
under another name is for the type checker (Connection is a typed interface), not
for this check.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

# top to bottom; a layer is a list of independent groups
LAYERS: list[list[str]] = [
    ["tremolo", "tremolo.__main__"],
    ["tremolo.application", "tremolo.cli", "tremolo.testing", "tremolo.lib"],
    ["tremolo.launch"],
    ["tremolo.supervisor", "tremolo.loading", "tremolo.cli_options", "tremolo.cli_habits",
     "tremolo.autoreload"],
    ["tremolo.worker_process"],
    ["tremolo.watchers"],
    ["tremolo.listening", "tremolo.metrics", "tremolo.signals"],
    ["tremolo.server"],
    ["tremolo.framework", "tremolo.asgi", "tremolo.wsgi"],
    ["tremolo.protocols", "tremolo.tls", "tremolo.sockets"],
    ["tremolo.config", "tremolo.exceptions", "tremolo.locks", "tremolo.utils",
     "tremolo.logs", "tremolo.installed"],
    ["tremolo._core"],
]
ROOT = Path(__file__).resolve().parent.parent / "python"
#: the application adapters, which use the protocols' Connection and Exchange only
ADAPTERS = ("tremolo.framework", "tremolo.asgi", "tremolo.wsgi")
#: the names an Exchange goes by in the adapters
EXCHANGES = {"ex", "exchange"}
#: what adapters never read: the connection's protocol and its flow control
SEAM_NAMES = ("protocol", "flow")


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


def _last_name(node: ast.expr) -> str | None:
    """`ex` of `ex`, `self.ex`, `request.exchange`: the name an expression ends in."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def seam(path: Path) -> list[str]:
    """An adapter's reaches past the seam (see the module docs)."""
    errors = []
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import) and any(
                alias.name == "HTTPProtocol" for alias in node.names):
            errors.append(f"{path}:{node.lineno}: an adapter imports HTTPProtocol (use "
                          "protocols.Connection)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("getattr", "setattr") and len(node.args) >= 2 \
                and isinstance(node.args[1], ast.Constant) \
                and node.args[1].value in SEAM_NAMES:
            errors.append(f"{path}:{node.lineno}: an adapter reaches .{node.args[1].value} "
                          f"with {node.func.id}()")
        if not isinstance(node, ast.Attribute):
            continue
        owner = _last_name(node.value)
        if node.attr in SEAM_NAMES and owner != "request":
            errors.append(f"{path}:{node.lineno}: an adapter reads .{node.attr} (use "
                          "Exchange.connection, or what Exchange offers)")
        elif node.attr.startswith("_") and not node.attr.startswith("__") \
                and owner in EXCHANGES:
            errors.append(f"{path}:{node.lineno}: an adapter reads {owner}.{node.attr}, "
                          "an Exchange's private attribute")
    return errors


def main(argv: list[str]) -> int:
    """`--root DIR` checks the package under DIR instead (the tests plant violations
    in a copy)."""
    global ROOT
    if argv[:1] == ["--root"]:
        ROOT = Path(argv[1]).resolve()
    errors = []
    for path in sorted(ROOT.joinpath("tremolo").rglob("*.py")):
        source = module_name(path)
        here = place(source)
        if here is None:
            errors.append(f"{path}: module {source} is in no layer (add it to LAYERS)")
            continue
        if source.startswith(ADAPTERS):
            errors += seam(path)
        for line, target in imports(path):
            if source.startswith(ADAPTERS) and target == "tremolo.protocols.http":
                errors.append(f"{path}:{line}: an adapter imports protocols.http (use "
                              "protocols.Connection)")
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
    sys.exit(main(sys.argv[1:]))
