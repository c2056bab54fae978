"""The kinds of value an option holds (a size, a rate, seconds, a count, a switch, a
word, a list), each with how its text is read (a flag, a variable) and how a value
given from Python is checked, and `Spec`, what one option declares about itself."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MiB = 1024 * 1024


class ConfigError(ValueError):
    """An option has a value that cannot work. The message names the option; `option`
    is its name (None when the fault is not one option's, e.g. a port in use), so
    that the command line can name the flag and the variable that set it."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmg]i?b?|b)?", re.I)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": MiB, "g": 1024 * MiB}
_TIME = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?", re.I)
_TIME_UNITS = {"": 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def read_size(text: str) -> int:
    """`1048576`, `512K`, `10M`, `1G` (powers of 1024; `KiB`, `MB` alike)."""
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a size (a number of bytes, or with K, M or G)")
    unit = (m.group(2) or "").lower()[:1]
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def read_seconds(text: str) -> float:
    """`30`, `2.5`, `500ms`, `2m`, `1h`."""
    m = _TIME.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a duration (seconds, or with ms, s, m or h)")
    return float(m.group(1)) * _TIME_UNITS[(m.group(2) or "").lower()]


def read_optional_seconds(text: str) -> float | None:
    return None if text.strip().lower() in ("", "none", "default") else read_seconds(text)


def read_count(text: str) -> int:
    # (ASCII only: int() reads '８０' as 80, which a look-alike could hide)
    value = text.strip()
    if not value.isascii():
        raise ValueError(f"{text!r} is not a whole number (ASCII digits)")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def read_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{text!r} is not one of 1/0, true/false, yes/no, on/off")


def read_text(text: str) -> str:
    return text


def read_mode(text: str) -> int:
    """Permissions in octal: `660`, `0o660`."""
    try:
        return int(text.strip().removeprefix("0o"), 8)
    except ValueError:
        raise ValueError(f"{text!r} is not permissions in octal (660)") from None


def read_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


#: the largest number an option takes unless it says less: what the core's 64-bit
#: sizes hold (past it: an OverflowError on every connection)
MOST = (1 << 63) - 1


def _integer(spec: Spec, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, not {value!r}", name)
    least = spec.minimum if spec.minimum is not None else 0
    if value < least:
        raise ConfigError(f"{name} must be at least {least}, not {value}", name)
    most = spec.maximum if spec.maximum is not None else MOST
    if value > most:
        raise ConfigError(f"{name} must be at most {most}, not {value}", name)
    return value


def _switch(spec: Spec, name: str, value: Any) -> Any:
    # (a string is refused: debug="false" would turn tracebacks on)
    if isinstance(value, str | bytes):
        raise ConfigError(f"{name} must be True or False, not {value!r}", name)
    return value


def _seconds(spec: Spec, name: str, value: Any) -> float | None:
    if value is None and spec.kind is OPTIONAL_SECONDS:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number of seconds, not {value!r}", name)
    if spec.minimum is None and not value >= 0:
        raise ConfigError(f"{name} must be a number of seconds (0 or more), not {value!r}",
                          name)
    if spec.minimum is not None and not value > spec.minimum:
        raise ConfigError(f"{name} must be greater than {spec.minimum:g}, not {value}", name)
    return float(value)


def _word(spec: Spec, name: str, value: Any) -> Any:
    if spec.choices and value not in spec.choices:
        *most, last = spec.choices
        raise ConfigError(f"{name} must be {', '.join(most)} or {last}, not {value!r}", name)
    return value


def _as_is(spec: Spec, name: str, value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Kind:
    """What a value is: its placeholder in --help, its unit, how its text is read
    (ValueError says why not) and how a Python value is checked (ConfigError)."""

    metavar: str
    unit: str
    read: Callable[[str], Any]
    check: Callable[[Spec, str, Any], Any]


SIZE = Kind("SIZE", "bytes; K, M, G suffixes", read_size, _integer)
RATE = Kind("RATE", "bytes/s; K, M, G suffixes", read_size, _integer)
SECONDS = Kind("SECONDS", "seconds; ms, m, h suffixes", read_seconds, _seconds)
OPTIONAL_SECONDS = Kind("SECONDS", "seconds; ms, m, h suffixes", read_optional_seconds,
                        _seconds)
COUNT = Kind("N", "", read_count, _integer)
SWITCH = Kind("", "", read_bool, _switch)
TEXT = Kind("TEXT", "", read_text, _word)
LIST = Kind("LIST", "comma-separated", read_list, _as_is)
MODE = Kind("MODE", "octal", read_mode, _as_is)


@dataclass(frozen=True)
class Spec:
    """What an option declares once, and everything else is made from: the check of
    a value given to app.run(), its flag and variable, their --help, and its row in
    docs/configuration.md."""

    kind: Kind
    #: one line for --help (the unit, default and variable are added)
    help: str
    #: the reference's text, when it says more than `help`
    doc: str = ""
    #: the least value (for seconds: the value must be greater than it)
    minimum: float | None = None
    #: the largest (integers: MOST unless given)
    maximum: int | None = None
    #: the only words allowed
    choices: tuple[str, ...] = ()
    #: a check beyond the kind's: (name, value) -> the value to keep
    check: Callable[[str, Any], Any] | None = None
    #: other spellings of its flag (the original's, other servers')
    aliases: tuple[str, ...] = ()
    #: the default as --help and the reference show it, when not the value itself
    shown: str | None = None
    #: a flag and a variable of its own (ssl's are the --ssl-* flags)
    flag: bool = True

    def validate(self, name: str, value: Any) -> Any:
        value = self.kind.check(self, name, value)
        return value if self.check is None else self.check(name, value)
