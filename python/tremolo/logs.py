"""The server's loggers and its access log.

`tremolo` (the server: startup, workers, stopping), `tremolo.error` (failures:
applications, refused requests) and `tremolo.access` (one line per answered request).
The server sets up these and no other logger: an application's own logging, and the
root logger, are the application's (`log_config` replaces all of this with a
dictConfig file)."""

from __future__ import annotations

import base64
import datetime
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

SERVER = "tremolo"
ERROR = "tremolo.error"
ACCESS = "tremolo.access"

#: access log formats by name; any other value is a format of atoms (see AccessLog)
PRESETS = {
    "default": '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms',
    "common": '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s',
    "combined": '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
    "json": "json",
}
#: what a WebSocket's line says besides the format's atoms when it closes (the
#: presets have no atom for bytes received)
CLOSED = " (WebSocket closed, %(I)s bytes in)"
_OURS = "_tremolo_handler"


class LogFileError(ValueError):
    """A log file that cannot be opened; `which` is "error" or "access"."""

    def __init__(self, which: str, message: str) -> None:
        super().__init__(message)
        self.which = which


def configure(level: str, fmt: str, log_config: str | None = None,
              error_file: str | None = None, access_file: str | None = None) -> None:
    """Sets up the server's loggers (once per process): messages to stderr (or
    appended to `error_file`) in `fmt`, access lines to stdout (or appended to
    `access_file`) as they are. With `log_config`, that file (JSON, or YAML when
    PyYAML is installed) configures logging instead (ValueError says what is wrong
    with it); LogFileError names a log file that cannot be opened."""
    if log_config:
        # (imported only for a log_config: it is a MiB of every worker)
        from logging.config import dictConfig

        dictConfig(load_config(log_config))
        return
    server = logging.getLogger(SERVER)
    server.setLevel(level.upper())
    _attach(server, "error", error_file, sys.stderr, logging.Formatter(fmt))
    access = logging.getLogger(ACCESS)
    _attach(access, "access", access_file, sys.stdout, logging.Formatter("%(message)s"))
    access.setLevel(logging.INFO)


def _attach(logger: logging.Logger, which: str, path: str | None, stream: Any,
            formatter: logging.Formatter) -> None:
    """Our handler on `logger`, once: appending to `path` (workers inherit it, and
    O_APPEND keeps their lines whole and in order), else on `stream`."""
    if any(getattr(h, _OURS, False) for h in logger.handlers):
        return
    handler: logging.Handler
    if path is None:
        handler = logging.StreamHandler(stream)
    else:
        try:
            handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        except OSError as exc:
            raise LogFileError(which, f"cannot open {path!r}: {exc.strerror or exc}") \
                from None
    handler.setFormatter(formatter)
    setattr(handler, _OURS, True)
    logger.addHandler(handler)
    logger.propagate = False


def load_config(path: str) -> dict[str, Any]:
    """A dictConfig from a JSON or YAML file; ValueError says what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ValueError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise ValueError(f"{path!r} is YAML, and PyYAML is not installed") from None
        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{path!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError(f"{path!r} must hold a logging dictConfig (with version: 1)")
    return data


class _Atoms:
    """The values a format's atoms name, worked out when the line is written."""

    __slots__ = ("ex", "seconds")

    def __init__(self, ex: Any, seconds: float) -> None:
        self.ex = ex
        self.seconds = seconds

    def __getitem__(self, key: str) -> str:
        text = escape(self._value(key))
        # the user is the one atom a client writes whole that formats leave unquoted
        # (common, combined): a space would shift the fields that follow
        return text.replace(" ", "\\x20") if key == "u" else text

    def _value(self, key: str) -> str:
        ex = self.ex
        if key.startswith("{") and key[-2:-1] == "}":
            name = key[1:-2].lower().encode("latin-1")
            if key[-1] == "i":
                value = ex.head.get(name)
                return value.decode("latin-1") if value else "-"
            if key[-1] == "o":
                for field, sent in ex.fields:
                    if field.lower() == name:
                        return str(sent.decode("latin-1"))
                return "-"
        atom = _ATOMS.get(key)
        if atom is None:
            raise KeyError(key)
        return str(atom(ex, self.seconds))


