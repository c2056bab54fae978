"""`python3 -m tremolo [options] APP` and `tremolo.run(app, ...)`: serve a Tremolo,
ASGI or WSGI application.

Every server option is a flag and a `TREMOLO_<OPTION>` variable (the flag wins);
everything is checked here, in the master, before anything is bound or forked: a bad
value is one line naming the flag (or variable), exit 2; an application that cannot
be loaded shows why with its traceback, exit 1."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

from . import autoreload, launch
from ._core import __version__
from .cli_habits import HABITS, NEGATIONS, OPTIONAL_VALUES, PEERS
from .cli_options import (
    CERT_REQS,
    CLI_ONLY,
    FLAGS,
    TLS_KEYS,
    describe,
    env_name,
    flag,
    flag_names,
    from_environment,
    read_list,
    spec_of,
    web_concurrency,
)
from .config import ConfigError, Options
from .config.kinds import SWITCH
from .loading import AppLoadError, detect_interface, load_app, reimporter
from .sockets import Address

EXAMPLES = """\
Serve a Tremolo, ASGI or WSGI application. Every option can also be set with the
environment variable in brackets; a flag wins over it.

Examples:
  python3 -m tremolo example:app
  python3 -m tremolo /path/to/example.py
  python3 -m tremolo /path/to/example.py:myapp
  python3 -m tremolo --debug --port 8080 example:app
  python3 -m tremolo --bind 127.0.0.1:8000,:8001,/tmp/app.sock --workers 4 example:app"""


def version_text() -> str:
    """What --version prints, as the original does: `tremolo 0.1.0 (cpython 3.11.2,
    linux)`."""
    major, minor, micro = sys.version_info[:3]
    return (f"tremolo {__version__} ({sys.implementation.name} {major}.{minor}.{micro}, "
            f"{sys.platform})")


def _is_path(item: str) -> bool:
    """A --bind item that names a UNIX socket: `unix:PATH`, an absolute path, a
    Windows one (`C:\\...`, told by `:\\` as the original does), or one without a
    port that has a slash or ends with `.sock` (`run/app.sock`, `app.sock`)."""
    if item.startswith(("unix:", "/")) or ":\\" in item:
        return True
    return ":" not in item and ("/" in item or "\\" in item or item.endswith(".sock"))


def parse_bind(value: str) -> list[Address]:
    """--bind's comma-separated listeners: `host:port`,
    `[v6]:port`, `:port` (127.0.0.1, as the original's `localhost`), or a UNIX socket
    path: `unix:PATH` as given, a bare path with `.sock` added when it lacks it (the
    original's spelling keeps the original's meaning)."""
    out: list[Address] = []
    for item in filter(None, (v.strip() for v in value.split(","))):
        if item.startswith("unix:"):
            if not item.removeprefix("unix:"):
                raise ValueError("unix: needs a path (unix:/run/app.sock)")
            out.append(Address.unix(item.removeprefix("unix:")))
            continue
        if _is_path(item):
            out.append(Address.unix(item if item.endswith(".sock") else item + ".sock"))
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not (port.isascii() and port.isdigit()) or int(port) > 65535:
            raise ValueError(f"{item!r} is not host:port, :port, or a UNIX socket path "
                             "(/path, unix:path, or a name ending with .sock)")
        out.append(Address.tcp(host.strip("[]") or "127.0.0.1", int(port)))
    if not out:
        raise ValueError("empty")
    return out


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"tremolo: error: {message}\n")


class HelpFormat(argparse.RawDescriptionHelpFormatter):
    """`Usage:` first, as the original's help (programs that embed its CLI look
    for it)."""

    def add_usage(self, usage: str | None, actions: Any, groups: Any,
                  prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "Usage: " if prefix is None else prefix)


def _reader(name: str) -> Any:
    kind = spec_of(name).kind

    def read(text: str) -> Any:
        try:
            return kind.read(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    read.__name__ = kind.metavar.lower() or "value"
    return read


#: settings whose flag may be given again for more (and whose values may be
#: comma-separated): gunicorn's `-b A -b B` is `--bind A,B`
APPENDED = ("bind", "fd", "reload_dirs", "reload_includes", "reload_excludes")


class Habit(argparse.Action):
    """Another server's flag (cli_habits.py): noted, acted on after parsing."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        value = values if isinstance(values, str) else ""
        namespace.habits = [*(getattr(namespace, "habits", None) or []), (option_string, value)]


