"""Writes the tables made from the declarations into the docs: every option
(docs/configuration.md, from python/tremolo/config/options.py) and the flags of
uvicorn, gunicorn and granian with what each does here (docs/asgi-wsgi.md, from the
aliases and python/tremolo/cli_habits.py).

    python3 tools/config_table.py           # rewrite the tables
    python3 tools/config_table.py --check   # exit 1 when the docs are not up to date
"""

from __future__ import annotations

import sys
from pathlib import Path

from tremolo.cli_habits import HABITS, NEGATIONS, OPTIONAL_VALUES, PEER_VERSIONS, PEERS
from tremolo.cli_options import CLI_ONLY, FLAGS, flag_names
from tremolo.config.reference import BEGIN, END, table

ROOT = Path(__file__).resolve().parent.parent
PEERS_BEGIN = "<!-- other servers' flags: made by tools/config_table.py -->"
PEERS_END = "<!-- end of other servers' flags -->"


def ours(name: str) -> str | None:
    """Our flag that `name` is a spelling of, if any."""
    for setting in [*FLAGS, *CLI_ONLY]:
        spellings = flag_names(setting)
        if name in spellings or name == "--no-" + spellings[0][2:]:
            return spellings[0] if name in spellings else name
    return None


def meaning(name: str) -> str:
    if name == "--ws" and "--ws" in OPTIONAL_VALUES:
        return "the same (a switch); uvicorn's `--ws IMPL`: no effect, `--ws none` is `--no-ws`"
    if name in OPTIONAL_VALUES:
        _, default = OPTIONAL_VALUES[name]
        return f"the same; without a value, `{name} {default}`"
    if name in NEGATIONS:
        setting, value = NEGATIONS[name]
        return f"`--{setting.replace('_', '-')} {value}`"
    habit = HABITS.get(name)
    if habit is not None:
        if habit.refused:
            return f"refused: {habit.note}"
        if habit.sets is None:
            return f"no effect: {habit.note}"
        return f"`{habit.note}`" if habit.note.startswith("--") else habit.note
    mine = "--version" if name == "--version" else ours(name)
    if mine is None:
        raise SystemExit(f"{name}: neither a flag here nor in cli_habits.py")
    return "the same" if mine == name else f"`{mine}`"


def peer_tables() -> str:
    out = []
    for peer, flags in PEERS.items():
        out += [f"**{peer} {PEER_VERSIONS[peer]}**", "", f"| {peer} | tremolo |", "|---|---|"]
        out += [f"| `{name}` | {meaning(name)} |" for name in flags.split()]
        out.append("")
    return "\n".join(out).rstrip()


def replace(text: str, begin: str, end: str, body: str) -> str:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for path, begin, end, body in [
            (ROOT / "docs" / "configuration.md", BEGIN, END, table()),
            (ROOT / "docs" / "asgi-wsgi.md", PEERS_BEGIN, PEERS_END, peer_tables())]:
        text = path.read_text()
        new = replace(text, begin, end, body)
        if new != text:
            stale.append(path.name)
            if not check:
                path.write_text(new)
    if check and stale:
        print(f"not up to date: {', '.join(stale)} (python3 tools/config_table.py)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