_QUOTED = {'"': '\\"', "\\": "\\\\"}


def escape(text: str) -> str:
    """An atom's text as one safe piece of a line: what a client wrote (a header, the
    target, a Basic-auth user) can neither end the line, nor write terminal escapes
    (C0, DEL, C1: `\\xHH`; other unprintable characters: `\\uHHHH`), nor close the
    quotes a format puts around it (`\\"`, and `\\\\` so that an escape stays one)."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return "".join(_QUOTED.get(c) or (c if c.isprintable() else _hex(c)) for c in text)


def _hex(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def _client(ex: Any, _: float) -> str:
    info = ex.protocol.info
    if info is None:
        return "-"
    if type(ex) is _Refused:  # no head to read a proxy's fields from: the peer
        return info.peer[0] if info.peer else "unix"
    client = info.forwarded(ex.head)[0]
    return client[0] if client else "unix"


def _user(ex: Any, seconds: float) -> str:
    auth = ex.head.get(b"authorization") or b""
    scheme, _, token = auth.partition(b" ")
    if scheme.lower() != b"basic":
        return "-"
    try:
        user = base64.b64decode(token.strip(), validate=True).split(b":", 1)[0]
    except ValueError:
        return "-"
    return user.decode("utf-8", "replace") or "-"


_clock = [0, ""]  # the second last written, and how


def _json_user(ex: Any) -> str | None:
    user = _user(ex, 0.0)
    return None if user == "-" else user


def _time(_: Any, __: float) -> str:
    """`[06/Dec/2026:22:20:07 +0000]`, made once a second (it is a third of the cost
    of a line made each time)."""
    now = time.time()
    if int(now) != _clock[0]:
        _clock[:] = [int(now), datetime.datetime.fromtimestamp(now).astimezone().strftime(
            "[%d/%b/%Y:%H:%M:%S %z]")]
    return str(_clock[1])


def _request_line(ex: Any, _: float) -> str:
    if type(ex) is _Refused:
        return "-"
    return (f"{ex.method.decode('latin-1')} {ex.head.target.decode('latin-1')} "
            f"HTTP/1.{0 if ex.http10 else 1}")


def _header(name: bytes) -> Any:
    def atom(ex: Any, _: float) -> str:
        value = ex.head.get(name)
        return value.decode("latin-1") if value else "-"
    return atom


_ATOMS = {
    "h": _client,
    "l": lambda ex, s: "-",
    "u": _user,
    "t": _time,
    "r": _request_line,
    "m": lambda ex, s: ex.method.decode("latin-1"),
    "U": lambda ex, s: ex.head.target.partition(b"?")[0].decode("latin-1"),
    "q": lambda ex, s: ex.head.target.partition(b"?")[2].decode("latin-1"),
    "H": lambda ex, s: f"HTTP/1.{0 if ex.http10 else 1}",
    "s": lambda ex, s: str(ex.status) if ex.status else "-",
    "b": lambda ex, s: str(ex.sent) if ex.sent else "-",
    "B": lambda ex, s: str(ex.sent),
    "D": lambda ex, s: str(int(s * 1_000_000)),
    "M": lambda ex, s: str(int(s * 1000)),
    "L": lambda ex, s: f"{s:.6f}",
    "f": _header(b"referer"),
    "a": _header(b"user-agent"),
    "p": lambda ex, s: f"<{os.getpid()}>",
    "I": lambda ex, s: str(getattr(ex, "received", "-")),
}


#: atoms whose text is the server's own (numbers, a method the parser checked is a
#: token): nothing to escape
_PLAIN = frozenset("ltmHsbBDMLpI")
#: the atoms of the presets as expressions, written into the compiled line (a call
#: each is a tenth of a microsecond, and a line is a few microseconds in all)
_INLINE = {
    "h": "escape(_client(ex, s))",
    "t": "_time(ex, s)",
    "r": "escape(_request_line(ex, s))",
    "s": "(str(ex.status) if ex.status else '-')",
    "b": "(str(ex.sent) if ex.sent else '-')",
    "M": "str(int(s * 1000))",
    "l": "'-'",
}
_PIECE = re.compile(r"%\((\{[^}]*\}[io]|[A-Za-z])\)s|%%|%")


def _getter(key: str) -> Callable[[Any, float], str]:
    """An atom's text, escaped unless it is the server's own."""
    atom = _ATOMS.get(key)
    if atom is not None and key in _PLAIN:
        return atom  # type: ignore[no-any-return]
    if key == "u":
        return lambda ex, s: escape(_user(ex, s)).replace(" ", "\\x20")

    def escaped(ex: Any, seconds: float) -> str:
        return escape(_Atoms(ex, seconds)._value(key))
    return escaped if atom is None else lambda ex, s: escape(atom(ex, s))


def compile_format(fmt: str) -> Callable[[Any, float], str]:
    """A function that writes a line of `fmt` (checked: only `%(atom)s` and `%%`) for
    an exchange: the pieces joined, with no mapping looked up per atom (a third of the
    cost of `fmt % atoms`)."""
    namespace: dict[str, Any] = {}
    exprs = []
    pos = 0
    for i, m in enumerate(_PIECE.finditer(fmt)):
        literal = fmt[pos:m.start()] + ("%" if m.group(0) == "%%" else "")
        pos = m.end()
        if m.group(0) == "%":
            raise ValueError(f"{fmt!r} is not checked (check_format)")
        if literal:
            namespace[f"c{i}"] = literal
            exprs.append(f"c{i}")
        key = m.group(1)
        if key in _INLINE:
            exprs.append(_INLINE[key])
        elif key is not None:
            namespace[f"a{i}"] = _getter(key)
            exprs.append(f"a{i}(ex, s)")
    if fmt[pos:] or not exprs:
        namespace["tail"] = fmt[pos:]
        exprs.append("tail")
    # (the source holds only names and _INLINE's: the format's text is in the namespace)
    namespace.update(_time=_time, _client=_client, _request_line=_request_line, str=str,
                     int=int, escape=escape)
    exec(f"def line(ex, s):\n    return ''.join(({', '.join(exprs)},))", namespace)
    line: Callable[[Any, float], str] = namespace["line"]
    return line


def check_format(fmt: str) -> str:
    """The format a preset name stands for, checked; ValueError names a bad atom."""
    fmt = PRESETS.get(fmt, fmt)
    if fmt == "json":
        return fmt
    if not fmt.strip():
        raise ValueError("empty (--no-access-log turns the access log off)")
    for m in _PIECE.finditer(fmt):
        if m.group(0) == "%":  # %s, %d, %(h)d, a lone %: not an atom
            raise ValueError(f"only %(atom)s and %% are atoms, not {fmt[m.start():][:6]!r}")
        key = m.group(1) or ""
        if key.startswith("{") and not (key[1:-2].isascii() and key[1:-2].isprintable()
                                        and key[1:-2]):
            raise ValueError(f"%({key})s: a field's name is printable ASCII")
    try:
        fmt % _Probe()
    except KeyError as exc:
        raise ValueError(f"unknown atom %({exc.args[0]})s (known: "
                         f"{', '.join(sorted(_ATOMS))}, {{name}}i, {{name}}o)") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a format of atoms: {exc}") from None
    return fmt


class _Probe:
    def __getitem__(self, key: str) -> str:
        if key in _ATOMS or (key.startswith("{") and key[-2:] in ("}i", "}o")):
            return ""
        raise KeyError(key)


class AccessLog:
    """Writes one line per answered request to `tremolo.access`, in a format of
    gunicorn's atoms: %(h)s client (as trusted proxies give it), %(l)s '-', %(u)s
    user (HTTP Basic), %(t)s time, %(r)s request line, %(m)s method, %(U)s path,
    %(q)s query, %(H)s protocol, %(s)s status, %(b)s body bytes ('-' for none),
    %(B)s body bytes, %(D)s microseconds, %(M)s milliseconds, %(L)s seconds,
    %(f)s referer, %(a)s user agent, %(p)s pid, %({name}i)s a request field,
    %({name}o)s a response field, %(I)s bytes received (a WebSocket's), each escaped
    (see `escape`). `json` writes one JSON object per line. A WebSocket gets a second
    line when it closes (`closed`)."""

    def __init__(self, fmt: str) -> None:
        self.fmt = check_format(fmt)
        self.logger = logging.getLogger(ACCESS)
        # With the server's own handler (no log_config), lines are written straight
        # to its stream and flushed once per turn of the loop rather than one
        # LogRecord and one flush each: half the cost at full load. A logging setup
        # of the user's own gets every line as a record.
        handlers = self.logger.handlers
        ours = len(handlers) == 1 and getattr(handlers[0], _OURS, False) \
            and not self.logger.filters
        self.stream: Any = getattr(handlers[0], "stream", None) if ours else None
        self.pending: list[str] = []
        self.line = None if self.fmt == "json" else compile_format(self.fmt)
        #: a WebSocket's close line (the default preset says the bytes received)
        self.closed_line = None if self.fmt == "json" else compile_format(
            self.fmt + CLOSED if self.fmt == PRESETS["default"] else self.fmt)

    def _flush(self) -> None:
        lines, self.pending = self.pending, []
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream must not break serving

    def log(self, ex: Any, now: float) -> None:
        make = self.line
        if make is not None and self.stream is not None:
            # the server's own handler, INFO at most (Options turns the log off above)
            if not self.pending:
                ex.protocol.loop.call_soon(self._flush)
            self.pending.append(make(ex, now - ex.t0))
            return
        if not self.logger.isEnabledFor(logging.INFO):
            return
        seconds = max(now - ex.t0, 0.0)
        line = json.dumps(self._fields(ex, seconds)) if make is None else make(ex, seconds)
        self._write(line, ex.protocol.loop)

    def closed(self, ex: Any, code: int, received: int, sent: int, seconds: float) -> None:
        """A WebSocket's line when it closes: `ex` its handshake, `code` the close
        code (in the status's place: 1000-4999 are never HTTP's), bytes each way
        (those sent in the body's place) and how long it lasted."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        closed = _Closed(ex, code, sent, received)
        if self.closed_line is None:
            line = json.dumps({**self._fields(closed, seconds), "websocket": True,
                               "bytes_in": received})
        else:
            line = self.closed_line(closed, seconds)
        self._write(line, ex.protocol.loop)

    def refused(self, protocol: Any, status: int, sent: int) -> None:
        """A request the server refused before any handler saw it (the parser, a
        limit, a clock): its peer, status and the bytes of the answer; no request line
        (there was none, or none that could be trusted)."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        refused = _Refused(protocol, status, sent)
        if self.line is None:
            line = json.dumps({**self._fields(refused, 0.0), "method": None,
                               "target": None, "protocol": None, "refused": True})
        else:
            line = self.line(refused, 0.0)
        self._write(line, protocol.loop)

    def _fields(self, ex: Any, seconds: float) -> dict[str, Any]:
        return {
            "time": datetime.datetime.now().astimezone().isoformat(timespec="milliseconds"),
            "client": _client(ex, seconds), "user": _json_user(ex),
            "method": ex.method.decode("latin-1"),
            "target": ex.head.target.decode("latin-1"),
            "protocol": f"HTTP/1.{0 if ex.http10 else 1}", "status": ex.status,
            "bytes": ex.sent, "duration_ms": round(seconds * 1000, 3),
            "referer": _header(b"referer")(ex, seconds),
            "user_agent": _header(b"user-agent")(ex, seconds),
        }

    def _write(self, line: str, loop: Any) -> None:
        if self.stream is None:
            self.logger.info(line)
            return
        if not self.pending:
            loop.call_soon(self._flush)
        self.pending.append(line)


class _NoHead:
    target = b"-"

    def get(self, name: bytes) -> None:
        return None


class _Refused:
    """A refused request as the atoms read it: no head, no fields."""

    __slots__ = ("protocol", "sent", "status")
    head = _NoHead()
    method = b"-"
    http10 = False
    fields: tuple[tuple[bytes, bytes], ...] = ()

    def __init__(self, protocol: Any, status: int, sent: int) -> None:
        self.protocol, self.status, self.sent = protocol, status, sent


class _Closed:
    """A WebSocket's handshake as its close line reads it."""

    __slots__ = ("ex", "received", "sent", "status")

    def __init__(self, ex: Any, status: int, sent: int, received: int) -> None:
        self.ex, self.status, self.sent, self.received = ex, status, sent, received

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ex, name)