def _add(group: Any, name: str, defaults: Options) -> None:
    spec = spec_of(name)
    names = flag_names(name)
    text = describe(name, defaults)
    if not spec.flag:  # a switch with no variable and no --no- form
        group.add_argument(*names, dest=name, action="store_true", default=None,
                           help=text.split(" [$")[0])
    elif spec.kind is SWITCH:
        group.add_argument(*names, dest=name, action=argparse.BooleanOptionalAction,
                           help=text)
    elif name in APPENDED:
        group.add_argument(*names, dest=name, action="append", help=text,
                           metavar=spec.kind.metavar if name != "bind" else "ADDRS")
    elif spec.choices:
        group.add_argument(*names, dest=name, choices=spec.choices, help=text)
    else:
        group.add_argument(*names, dest=name, metavar=spec.kind.metavar,
                           type=_reader(name), help=text)


def build_parser() -> Parser:
    parser = Parser(prog="python3 -m tremolo", usage="%(prog)s [OPTIONS] APP",
                    description=EXAMPLES, formatter_class=HelpFormat,
                    epilog="uvicorn's, gunicorn's and granian's flags work too, or say "
                           "what to use instead (docs/asgi-wsgi.md).")
    parser.add_argument("app", metavar="APP", nargs="?", help=describe("app"))
    parser.add_argument("--version", action="version", version=version_text())
    defaults = Options()
    groups: dict[str, Any] = {}
    for name, (title, _) in CLI_ONLY.items():
        if name == "app":
            continue
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        _add(groups[title], name, defaults)
    server = parser.add_argument_group("server options (docs/configuration.md)")
    for name in FLAGS:
        _add(server, name, defaults)
    for name, habit in HABITS.items():
        parser.add_argument(name, action=Habit, nargs=None if habit.value else 0,
                            dest="habits", help=argparse.SUPPRESS)
    return parser


#: what APP looks like: module:attr (not host:port), or a file
_APP = re.compile(r"[\w.]+:[A-Za-z_][\w.]*|.+\.py(:[\w.]+)?")


def rewrite(argv: list[str]) -> tuple[list[str], list[str]]:
    """The flags whose value is optional because another server's takes none, given
    their value; and the notes for uvicorn's `--ws IMPL` (tremolo's `--ws` is a
    switch)."""
    out: list[str] = []
    notes: list[str] = []
    i = 0
    while i < len(argv):
        arg, after = argv[i], argv[i + 1] if i + 1 < len(argv) else None
        i += 1
        if arg in NEGATIONS:
            name, value = NEGATIONS[arg]
            out.append(f"{flag(name)}={value}")
        elif arg == "--ws" and after in OPTIONAL_VALUES["--ws"][0]:
            i += 1
            if after == "none":
                out.append("--no-ws")
            else:
                notes.append(f"--ws {after} (uvicorn) has no effect: tremolo has its own WebSocket "
                             "implementation")
        elif arg in OPTIONAL_VALUES and arg != "--ws":
            words, default = OPTIONAL_VALUES[arg]
            # granian's --metrics is a switch: what follows it is ours unless it is APP
            given = after is not None and (after in words or (
                not words and not after.startswith("-") and _APP.fullmatch(after) is None))
            out.append(arg if given else f"{arg}={default}")
        else:
            out.append(arg)
    return out, notes


#: other servers' variables read for an option (when TREMOLO_<NAME> is not set)
PEER_VARIABLES = {"trusted_proxies": ("FORWARDED_ALLOW_IPS",)}
#: dashes a flag may have been written with by a word processor or a web page
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"


