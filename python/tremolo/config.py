"""Every server option: its name, default and validation, in one place.

Names and defaults follow the original Tremolo. Unknown options are kept in
`Options.extra` (they reach handlers as `globals.options`).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

MiB = 1024 * 1024
#: a client_max_body_size that no body reaches: ASGI and WSGI applications under
#: `python3 -m tremolo` get it unless told otherwise (their frameworks set their own)
UNLIMITED = (1 << 63) - 1


class ConfigError(ValueError):
    """An option has a value that cannot work; the message names the option."""


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _optional_seconds(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{name} must be a number of seconds (0 or more) or None, "
                          f"not {value!r}")
    return float(value)


def _positive_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, not {value!r}")
    if not value > 0:
        raise ConfigError(f"{name} must be greater than 0, not {value}")
    return float(value)


def _workers(value: int) -> int:
    """A negative worker_num is one worker per CPU this process may run on (as the
    original)."""
    if value >= 0:
        return value
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on every platform)
        return os.cpu_count() or 1


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(f"{name} must be a number of seconds (0 or more), not {value!r}")
    return float(value)


@dataclass
class Options:
    host: str | None = None
    port: int = 8000
    reuse_port: bool = True
    #: let other programs (another tremolo) bind the same port too; without it, a port
    #: in use is refused even when its holder set SO_REUSEPORT
    share_port: bool = False
    #: permissions of a UNIX socket the server creates (e.g. 0o660); None: the umask's
    uds_mode: int | None = None
    worker_num: int = 1
    backlog: int = 100
    debug: bool = False
    log_level: str = "INFO"
    log_fmt: str = "[%(asctime)s] %(module)s: %(levelname)s: %(message)s"
    #: a logging dictConfig file (JSON, or YAML with PyYAML) instead of the defaults
    log_config: str | None = None
    #: one line per answered request on `tremolo.access` (on under python3 -m tremolo)
    access_log: bool = False
    #: `default`, `common`, `combined`, `json`, or a format of atoms (see logs.py)
    access_log_format: str = "default"
    loop: str = "uvloop"
    buffer_size: int = 16384
    client_max_body_size: int = 2 * MiB
    client_max_header_size: int = 8192
    max_request_line: int = 8192
    max_headers: int = 100
    max_chunk_line: int = 1024
    max_queue_size: int = 128
    request_timeout: float = 30
    keepalive_timeout: float = 30
    keepalive_connections: int = 512
    app_handler_timeout: float = 120
    app_close_timeout: float = 30
    shutdown_timeout: float = 30
    server_name: str = "Tremolo"
    thread_pool_size: int = 5
    #: WSGI requests that may wait for a thread; past it they are answered 503
    wsgi_queue_size: int = 1024
    #: bytes of a request body the loop reads before a WSGI application is given it
    wsgi_input_buffer: int = 65536
    #: bytes per second for one response body, 0 for no limit (the original: 1 MiB/s)
    download_rate: int = 0
    #: bytes per second for one connection's request bodies, 0 for no limit
    upload_rate: int = 0
    #: the slowest a request body may arrive, in bytes per second while a handler
    #: waits for it, after a grace of request_timeout; 0 for no minimum
    body_min_rate: int = 500
    ssl: dict[str, Any] | None = None
    ws: bool = True
    #: the largest WebSocket message (and frame) accepted, inflated; larger is 1009
    ws_max_payload_size: int = 2 * MiB
    #: seconds of silence from a WebSocket client before the server pings it; None
    #: is request_timeout / 2 (as the original), 0 never pings
    ws_ping_interval: float | None = None
    #: seconds a pinged client has to answer (anything counts) before it is dropped;
    #: None is the same as the interval
    ws_ping_timeout: float | None = None
    #: seconds the closing handshake may take before the connection is dropped
    ws_close_timeout: float = 5
    #: offer permessage-deflate (RFC 7692) to clients that ask for it
    ws_compression: bool = True
    locks: int = 16
    #: a worker is replaced (gracefully, its successor serving first) after this many
    #: requests, plus a random 0..max_requests_jitter; 0: never
    max_requests: int = 0
    max_requests_jitter: int = 0
    #: a worker whose resident memory passes this many KiB is replaced (Linux); 0: no limit
    limit_memory: int = 0
    #: connections one worker serves at once; past it a new one is answered 503; 0: no limit
    limit_concurrency: int = 0
    #: seconds a worker's event loop may be blocked before the worker is replaced
    worker_timeout: float = 30
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    #: the proxy fields believed from trusted proxies: x-forwarded (X-Forwarded-For,
    #: -Proto, -Host), forwarded (RFC 7239), or off; never both families at once
    proxy_headers: str = "x-forwarded"
    #: read the HAProxy PROXY protocol header from trusted peers: off, v1, v2, auto
    proxy_protocol: str = "off"
    #: HOST:PORT of the Prometheus metrics endpoint (every worker's figures); None: off
    metrics: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Options:
        known = {f.name for f in fields(cls)} - {"extra"}
        opts = cls(**{k: v for k, v in kwargs.items() if k in known})
        opts.extra = {k: v for k, v in kwargs.items() if k not in known}
        opts.validate()
        return opts

    def validate(self) -> None:
        for name, check in _CHECKS.items():
            setattr(self, name, check(name, getattr(self, name)))
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, "
                              f"not {self.log_level!r}")
        if isinstance(self.trusted_proxies, str):
            self.trusted_proxies = tuple(p.strip() for p in self.trusted_proxies.split(","))
        for proxy in self.trusted_proxies:
            if proxy not in ("*", "unix"):
                try:
                    ipaddress.ip_network(proxy, strict=False)
                except ValueError:
                    raise ConfigError(f"trusted_proxies: {proxy!r} is not an address, a "
                                      "network, 'unix' or '*'") from None
        if self.uds_mode is not None and (isinstance(self.uds_mode, bool) or not isinstance(
                self.uds_mode, int) or not 0 <= self.uds_mode <= 0o777):
            raise ConfigError(f"uds_mode must be permissions from 0 to 0o777, not "
                              f"{self.uds_mode!r}")
        if self.metrics is not None:
            self.metrics_address  # noqa: B018 (checks it)
        if self.proxy_headers not in ("x-forwarded", "forwarded", "off"):
            raise ConfigError(f"proxy_headers must be x-forwarded, forwarded or off, not "
                              f"{self.proxy_headers!r}")
        if self.proxy_protocol not in ("off", "v1", "v2", "auto"):
            raise ConfigError(f"proxy_protocol must be off, v1, v2 or auto, not "
                              f"{self.proxy_protocol!r}")
        if not self.ssl:
            self.ssl = None  # (the original's reading: any false value is no TLS)
        if self.ssl is not None and not (isinstance(self.ssl, dict) and self.ssl.get("cert")):
            raise ConfigError("ssl must be a dict with 'cert' (and 'key', 'password', "
                              "'ca_certs', 'cert_reqs', 'ciphers')")
        if not isinstance(self.server_name, str | bytes):
            raise ConfigError(f"server_name must be a string, not {self.server_name!r}")
        if not isinstance(self.port, int) or isinstance(self.port, bool) \
                or not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be an integer from 0 to 65535, not {self.port!r}")

    @property
    def ping_interval(self) -> float:
        """Seconds between WebSocket pings; 0: none."""
        if self.ws_ping_interval is None:
            return self.request_timeout / 2
        return self.ws_ping_interval

    @property
    def ping_timeout(self) -> float:
        if self.ws_ping_timeout is None:
            return self.ping_interval
        return self.ws_ping_timeout

    @property
    def metrics_address(self) -> tuple[str, int]:
        """(host, port) of `metrics`: HOST:PORT, [IPv6]:PORT or :PORT (127.0.0.1)."""
        text = self.metrics if isinstance(self.metrics, str) else ""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"metrics must be HOST:PORT (e.g. 127.0.0.1:9090), not "
                              f"{self.metrics!r}")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        return host or "127.0.0.1", int(port)

    @property
    def server_name_bytes(self) -> bytes:
        name = self.server_name
        return name if isinstance(name, bytes) else name.encode("latin-1")


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "worker_num": lambda n, v: _workers(_positive_int(n, v, minimum=-(1 << 31))),
    "backlog": lambda n, v: _positive_int(n, v, minimum=0),
    "buffer_size": lambda n, v: _positive_int(n, v, minimum=1024),
    "client_max_body_size": lambda n, v: _positive_int(n, v, minimum=0),
    "client_max_header_size": lambda n, v: _positive_int(n, v, minimum=256),
    "max_request_line": lambda n, v: _positive_int(n, v, minimum=64),
    "max_headers": _positive_int,
    "max_chunk_line": lambda n, v: _positive_int(n, v, minimum=16),
    "max_queue_size": _positive_int,
    "request_timeout": _positive_number,
    "keepalive_timeout": _seconds,
    "keepalive_connections": _positive_int,
    "app_handler_timeout": _positive_number,
    "app_close_timeout": _seconds,
    "shutdown_timeout": _seconds,
    "thread_pool_size": _positive_int,
    "wsgi_queue_size": _positive_int,
    "wsgi_input_buffer": lambda n, v: _positive_int(n, v, minimum=0),
    "download_rate": lambda n, v: _positive_int(n, v, minimum=0),
    "upload_rate": lambda n, v: _positive_int(n, v, minimum=0),
    "body_min_rate": lambda n, v: _positive_int(n, v, minimum=0),
    "locks": _positive_int,
    "max_requests": lambda n, v: _positive_int(n, v, minimum=0),
    "max_requests_jitter": lambda n, v: _positive_int(n, v, minimum=0),
    "limit_memory": lambda n, v: _positive_int(n, v, minimum=0),
    "limit_concurrency": lambda n, v: _positive_int(n, v, minimum=0),
    "worker_timeout": lambda n, v: _optional_seconds(n, v) or 0.0,
    "ws_max_payload_size": lambda n, v: _positive_int(n, v, minimum=125),
    "ws_ping_interval": _optional_seconds,
    "ws_ping_timeout": _optional_seconds,
    "ws_close_timeout": _positive_number,
}
