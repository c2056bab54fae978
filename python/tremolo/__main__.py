"""`python3 -m tremolo` runs `cli.main()`; importing this module runs nothing.

It also holds what the original Tremolo's command line is made of, for programs that
embed it: the callbacks of `tremolo.utils.parse_args` (`usage` for --help, `bind` for
--bind, `version` for --version) and `server`, the application `bind` adds listeners
to (made on first use)::

    options = parse_args(help=usage, bind=bind, version=version)
    server.run(**options)
"""

from __future__ import annotations

import sys
from typing import Any

from .cli import build_parser, main, parse_bind, version_text

_server: Any = None


def usage(**context: Any) -> int:
    """Prints the help of `python3 -m tremolo` (it begins with `Usage:`)."""
    build_parser().print_help()
    return 0


def version(**context: Any) -> int:
    print(version_text())
    return 0


def bind(value: str = "", **context: Any) -> int | None:
    """--bind VALUE: listeners on `server` instead of --host and --port (the options'
    host becomes None); a bad value is one line on stdout and 1, as the original."""
    try:
        listeners = parse_bind(value)
    except ValueError:
        print(f'Invalid --bind value "{value}"')
        return 1
    context["options"]["host"] = None
    app = __getattr__("server")
    for address in listeners:
        app.listen_at(address)
    return None


def __getattr__(name: str) -> Any:
    global _server
    if name != "server":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _server is None:
        from .application import Tremolo

        _server = Tremolo()
    return _server


if __name__ == "__main__":
    sys.exit(main())
