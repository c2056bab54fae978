"""tremolo.utils: the small helpers of the original's public `tremolo.utils` that
programs import (its WebSocket chat example escapes with `html_escape`)."""

from __future__ import annotations

import email.utils
import html
import inspect
import os
import stat
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

__all__ = ["file_signature", "html_escape", "is_async", "log_date", "memory_usage",
           "parse_fields", "parse_int", "server_date"]

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
