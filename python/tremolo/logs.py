"""The server's loggers and its access log.

`tremolo` (the server: startup, workers, stopping), `tremolo.error` (failures:
applications, refused requests) and `tremolo.access` (one line per answered request).
The server sets up these and no other logger: an application's own logging, and the
root logger, are the application's (`log_config` replaces all of this with a
dictConfig file)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import select
import stat
import sys
from typing import Any

from . import _core

SERVER = "tremolo"
ERROR = "tremolo.error"
ACCESS = "tremolo.access"

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
        handler = _StreamHandler(stream)
    else:
        try:
            handler = _FileHandler(path, mode="a", encoding="utf-8")
        except OSError as exc:
            raise LogFileError(which, f"cannot open {path!r}: {exc.strerror or exc}") \
                from None
    handler.setFormatter(formatter)
    setattr(handler, _OURS, True)
    logger.addHandler(handler)
    logger.propagate = False


class _StreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler that says once, on stderr, that it cannot write (a full disk, a
    closed stream), rather than a traceback per message, and again only after it
    wrote once more."""

    failing = False
    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        self.failed = False
        super().emit(record)
        if not self.failed:
            self.failing = False

    def handleError(self, record: logging.LogRecord) -> None:
        self.failed = True
        if self.failing:
            return
        self.failing = True
        exc = sys.exc_info()[1]
        where = getattr(self, "baseFilename", None) or getattr(self.stream, "name", "?")
        with contextlib.suppress(Exception):
            sys.stderr.write(f"tremolo[{os.getpid()}]: cannot write the log {where} "
                                 f"({exc}); its messages are dropped until it can\n")


class _FileHandler(_StreamHandler, logging.FileHandler):
    pass


def reopen() -> bool:
    """Reopens the log files of the server's own handlers, by name (logrotate moved
    them: SIGUSR1, see signals.REOPEN); each process its own. A file that cannot be
    opened keeps the old one, and says why; what the old one could not write (a full
    disk) is dropped with it. Never raises: whether every file was reopened."""
    done = True
    for name in (SERVER, ACCESS):
        for handler in logging.getLogger(name).handlers:
            if not (getattr(handler, _OURS, False) and isinstance(handler, logging.FileHandler)):
                continue
            try:
                stream = open(handler.baseFilename, "a", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                done = False
                logging.getLogger(ERROR).error("cannot reopen %r: %s", handler.baseFilename,
                                               exc.strerror or exc)
                continue
            # (not setStream(): it flushes the old stream first, which raises when its
            # disk is full, and a master must not end its supervision over a log)
            handler.acquire()
            try:
                old, handler.stream = handler.stream, stream
            finally:
                handler.release()
            if old is not None:
                with contextlib.suppress(OSError, ValueError):
                    old.close()
    return done


def reopen_said(loud: bool = True) -> None:
    """reopen(), and a line that says how it went (SIGUSR1); `loud` False says only
    a failure (a worker: its master says it for the server)."""
    try:
        done = reopen()
    except Exception:  # (never: but a signal's handler must not take a process down)
        logging.getLogger(ERROR).exception("reopening the log files failed")
        return
    if not done:
        logging.getLogger(SERVER).warning("log files not all reopened (SIGUSR1): the "
                                          "others are written where they were")
    elif loud:
        logging.getLogger(SERVER).info("log files reopened (SIGUSR1)")


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


class _Target:
    """A stream the access log writes to, as it writes there: its descriptor (None:
    it has none, its own write() then), its encoding, and whether it is a pipe."""

    __slots__ = ("encoding", "fd", "pipe", "stream")

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            self.fd: int | None = stream.fileno()
            self.pipe = stat.S_ISFIFO(os.fstat(self.fd).st_mode)
        except (AttributeError, OSError, ValueError):
            self.fd, self.pipe = None, False


def _write_lines(target: _Target, lines: str) -> None:
    """Writes a turn's lines as the stream's encoding holds them (what it cannot hold
    as `\\xHH`, rather than the whole batch lost), in pieces that end at a line's
    end and, on a pipe shared by the workers, fit in one atomic write (PIPE_BUF):
    lines of two workers never tear each other."""
    stream, fd = target.stream, target.fd
    if fd is None:
        stream.write(lines)
        stream.flush()
        return
    stream.flush()  # what was written to it before goes first
    data = lines.encode(target.encoding, "backslashreplace")
    most = select.PIPE_BUF if target.pipe else len(data)
    start = 0
    while start < len(data):
        end = start + most
        if end < len(data):
            cut = data.rfind(b"\n", start, end)
            end = cut + 1 if cut >= start else (data.find(b"\n", end) + 1 or len(data))
        piece = memoryview(data)[start:end]
        while piece:
            piece = piece[os.write(fd, piece):]
        start = end


def check_format(fmt: str) -> str:
    """The format a preset name stands for, checked; ValueError says what is wrong
    (the formats are the core's: rust/src/access)."""
    try:
        fmt.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{fmt!r} holds bytes that are not UTF-8 text") from None
    return _core.access_format(fmt)


class AccessLog(_core.AccessLogCore):
    """Writes one line per answered request to `tremolo.access`, in a format of
    gunicorn's atoms: %(h)s client (as trusted proxies give it), %(l)s '-', %(u)s
    user (HTTP Basic), %(t)s time, %(r)s request line, %(m)s method, %(U)s path,
    %(q)s query, %(H)s protocol, %(s)s status, %(b)s body bytes ('-' for none),
    %(B)s body bytes, %(D)s microseconds, %(M)s milliseconds, %(L)s seconds,
    %(f)s referer, %(a)s user agent, %(p)s pid, %({name}i)s a request field,
    %({name}o)s a response field, %(I)s bytes received (a WebSocket's), each
    escaped; `json` writes one JSON object per line. A WebSocket gets a second line
    when it closes (`closed`), a request refused before any handler saw it one
    without its request (`refused`). The lines are written by the core
    (rust/src/access, rust/src/py/access.rs); `fmt` is a preset's name (default,
    common, combined, json) or a format."""

    def __init__(self, fmt: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.logger = logging.getLogger(ACCESS)
        # With the server's own handler (no log_config), lines are written straight
        # to its stream and flushed once per turn of the loop rather than one
        # LogRecord and one flush each: half the cost at full load. A logging setup
        # of the user's own gets every line as a record (`_emit`).
        handlers = self.logger.handlers
        ours = len(handlers) == 1 and getattr(handlers[0], _OURS, False) \
            and not self.logger.filters
        #: the server's own handler, whose stream the lines are written to (its
        #: stream now: reopen() replaces it)
        self.handler: Any = handlers[0] if ours else None
        self.gather = ours
        self.loop = loop
        #: the stream failed and said so; said again only once it has worked again
        self.failing = False
        self.target: _Target | None = None

    def _flush(self) -> None:
        lines = self.take()
        try:
            stream = self.handler.stream
            if self.target is None or self.target.stream is not stream:  # (reopened)
                self.target = _Target(stream)
            _write_lines(self.target, lines)
        except (OSError, ValueError) as exc:
            # a full disk or a closed stream must not break serving, nor fill the
            # error log with a line per request
            if not self.failing:
                self.failing = True
                logging.getLogger(ERROR).error("the access log cannot be written (%s); "
                                               "its lines are dropped until it can", exc)
        else:
            self.failing = False

    def _emit(self, line: str) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info(line)
