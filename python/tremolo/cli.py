"""`python3 -m tremolo [options] APP` and `tremolo.run(app, ...)`: serve a Tremolo,
ASGI or WSGI application.

Every server option is a flag and a `TREMOLO_<OPTION>` variable (the flag wins);
everything is checked here, in the master, before anything is bound or forked: a bad
value is one line naming the flag (or variable), exit 2; an application that cannot
be loaded shows why with its traceback, exit 1."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from . import logs, reload
from ._core import __version__
from .cli_options import (
    ALIASES,
    FLAGS,
    NOT_OPTIONS,
    SWITCH,
    TLS_FLAGS,
    describe,
    env_name,
    flag,
    from_environment,
    read_list,
    web_concurrency,
)
from .config import UNLIMITED, ConfigError, Options
from .loading import INTERFACES, AppLoadError, detect_interface, load_app, reloader

LIFESPAN = ("auto", "on", "off")
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


def parse_bind(value: str) -> list[tuple[str | None, int | str]]:
    """--bind's comma-separated listeners -> [(host, port) | (None, path)]: `host:port`,
    `[v6]:port`, `:port` (127.0.0.1, as the original's `localhost`), or a UNIX socket
    path: `unix:PATH` as given, a bare path with `.sock` added when it lacks it (the
    original's spelling keeps the original's meaning)."""
    out: list[tuple[str | None, int | str]] = []
    for item in filter(None, (v.strip() for v in value.split(","))):
        if item.startswith("unix:"):
            out.append((None, item.removeprefix("unix:")))
            continue
        if _is_path(item):
            out.append((None, item if item.endswith(".sock") else item + ".sock"))
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not (port.isascii() and port.isdigit()) or int(port) > 65535:
            raise ValueError(f"{item!r} is not host:port, :port, or a UNIX socket path "
                             "(/path, unix:path, or a name ending with .sock)")
        out.append((host.strip("[]") or "127.0.0.1", int(port)))
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
    kind = FLAGS[name][0]

    def read(text: str) -> Any:
        try:
            return kind.read(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    read.__name__ = kind.metavar.lower() or "value"
    return read


def build_parser() -> Parser:
    parser = Parser(prog="python3 -m tremolo", usage="%(prog)s [OPTIONS] APP",
                    description=EXAMPLES, formatter_class=HelpFormat)
    parser.add_argument("app", metavar="APP", nargs="?",
                        help="module:attr, module (attr 'app'), or path/to/file.py[:attr]: "
                             "a Tremolo application, an ASGI 3 or a WSGI callable "
                             f"[${env_name('app')}]")
    parser.add_argument("--version", action="version", version=version_text())
    where = parser.add_argument_group("where and what to serve")
    where.add_argument("--host", help="address to listen on; '::' for IPv6 and IPv4 "
                                      f"(default: 127.0.0.1) [${env_name('host')}]")
    where.add_argument("--port", type=int,
                       help=f"TCP port (default: 8000) [${env_name('port')}]")
    where.add_argument("--bind", metavar="ADDRS",
                       help="listeners instead of --host and --port, comma-separated: "
                            "host:port, [::]:port, :port (127.0.0.1), or a UNIX socket: "
                            "/path, unix:path, name.sock (default: none) "
                            f"[${env_name('bind')}]")
    where.add_argument("--fd", metavar="N", action="append",
                       help="serve a listening socket handed in as file descriptor N "
                            "(again for more); systemd's socket activation (LISTEN_FDS) "
                            f"is used without it; default: none [${env_name('fd')}]")
    where.add_argument("--interface", choices=INTERFACES,
                       help="what APP is (default: auto, told from APP; asgi3 is asgi) "
                            f"[${env_name('interface')}]")
    where.add_argument("--factory", action=argparse.BooleanOptionalAction,
                       help=f"APP is a function that returns the application "
                            f"[${env_name('factory')}]")
    where.add_argument("--app-dir", metavar="DIR",
                       help="directory to import APP from (default: the current one) "
                            f"[${env_name('app_dir')}]")
    where.add_argument("--root-path", metavar="PATH",
                       help=f"the ASGI root_path (default: '') [${env_name('root_path')}]")
    where.add_argument("--lifespan", choices=LIFESPAN,
                       help="ASGI lifespan: auto (used when the app supports it), on "
                            "(required), off (default: auto) "
                            f"[${env_name('lifespan')}]")
    tls = parser.add_argument_group("TLS")
    for name, (_, text) in TLS_FLAGS.items():
        metavar = {"ssl_keyfile_password": "VALUE", "ssl_cert_reqs": None,
                   "ssl_ciphers": "LIST"}.get(name, "PATH")
        tls.add_argument(flag(name), *ALIASES.get(name, ()), metavar=metavar,
                         choices=("none", "optional", "required")
                         if name == "ssl_cert_reqs" else None,
                         help=f"{text}{'' if 'default' in text else '; default: none'} "
                              f"[${env_name(name)}]")
    dev = parser.add_argument_group("development")
    dev.add_argument("--reload", action=argparse.BooleanOptionalAction,
                     help="restart the server when a watched file changes (watchfiles "
                          "when installed, else polling); a change that does not compile "
                          f"keeps the old code serving; default: off [${env_name('reload')}]")
    dev.add_argument("--experimental", action="store_true", default=None,
                     help="the original Tremolo's switch for keeping a connection open "
                          "after a chunked request body; tremolo always does (it reads such "
                          "a body to its end, trailers included), so this only sets "
                          "options['experimental'] for handlers that look; default: off")
    dev.add_argument("--reload-dir", dest="reload_dirs", metavar="DIR", action="append",
                     help="a directory to watch (again for more); default: the current one "
                          f"[${env_name('reload_dirs')}, comma-separated]")
    dev.add_argument("--reload-include", dest="reload_includes", metavar="GLOB",
                     action="append", help="files to watch (again for more); default: *.py "
                                           f"[${env_name('reload_includes')}]")
    dev.add_argument("--reload-exclude", dest="reload_excludes", metavar="GLOB",
                     action="append", help="names never watched; default: .*, *~, "
                                           "__pycache__, *.pyc, .git, node_modules "
                                           f"[${env_name('reload_excludes')}]")
    server = parser.add_argument_group("server options (docs/configuration.md)")
    defaults = Options()
    for name, (kind, _) in FLAGS.items():
        names = [flag(name), *ALIASES.get(name, ())]
        if kind is SWITCH:
            server.add_argument(*names, dest=name, action=argparse.BooleanOptionalAction,
                                help=describe(name, defaults))
        else:
            server.add_argument(*names, dest=name, metavar=kind.metavar, type=_reader(name),
                                help=describe(name, defaults))
    return parser


def gather(args: argparse.Namespace, environ: dict[str, str] | os._Environ[str]
           ) -> dict[str, Any]:
    """Every setting: a flag, else its variable, else WEB_CONCURRENCY for the worker
    count. ValueError names the variable at fault."""
    given = {name: value for name, value in vars(args).items() if value is not None}
    missing = [n for n in [*FLAGS, *NOT_OPTIONS] if n not in given]
    settings = {**from_environment(environ, missing), **given}
    if "worker_num" not in settings:
        workers = web_concurrency(environ)
        if workers is not None:
            settings["worker_num"] = workers
    if "trusted_proxies" not in settings and environ.get("FORWARDED_ALLOW_IPS"):
        settings["trusted_proxies"] = read_list(environ["FORWARDED_ALLOW_IPS"])
    return settings


def serve(app: Any, *, interface: str = "auto", host: str | None = "127.0.0.1",
          port: int = 8000, bind: list[tuple[str | None, int | str]] | None = None,
          root_path: str = "", lifespan: str = "auto",
          reload_app: Callable[[Callable[[Any], Any]], Any] | None = None,
          **options: Any) -> None:
    """Serves `app` until interrupted. `reload_app(make)`, given how to make the
    adapter factory from an app, gives what imports the app again on SIGHUP."""
    from .locks import ServerLock
    from .supervisor import serve as supervise

    if interface == "auto":
        interface = detect_interface(app)
    interface = "asgi" if interface == "asgi3" else interface
    listeners: list[tuple[str | None, int | str, dict[str, Any]]] = []
    if bind:
        (host, first), *rest = bind
        port = first if isinstance(first, int) else 0
        if not isinstance(first, int):
            listeners.append((None, first, {}))
            host, port = None, 0
        listeners.extend((h, p, {}) for h, p in rest)
    def make(app: Any) -> Any:
        if interface == "tremolo":
            return app.make_adapter
        return _adapter(app, interface, root_path, lifespan)
    factory = make(app)
    if interface == "tremolo":
        listeners.extend(app.listeners)
    else:
        # The frameworks set their own body limits, as behind uvicorn and gunicorn;
        # the native API keeps the original's 2 MiB.
        options.setdefault("client_max_body_size", UNLIMITED)
    # the supervisor checks the loop, logging and certificates before binding
    opts = Options.from_kwargs({"host": host, "port": port, **options})
    name = getattr(app, "__qualname__", None) or type(app).__name__
    kind = {"tremolo": "Tremolo", "asgi": "ASGI 3", "wsgi": "WSGI"}[interface]
    supervise(factory, opts, listeners, ServerLock.create(opts.locks),
              primary=not (bind and host is None), what=f"{name} ({kind})",
              renew=None if reload_app is None else reload_app(make))


def _adapter(app: Any, interface: str, root_path: str, lifespan: str) -> Any:
    from .asgi import ASGIAdapter
    from .wsgi import WSGIAdapter

    if interface == "asgi":
        return lambda state: ASGIAdapter(app, state, root_path, lifespan)
    return lambda state: WSGIAdapter(app, state, root_path)


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


def _watch(settings: dict[str, Any]) -> reload.Watch | None:
    """The files to watch when reloading is asked for (the settings are taken out)."""
    on = settings.pop("reload", False)
    dirs = settings.pop("reload_dirs", None) or []
    includes = settings.pop("reload_includes", None) or []
    excludes = settings.pop("reload_excludes", None) or list(reload.DEFAULT_EXCLUDES)
    if not on:
        return None
    try:
        return reload.Watch([d for item in dirs for d in item.split(",")], includes, excludes)
    except ValueError as exc:
        raise SystemExit(_fail(f"argument --reload-dir: {exc}")) from None


def _fail(message: str, code: int = 2) -> int:
    print(f"tremolo: error: {message}", file=sys.stderr)
    return code


def _config_error(exc: ConfigError) -> int:
    """One line naming the flag (and its variable) of the option at fault."""
    name = str(exc).split(" ", 1)[0].rstrip(":")
    if name in FLAGS or name in ("host", "port"):
        return _fail(f"argument {flag(name)} (or ${env_name(name)}): {exc}")
    if name == "ssl":
        return _fail(f"TLS (--ssl-*): {exc}")
    return _fail(str(exc))


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = gather(args, os.environ if environ is None else environ)
    except ValueError as exc:
        return _fail(str(exc))
    spec = settings.pop("app", None)
    if not spec:
        parser.error("the APP argument is required (module:attr)")
    watch = _watch(settings)
    if watch is not None and not reload.is_child():
        defaults = Options()
        try:
            logs.configure(settings.get("log_level", defaults.log_level),
                           settings.get("log_fmt", defaults.log_fmt),
                           settings.get("log_config"))
        except ValueError as exc:
            return _fail(f"argument --log-config: {exc}")
        return reload.run(reload.child_argv(), watch)
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
        bind = [(None, f"fd:{fd}") for fd in fds] + (bind or [])
    made, app_dir = settings.pop("factory", False), settings.pop("app_dir", None)
    try:
        app = load_app(spec, factory=made, app_dir=app_dir)
        interface = settings.pop("interface", "auto")
        if interface == "auto":
            interface = detect_interface(app)
    except AppLoadError as exc:
        return _fail(f"APP: {exc}", 1)
    settings.setdefault("access_log", True)  # as uvicorn and gunicorn do
    tls = {key: settings.pop(name) for name, (key, _) in TLS_FLAGS.items() if name in settings}
    if tls:
        if "cert" not in tls:
            return _fail("TLS (--ssl-*): the other --ssl-* flags need --ssl-certfile "
                         "(--ssl-cert), the certificate")
        settings["ssl"] = tls
    if interface in ("asgi", "asgi3", "wsgi") and not callable(app):
        return _fail(f"APP: {spec} is not callable, so it cannot be served as {interface}", 1)
    try:
        serve(app, interface=interface, host=settings.pop("host", "127.0.0.1"),
              port=settings.pop("port", 8000), bind=bind,
              root_path=settings.pop("root_path", ""),
              lifespan=settings.pop("lifespan", "auto"),
              reload_app=lambda make: reloader(spec, factory=made, app_dir=app_dir,
                                               make=make),
              **settings)
    except ConfigError as exc:
        return _config_error(exc)
    return 0