def _unknown(parser: Parser, extra: list[str], app: str | None) -> NoReturn:
    """What parse_known_args left: a flag nobody knows (with the nearest ones), or an
    argument too many."""
    flags = [a for a in extra if a.startswith("-")]
    for word in [app or "", *extra]:
        if word[:1] in _DASHES:
            # (a flag copied from a page whose typography turned -- into a dash)
            parser.error(f"{word!r} starts with {word[0]!r} (U+{ord(word[0]):04X}), not "
                         f"'-': write --{word.lstrip(_DASHES)}")
    if not flags:
        parser.error(f"unexpected argument {extra[0]!r} (APP is {app!r}; one APP only)")
    name = flags[0].split("=", 1)[0]
    known = [s for action in parser._actions for s in action.option_strings]
    import difflib  # (only for a mistake: not a module of every process)

    near = difflib.get_close_matches(name, known, n=3, cutoff=0.7)
    hint = f"; did you mean {' or '.join(near)}?" if near else \
        " (python3 -m tremolo --help lists them)"
    parser.error(f"unknown flag {name}{hint}")


def _habits(args: argparse.Namespace) -> tuple[dict[str, Any], list[str], str | None]:
    """What other servers' flags set, the notes to print, and the first refusal."""
    settings: dict[str, Any] = {}
    notes: list[str] = []
    for name, value in getattr(args, "habits", None) or []:
        habit = HABITS[name]
        whose = next((peer for peer, flags in PEERS.items() if name in flags.split()),
                     "another server")
        shown = f"{name} {value}".strip()
        if habit.refused:
            return settings, notes, f"{whose}'s {name} is not supported: {habit.note}"
        if habit.sets is None:
            notes.append(f"{shown} ({whose}) has no effect: {habit.note}")
            continue
        try:
            for key, setting in habit.sets(value).items():
                if key == "bind" and "bind" in settings:
                    setting = f"{settings['bind']},{setting}"
                settings[key] = setting
        except ValueError as exc:
            return settings, notes, f"argument {name}: {exc}"
    return settings, notes, None


