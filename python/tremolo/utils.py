"""tremolo.utils: the small helpers of the original's public `tremolo.utils` that
programs import (its WebSocket chat example escapes with `html_escape`), and
`parse_args`, the reader of the original's command line."""

from __future__ import annotations

import email.utils
import html
import inspect
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

__all__ = ["file_signature", "html_escape", "is_async", "log_date", "memory_usage",
           "parse_args", "parse_fields", "parse_int", "server_date"]

_ESCAPES = ((b"&", b"&amp;"), (b"<", b"&lt;"), (b">", b"&gt;"), (b'"', b"&quot;"))


def html_escape(data: str | bytes) -> Any:
    """Escapes `& < > "` (and `'` in a str) for HTML; bytes stay bytes."""
    if isinstance(data, str):
        return html.escape(data)
    for raw, entity in _ESCAPES:  # `&` first, so no entity is escaped twice
        data = data.replace(raw, entity)
    return data


def parse_fields(data: bytes, separator: bytes = b";", split: bytes = b"=",
                 max_fields: int = 100) -> Iterator[Any]:
    """The parameters of a field value, last first as the original: `(name, value)`
    with the name lowercased and the value unquoted and percent-decoded, or, with
    `split=b""`, each item lowercased."""
    if len(separator) != 1:
        raise ValueError("separator must be a single byte")
    items = data.split(separator)
    for item in reversed(items[-max_fields:] if max_fields > 0 else []):
        if not split:
            yield item.strip().lower()
            continue
        name, _, value = item.partition(split)
        if name:
            yield name.strip().lower(), unquote_to_bytes(value.strip(b' \t"'))


def parse_int(string: bytes | bytearray, base: int = 10) -> int:
    """A strict integer: at most 16 digits of `base`, no sign, no leading zero."""
    if not isinstance(string, bytes | bytearray) or not 0 < len(string) <= 16:
        raise ValueError("string must be bytes-like and 1 to 16 long")
    if string != b"0" and string.startswith(b"0"):
        raise ValueError("string cannot have leading zeros")
    text = string.decode("latin-1")
    if not text.isalnum() or not text.isascii():
        raise ValueError(f"invalid digits for base {base}: {text!r}")
    return int(text, base)


def server_date() -> bytes:
    """Now, as an HTTP date (IMF-fixdate)."""
    return email.utils.formatdate(usegmt=True).encode("latin-1")


def log_date() -> str:
    return time.strftime("[%Y-%m-%d %H:%M:%S]")


def file_signature(path: str | os.PathLike[str]) -> tuple[int, int, float]:
    """(file type, size, mtime): changes when the file is replaced or modified."""
    st = os.stat(path)
    return stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime


def is_async(func: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


def memory_usage(pid: int = 0) -> int:
    """Resident memory of a process in KiB (-1 where /proc is not there)."""
    try:
        with open(f"/proc/{pid or os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE") // 1024
    except FileNotFoundError:
        return -1


#: the flags of the original's command line that parse_args reads itself, and the
#: run() option each sets: switches with their value, then flags taking text, a whole
#: number, or a TLS file; any other `--flag` is a callback's (--bind, --help, --version)
ORIGINAL_SWITCHES = {"--debug": ("debug", True), "--experimental": ("experimental", True),
                     "--reload": ("reload", True), "--no-ws": ("ws", False)}
ORIGINAL_TEXT = ("host", "log_level", "log_fmt", "loop", "server_name", "root_path")
ORIGINAL_NUMBERS = ("port", "worker_num", "thread_pool_size", "limit_memory", "backlog",
                    "download_rate", "upload_rate", "buffer_size", "ws_max_payload_size",
                    "client_max_body_size", "client_max_header_size", "max_queue_size",
                    "request_timeout", "keepalive_timeout", "keepalive_connections",
                    "app_handler_timeout", "app_close_timeout", "shutdown_timeout")
ORIGINAL_TLS = {"--ssl-cert": "cert", "--ssl-key": "key"}


def parse_args(**callbacks: Callable[..., int | None]) -> dict[str, Any]:
    """The original's command-line reader: the flags in sys.argv as options of
    `app.run()`, from `{'host': '127.0.0.1', 'port': 8000, 'ssl': {}}`. Any other
    `--name` calls `callbacks[name](value=<the next argument>, options=<the options>)`
    and exits with what it returns unless None (`tremolo.__main__` has `usage`, `bind`
    and `version` for them). A bad number or an unknown flag is one line on stdout and
    exit 1, as the original. It reads the original's flags only; `python3 -m tremolo`
    reads tremolo's too. APP (the last argument) is the caller's to take."""
    options: dict[str, Any] = {"host": "127.0.0.1", "port": 8000, "ssl": {}}
    argv = sys.argv
    # every argument is looked at as a flag, a value too (as the original)
    for i, arg in enumerate(argv):
        if not arg.startswith("--"):
            continue
        value = argv[i + 1] if i + 1 < len(argv) else None
        name = arg[2:].replace("-", "_")
        if arg in ORIGINAL_SWITCHES:
            key, on = ORIGINAL_SWITCHES[arg]
            options[key] = on
        elif value is None and (name in ORIGINAL_TEXT or name in ORIGINAL_NUMBERS
                                or arg in ORIGINAL_TLS):
            print(f'Missing {arg} value')
            sys.exit(1)
        elif name in ORIGINAL_TEXT:
            options[name] = value
        elif name in ORIGINAL_NUMBERS:
            try:
                options[name] = int(value or "")
            except ValueError:
                print(f'Invalid {arg} value "{value}". It must be a number')
                sys.exit(1)
        elif arg in ORIGINAL_TLS:
            options["ssl"][ORIGINAL_TLS[arg]] = value
        elif name in callbacks:
            code = callbacks[name](value="" if value is None else value, options=options)
            if code is not None:
                sys.exit(code)
        else:
            print(f'Unrecognized option "{arg}"')
            sys.exit(1)
    return options
