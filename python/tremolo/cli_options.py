"""The server options as command-line flags and environment variables: what each
one's value is (a size, a rate, seconds, a count, a switch, a word), its help text,
and how its text is read. `TREMOLO_<OPTION>` sets an option; a flag wins over it."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import MiB, Options

ENV_PREFIX = "TREMOLO_"


@dataclass(frozen=True)
class Kind:
    metavar: str
    unit: str
    read: Callable[[str], Any]


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?", re.I)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": MiB, "g": 1024 * MiB}
_TIME = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)?", re.I)
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
    try:
        return int(text.strip())
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


SIZE = Kind("SIZE", "bytes; K, M, G suffixes", read_size)
RATE = Kind("RATE", "bytes/s; K, M, G suffixes", read_size)
SECONDS = Kind("SECONDS", "seconds; ms, m, h suffixes", read_seconds)
OPTIONAL_SECONDS = Kind("SECONDS", "seconds; ms, m, h suffixes", read_optional_seconds)
COUNT = Kind("N", "", read_count)
SWITCH = Kind("", "", read_bool)
TEXT = Kind("TEXT", "", read_text)
LIST = Kind("LIST", "comma-separated", read_list)
MODE = Kind("MODE", "octal", read_mode)

#: every option that is a flag: its kind and what it does
FLAGS: dict[str, tuple[Kind, str]] = {
    "reuse_port": (SWITCH, "SO_REUSEPORT, so that the workers share each port"),
    "uds_mode": (MODE, "permissions of a UNIX socket the server creates (660: owner "
                       "and group); default: the umask's"),
    "share_port": (SWITCH, "let another program (another tremolo) serve the same port "
                           "too; without it a port in use is refused"),
    "worker_num": (COUNT, "worker processes ($WEB_CONCURRENCY too); 0: serve in the "
                          "master process; -1: one per CPU"),
    "backlog": (COUNT, "listen backlog"),
    "debug": (SWITCH, "show tracebacks on 500 pages and log at DEBUG"),
    "log_level": (TEXT, "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    "log_fmt": (TEXT, "the format of log lines (Python logging)"),
    "log_config": (TEXT, "a logging dictConfig file (JSON, or YAML with PyYAML) that "
                         "replaces the server's logging setup; default: none"),
    "access_log": (SWITCH, "one line per answered request, on stdout (tremolo.access); "
                           "default: on here, off in app.run()"),
    "access_log_format": (TEXT, "default, common, combined, json, or a format of "
                                "gunicorn-like atoms: %(h)s %(r)s %(s)s %(b)s %(M)s "
                                "%({user-agent}i)s ... (docs/configuration.md)"),
    "loop": (TEXT, "uvloop (asyncio when missing), asyncio, or a dotted loop class"),
    "buffer_size": (SIZE, "the unit of buffering: body pieces, write watermarks"),
    "client_max_body_size": (SIZE, "largest request body, 413 past it (no limit for ASGI "
                                   "and WSGI apps unless given)"),
    "client_max_header_size": (SIZE, "largest request head, 431 past it"),
    "max_request_line": (SIZE, "longest request line, 414 past it"),
    "max_headers": (COUNT, "most fields in a head, 431 past it"),
    "max_chunk_line": (SIZE, "longest chunk-size line, 400 past it"),
    "max_queue_size": (COUNT, "events queued behind a request before reading pauses"),
    "request_timeout": (SECONDS, "to receive a request head (408), each piece of a body, "
                                 "and for a client to read"),
    "keepalive_timeout": (SECONDS, "idle time between requests before closing"),
    "keepalive_connections": (COUNT, "idle keep-alive connections kept per listener"),
    "app_handler_timeout": (SECONDS, "longest a handler may run"),
    "app_close_timeout": (SECONDS, "how long a handler may run after its client left"),
    "shutdown_timeout": (SECONDS, "how long a graceful stop waits for busy connections"),
    "server_name": (TEXT, "the Server field; '' leaves it out"),
    "thread_pool_size": (COUNT, "threads for WSGI apps and plain (non-async) handlers"),
    "wsgi_queue_size": (COUNT, "WSGI requests that may wait for a thread; then 503"),
    "wsgi_input_buffer": (SIZE, "request body read before a WSGI app gets a thread"),
    "download_rate": (RATE, "speed limit of each response body; 0: none"),
    "upload_rate": (RATE, "speed limit of each connection's request bodies; 0: none"),
    "body_min_rate": (RATE, "slowest a request body may arrive after a grace of "
                            "request_timeout (408); 0: no minimum"),
    "ws": (SWITCH, "WebSocket support"),
    "ws_max_payload_size": (SIZE, "largest WebSocket message (1009 past it)"),
    "ws_ping_interval": (OPTIONAL_SECONDS, "silence before a WebSocket client is pinged; "
                                           "0: never (default: request_timeout / 2)"),
    "ws_ping_timeout": (OPTIONAL_SECONDS, "time a pinged client has to answer (default: "
                                          "the interval)"),
    "ws_close_timeout": (SECONDS, "time the closing handshake may take"),
    "ws_compression": (SWITCH, "offer permessage-deflate to clients that ask"),
    "locks": (COUNT, "inter-process locks offered to handlers"),
    "max_requests": (COUNT, "replace a worker after this many requests (its successor "
                            "serves first); 0: never"),
    "max_requests_jitter": (COUNT, "a random 0..N added to max_requests per worker, so "
                                   "workers are not replaced all at once"),
    "limit_memory": (COUNT, "replace a worker whose resident memory passes this many KiB "
                            "(Linux); 0: no limit"),
    "limit_concurrency": (COUNT, "connections one worker serves at once; past it new "
                                 "ones get 503; 0: no limit"),
    "worker_timeout": (SECONDS, "how long a worker's event loop may be blocked (a handler "
                                "that never yields) before the worker is replaced; 0: never"),
    "metrics": (TEXT, "HOST:PORT of a Prometheus endpoint (/metrics) with the figures "
                      "of every worker; default: off"),
    "proxy_protocol": (TEXT, "read the HAProxy PROXY protocol header (off, v1, v2, auto) "
                             "that trusted peers (--trusted-proxies) send first"),
    "proxy_headers": (TEXT, "the proxy fields believed from trusted peers: x-forwarded "
                            "(X-Forwarded-For/-Proto/-Host), forwarded (RFC 7239) or off; "
                            "never both families"),
    "trusted_proxies": (LIST, "peers whose proxy fields (--proxy-headers) are believed: "
                              "addresses, networks, unix (a UNIX socket peer) or * "
                              "($FORWARDED_ALLOW_IPS too)"),
}
#: options of the command line that are not server options, with their kinds
NOT_OPTIONS = {"host": TEXT, "port": COUNT, "bind": TEXT, "fd": LIST, "interface": TEXT,
               "root_path": TEXT, "factory": SWITCH, "app_dir": TEXT, "lifespan": TEXT,
               "app": TEXT}
#: the TLS flags: --ssl-<flag> -> the key of the `ssl` option, and its help
TLS_FLAGS = {
    "ssl_certfile": ("cert", "the certificate chain (PEM); with it the server speaks TLS"),
    "ssl_keyfile": ("key", "its private key (PEM), when not in the certificate file"),
    "ssl_keyfile_password": ("password", "the password of the private key"),
    "ssl_ca_certs": ("ca_certs", "authorities client certificates are checked against"),
    "ssl_cert_reqs": ("cert_reqs", "client certificates: none, optional or required "
                                   "(mTLS); default: none"),
    "ssl_ciphers": ("ciphers", "OpenSSL cipher list for TLS 1.2; default: Mozilla's "
                               "intermediate profile"),
}
NOT_OPTIONS.update(dict.fromkeys(TLS_FLAGS, TEXT))
#: other spellings a flag answers to: the other servers' names, and the original
#: Tremolo's (its `python3 -m tremolo` of 0.5.x), so their command lines work unchanged
ALIASES = {"worker_num": ("--workers",), "trusted_proxies": ("--forwarded-allow-ips",),
           "ssl_certfile": ("--ssl-cert",), "ssl_keyfile": ("--ssl-key",)}
NOT_OPTIONS.update({"reload": SWITCH, "reload_dirs": LIST, "reload_includes": LIST,
                    "reload_excludes": LIST})


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def describe(name: str, defaults: Options) -> str:
    """The help text of an option's flag: what it does, its unit, default and variable."""
    kind, text = FLAGS[name]
    default = getattr(defaults, name)
    shown = "none" if default is None else default
    if isinstance(default, tuple):
        shown = ",".join(default)
    if kind is SIZE and isinstance(default, int) and default >= 1024 and default % 1024 == 0:
        shown = f"{default // MiB}M" if default % MiB == 0 else f"{default // 1024}K"
    parts = [text]
    if kind.unit:
        parts.append(kind.unit)
    if "default:" not in text:
        parts.append(f"default: {shown!r}" if isinstance(shown, str) and kind is TEXT
                     else f"default: {shown}")
    return f"{'; '.join(parts)} [${env_name(name)}]".replace("%", "%%")


def from_environment(environ: Mapping[str, str], names: list[str]) -> dict[str, Any]:
    """The options set by `TREMOLO_<OPTION>` variables; ValueError names the variable."""
    out: dict[str, Any] = {}
    for name in names:
        text = environ.get(env_name(name))
        if text is None:
            continue
        kind = FLAGS[name][0] if name in FLAGS else NOT_OPTIONS[name]
        try:
            out[name] = kind.read(text)
        except ValueError as exc:
            raise ValueError(f"${env_name(name)}: {exc}") from None
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