def gather(args: argparse.Namespace, environ: Mapping[str, str],
           habits: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every setting: a flag (ours, or another server's in `habits`), else its
    variable, else WEB_CONCURRENCY for the worker count. ValueError names the
    variable at fault."""
    given = {name: value for name, value in vars(args).items()
             if value is not None and name != "habits"}
    for name in APPENDED:
        if name in given:
            items = read_list(",".join(given[name]))
            given[name] = ",".join(items) if name == "bind" else items
    for name, value in (habits or {}).items():
        if name == "bind" and "bind" in given:  # --uds beside --bind: both listen
            given["bind"] = f"{given['bind']},{value}"
        else:
            given.setdefault(name, value)  # (our own flag for it wins)
    missing = [n for n in [*FLAGS, *CLI_ONLY] if n not in given]
    settings = {**from_environment(environ, missing), **given}
    if "worker_num" not in settings:
        workers = web_concurrency(environ)
        if workers is not None:
            settings["worker_num"] = workers
    for name, variables in PEER_VARIABLES.items():
        given_by = next((v for v in variables if environ.get(v)), None)
        if name not in settings and given_by is not None:
            settings[name] = read_list(environ[given_by])
    return settings


def handed_in(given: Any, environ: Any) -> list[int]:
    """The listening sockets handed in: --fd N, else systemd's LISTEN_FDS (meant for
    this process: LISTEN_PID), numbered from 3."""
    if given:
        items = [i for item in given for i in str(item).split(",") if i.strip()]
        if not all(i.strip().isdigit() for i in items):
            raise ValueError(f"{', '.join(items)}: file descriptors are numbers")
        return [int(i) for i in items]
    count, pid = environ.get("LISTEN_FDS"), environ.get("LISTEN_PID")
    if count and count.isdigit() and pid == str(os.getpid()):
        return list(range(3, 3 + int(count)))
    return []


def _watch(settings: dict[str, Any]) -> autoreload.Watch | None:
    """The files to watch when reloading is asked for (the settings are taken out)."""
    on = settings.pop("reload", False)
    dirs = settings.pop("reload_dirs", None) or []
    includes = settings.pop("reload_includes", None) or []
    excludes = settings.pop("reload_excludes", None) or list(autoreload.DEFAULT_EXCLUDES)
    if not on:
        return None
    try:
        return autoreload.Watch([d for item in dirs for d in item.split(",")], includes, excludes)
    except ValueError as exc:
        raise SystemExit(_fail(f"argument --reload-dir: {exc}")) from None


def _fail(message: str, code: int = 2) -> int:
    print(f"tremolo: error: {message}", file=sys.stderr)
    return code


def _config_error(exc: ConfigError) -> int:
    """One line naming the flag (and its variable) of the option at fault."""
    name = exc.option
    if name in FLAGS:
        peers = "".join(f", ${v}" for v in PEER_VARIABLES.get(name, ()))
        return _fail(f"argument {flag(name)} (or ${env_name(name)}{peers}): {exc}")
    if name == "ssl":
        return _fail(f"TLS (--ssl-*): {exc}")
    return _fail(str(exc))


class CommandLineError(Exception):
    """What is wrong with the command line, in one line (exit 2)."""


def read(argv: list[str], environ: Mapping[str, str]
         ) -> tuple[dict[str, Any], argparse.Namespace]:
    """The settings a command line and the environment give, the notes for other
    servers' flags printed; CommandLineError (or argparse's exit 2) says why not."""
    parser = build_parser()
    argv, notes = rewrite(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        _unknown(parser, extra, args.app)
    habits, more, refused = _habits(args)
    if refused:
        raise CommandLineError(refused)
    for note in notes + more:
        print(f"tremolo: note: {note}", file=sys.stderr)
    try:
        settings = gather(args, environ, habits)
    except ValueError as exc:
        raise CommandLineError(str(exc)) from None
    if not settings.get("app"):
        parser.error("the APP argument is required (module:attr)")
    return settings, args


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    try:
        settings, args = read(sys.argv[1:] if argv is None else argv,
                              os.environ if environ is None else environ)
    except CommandLineError as exc:
        return _fail(str(exc))
    spec = settings.pop("app")
    watch = _watch(settings)
    if watch is not None and not autoreload.is_child():
        defaults = Options()
        try:
            return launch.restart_on_change(
                watch, autoreload.child_argv(), settings.get("log_level", defaults.log_level),
                settings.get("log_fmt", defaults.log_fmt), settings.get("log_config"))
        except ConfigError as exc:
            return _config_error(exc)
    bind = None
    if "bind" in settings:
        try:
            bind = parse_bind(settings.pop("bind"))
        except ValueError as exc:
            return _fail(f"argument --bind: {exc}")
        unused = [flag(n) for n in ("host", "port") if getattr(args, n) is not None]
        if unused:  # the original ignores them too, but say so
            print(f"tremolo: warning: {' and '.join(unused)} not used: --bind names every "
                  "listener", file=sys.stderr)
    try:
        fds = handed_in(settings.pop("fd", None), environ if environ is not None
                        else os.environ)
    except ValueError as exc:
        return _fail(f"argument --fd: {exc}")
    if fds:
        # sockets handed in are the listeners (with --bind's, if any)
        bind = [Address.handed(fd) for fd in fds] + (bind or [])
    made, app_dir = settings.pop("factory", False), settings.pop("app_dir", None)
    try:
        app = load_app(spec, factory=made, app_dir=app_dir)
        interface = settings.pop("interface", "auto")
        if interface == "auto":
            interface = detect_interface(app)
    except AppLoadError as exc:
        return _fail(f"APP: {exc}", 1)
    settings.setdefault("access_log", True)  # as uvicorn and gunicorn do
    tls = {key: settings.pop(name) for name, key in TLS_KEYS.items() if name in settings}
    tls["cert_reqs"] = CERT_REQS.get(tls.get("cert_reqs", ""), tls.get("cert_reqs"))
    tls = {key: value for key, value in tls.items() if value is not None}
    if tls:
        if "cert" not in tls:
            return _fail("TLS (--ssl-*): the other --ssl-* flags need --ssl-certfile "
                         "(--ssl-cert), the certificate")
        settings["ssl"] = tls
    if interface in ("asgi", "asgi3", "wsgi") and not callable(app):
        return _fail(f"APP: {spec} is not callable, so it cannot be served as {interface}", 1)
    try:
        launch.serve_app(app, interface=interface, host=settings.pop("host", "127.0.0.1"),
              port=settings.pop("port", 8000), bind=bind,
              root_path=settings.pop("root_path", ""),
              lifespan=settings.pop("lifespan", "auto"),
              reimport=lambda make: reimporter(spec, factory=made, app_dir=app_dir,
                                               make=make), name=spec,
              **settings)
    except ConfigError as exc:
        return _config_error(exc)
    return 0
