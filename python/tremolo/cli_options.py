"""The settings of `python3 -m tremolo`: every server option as a flag and a
`TREMOLO_<OPTION>` variable (made from its declaration in config/options.py), and the
settings only the command line has (what to serve, TLS files, reloading), declared
here the same way. A flag wins over its variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .config import SPECS, Options, Spec
from .config.kinds import LIST, SWITCH, TEXT, read_count, read_list
from .config.reference import env_name, flag, shown

#: every option that is a flag, by name
FLAGS: dict[str, Spec] = {name: spec for name, spec in SPECS.items() if spec.flag}
#: the TLS flags: --ssl-<flag> -> the key of the `ssl` option
TLS_KEYS = {"ssl_certfile": "cert", "ssl_keyfile": "key", "ssl_keyfile_password": "password",
            "ssl_ca_certs": "ca_certs", "ssl_cert_reqs": "cert_reqs",
            "ssl_ciphers": "ciphers"}
INTERFACES = ("auto", "tremolo", "asgi", "asgi3", "wsgi")
WHERE, TLS, DEVELOPMENT = "where and what to serve", "TLS", "development"
#: the command line's own settings (not options of app.run()), by --help group
CLI_ONLY: dict[str, tuple[str, Spec]] = {
    "app": (WHERE, Spec(TEXT, "module:attr, module (attr 'app'), or path/to/file.py[:attr]: "
                              "a Tremolo application, an ASGI 3 or a WSGI callable")),
    "bind": (WHERE, Spec(TEXT, "listeners instead of --host and --port, comma-separated (or "
                               "the flag again): host:port, [::]:port, :port (127.0.0.1), or "
                               "a UNIX socket: /path, unix:path, name.sock",
                         aliases=("-b",), shown="none")),
    "fd": (WHERE, Spec(LIST, "serve a listening socket handed in as file descriptor N (again "
                             "for more); systemd's socket activation (LISTEN_FDS) is used "
                             "without it", shown="none")),
    "interface": (WHERE, Spec(TEXT, "what APP is (asgi3 is asgi)", choices=INTERFACES,
                              shown="auto, told from APP")),
    "factory": (WHERE, Spec(SWITCH, "APP is a function that returns the application",
                            shown="off")),
    "app_dir": (WHERE, Spec(TEXT, "directory to import APP from",
                            aliases=("--chdir", "--working-dir"),
                            shown="the current one")),
    "root_path": (WHERE, Spec(TEXT, "the ASGI root_path (SCRIPT_NAME for WSGI)",
                              aliases=("--url-path-prefix",), shown="''")),
    "lifespan": (WHERE, Spec(TEXT, "ASGI lifespan: auto (used when the app supports it), on "
                                   "(required), off", choices=("auto", "on", "off"),
                             aliases=("--asgi-lifespan",),
                             shown="auto")),
    "ssl_certfile": (TLS, Spec(TEXT, "the certificate chain (PEM); with it the server speaks "
                                     "TLS", aliases=("--ssl-cert", "--certfile",
                                                     "--ssl-certificate"), shown="none")),
    "ssl_keyfile": (TLS, Spec(TEXT, "its private key (PEM), when not in the certificate "
                                    "file", aliases=("--ssl-key", "--keyfile"),
                              shown="none")),
    "ssl_keyfile_password": (TLS, Spec(TEXT, "the password of the private key",
                                       shown="none")),
    "ssl_ca_certs": (TLS, Spec(TEXT, "authorities client certificates are checked against",
                               aliases=("--ca-certs", "--ssl-ca"), shown="none")),
    "ssl_cert_reqs": (TLS, Spec(TEXT, "client certificates: none, optional or required "
                                      "(mTLS; 0, 1, 2 as uvicorn's)",
                                aliases=("--cert-reqs",), shown="none")),
    "ssl_ciphers": (TLS, Spec(TEXT, "OpenSSL cipher list for TLS 1.2",
                              aliases=("--ciphers",), shown="Mozilla's intermediate")),
    "reload": (DEVELOPMENT, Spec(SWITCH, "restart the server when a watched file changes "
                                         "(watchfiles when installed, else polling); a "
                                         "change that does not compile keeps the old code "
                                         "serving", shown="off")),
    "reload_dirs": (DEVELOPMENT, Spec(LIST, "a directory to watch (again for more)",
                                      aliases=("--reload-dir", "--reload-paths"),
                                      shown="the current one")),
    "reload_includes": (DEVELOPMENT, Spec(LIST, "files to watch (again for more)",
                                          aliases=("--reload-include",), shown="*.py")),
    "reload_excludes": (DEVELOPMENT, Spec(LIST, "names never watched (again for more)",
                                          aliases=("--reload-exclude", "--reload-ignore-dirs",
                                                   "--reload-ignore-patterns",
                                                   "--reload-ignore-paths"),
                                          shown=".*, *~, __pycache__, *.pyc, .git, "
                                                "node_modules")),
    "experimental": (DEVELOPMENT, Spec(SWITCH, "the original Tremolo's switch for keeping a "
                                               "connection open after a chunked request "
                                               "body; tremolo always does, so this only sets "
                                               "options['experimental'] for handlers that "
                                               "look", shown="off", flag=False)),
}
#: uvicorn's numbers for --ssl-cert-reqs (ssl.CERT_NONE, _OPTIONAL, _REQUIRED)
CERT_REQS = {"0": "none", "1": "optional", "2": "required"}


def spec_of(name: str) -> Spec:
    return FLAGS[name] if name in FLAGS else CLI_ONLY[name][1]


def flag_names(name: str) -> list[str]:
    """Every spelling of a setting's flag: its own first, then its aliases. The
    plural settings (reload_dirs ...) are spelt singular, as uvicorn does."""
    spec = spec_of(name)
    own = [] if name.startswith("reload_") else [flag(name)]
    return own + list(spec.aliases)


def describe(name: str, defaults: Options | None = None) -> str:
    """The help text of a flag: what it does, its unit, default and variable."""
    spec = spec_of(name)
    if spec.shown is not None:
        default = spec.shown
    elif defaults is not None and name in FLAGS:
        default = shown(name, spec, getattr(defaults, name))
        default = "none" if default == "None" else default
    else:
        default = "none"
    parts = [spec.help] + ([spec.kind.unit] if spec.kind.unit else [])
    parts.append(f"default: {default}")
    variable = f"${env_name(name)}" + (", comma-separated" if spec.kind is LIST else "")
    return f"{'; '.join(parts)} [{variable}]".replace("%", "%%")


def from_environment(environ: Mapping[str, str], names: list[str]) -> dict[str, Any]:
    """The settings `TREMOLO_<NAME>` variables give; ValueError names the variable."""
    out: dict[str, Any] = {}
    for name in names:
        text = environ.get(env_name(name))
        spec = spec_of(name)
        if text is None or not spec.flag:
            continue
        try:
            out[name] = spec.kind.read(text)
        except ValueError as exc:
            raise ValueError(f"${env_name(name)}: {exc}") from None
        if spec.choices and out[name] not in spec.choices:
            raise ValueError(f"${env_name(name)}: {text!r} is not one of "
                             f"{', '.join(spec.choices)}")
    return out


def web_concurrency(environ: Mapping[str, str] | None = None) -> int | None:
    """$WEB_CONCURRENCY (the worker count PaaS platforms set), if set."""
    text = (environ if environ is not None else os.environ).get("WEB_CONCURRENCY")
    if text is None or not text.strip():
        return None
    try:
        return read_count(text)
    except ValueError as exc:
        raise ValueError(f"$WEB_CONCURRENCY: {exc}") from None


__all__ = ["CLI_ONLY", "FLAGS", "TLS_KEYS", "describe", "env_name", "flag", "flag_names",
           "from_environment", "read_list", "spec_of", "web_concurrency"]
