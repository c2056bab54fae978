"""Every server option, declared once: its name, type, default, unit, check, help and
the other spellings of its flag. The flags and variables of `python3 -m tremolo`
(cli_options.py) and the table of docs/configuration.md (reference.py,
`tools/config_table.py`) are made from these declarations.

Names and defaults follow the original Tremolo. Unknown options are kept in
`Options.extra` (they reach handlers as `globals.options`)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .kinds import (
    COUNT,
    LIST,
    MODE,
    OPTIONAL_SECONDS,
    RATE,
    SECONDS,
    SIZE,
    SWITCH,
    TEXT,
    ConfigError,
    Kind,
    MiB,
    Spec,
)

#: a client_max_body_size that no body reaches: ASGI and WSGI applications under
#: `python3 -m tremolo` get it unless told otherwise (their frameworks set their own)
UNLIMITED = (1 << 63) - 1
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def option(default: Any, kind: Kind, help: str, **spec: Any) -> Any:
    """A field of Options with its declaration."""
    if isinstance(default, dict):
        return field(default_factory=dict, metadata={"spec": Spec(kind, help, **spec)})
    return field(default=default, metadata={"spec": Spec(kind, help, **spec)})


def _workers(name: str, value: int) -> int:
    """A negative worker_num is one worker per CPU this process may run on (as the
    original)."""
    if value >= 0:
        return value
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on every platform)
        return os.cpu_count() or 1


def _log_level(name: str, value: Any) -> str:
    """A level in any case; uvicorn's `trace` is DEBUG (logging has nothing lower)."""
    level = value.upper() if isinstance(value, str) else value
    level = "DEBUG" if level == "TRACE" else level
    if level not in LOG_LEVELS:
        raise ConfigError(f"{name} must be DEBUG, INFO, WARNING, ERROR or CRITICAL (or "
                          f"trace), not {value!r}", name)
    return str(level)


def _port(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise ConfigError(f"{name} must be an integer from 0 to 65535, not {value!r}", name)
    return value


def _uds_mode(name: str, value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not 0 <= value <= 0o777):
        raise ConfigError(f"{name} must be permissions from 0 to 0o777, not {value!r}", name)
    return value


def _proxies(name: str, value: Any) -> tuple[str, ...]:
    proxies = tuple(p.strip() for p in value.split(",")) if isinstance(value, str) \
        else tuple(value)
    for proxy in proxies:
        if proxy not in ("*", "unix"):
            try:
                ipaddress.ip_network(proxy, strict=False)
            except (TypeError, ValueError):
                raise ConfigError(f"{name}: {proxy!r} is not an address, a network, 'unix' "
                                  "or '*'", name) from None
    return proxies


def address(name: str, value: Any) -> tuple[str, int]:
    """(host, port) of HOST:PORT, [IPv6]:PORT or :PORT (127.0.0.1)."""
    text = value if isinstance(value, str) else ""
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535 \
            or not host.isascii():
        raise ConfigError(f"{name} must be HOST:PORT (e.g. 127.0.0.1:9090), not {value!r}",
                          name)
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host or "127.0.0.1", int(port)


def _metrics(name: str, value: Any) -> Any:
    if value is not None:
        address(name, value)
    return value


def _ssl(name: str, value: Any) -> dict[str, Any] | None:
    if not value:
        return None  # (the original's reading: any false value is no TLS)
    if not (isinstance(value, dict) and value.get("cert")):
        raise ConfigError("ssl must be a dict with 'cert' (and 'key', 'password', "
                          "'ca_certs', 'cert_reqs', 'ciphers')", name)
    return value


def _server_name(name: str, value: Any) -> Any:
    if not isinstance(value, str | bytes):
        raise ConfigError(f"{name} must be a string, not {value!r}", name)
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    # a field value: visible ASCII and spaces (CR or LF would split the answer)
    if not all(" " <= c <= "~" for c in text):
        raise ConfigError(f"{name} must be printable ASCII (a field's value), not "
                          f"{value!r}", name)
    return value


def _host(name: str, value: Any) -> Any:
    # (ASCII only: getaddrinfo reads '０' as 0.0.0.0, every address)
    if value is not None and not (isinstance(value, str) and value.isascii()):
        raise ConfigError(f"{name} must be an address or a name in ASCII, not {value!r}",
                          name)
    return value


def _log_file(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{name} must be a path (or '-'), not {value!r}", name)
    return None if value in (None, "-") else str(value)


@dataclass
class Options:
    host: str | None = option(
        None, TEXT, "address to listen on; '::' for IPv6 and IPv4", check=_host,
        shown="None (127.0.0.1 under python3 -m tremolo)",
        doc="address to listen on; `'::'` for IPv6 and IPv4. `app.run()` needs one unless "
            "`app.listen()` named the listeners (then it serves those alone), as the "
            "original; `python3 -m tremolo` and `tremolo.run()` default to 127.0.0.1")
    port: int = option(8000, COUNT, "TCP port (0: any free port)", check=_port)
    reuse_port: bool = option(True, SWITCH, "SO_REUSEPORT, so that the workers share each "
                                            "port")
    share_port: bool = option(
        False, SWITCH, "let another program (another tremolo) serve the same port too; "
                       "without it a port in use is refused",
        doc="let another program (another tremolo) serve the same port too; without it a "
            "port in use is refused at start, even when its holder set SO_REUSEPORT")
    uds_mode: int | None = option(
        None, MODE, "permissions of a UNIX socket the server creates (660: owner and "
                    "group)", check=_uds_mode, aliases=("--uds-permissions",),
        shown="None (the umask's)",
        doc="permissions of a UNIX socket the server creates, e.g. `0o660` (`--uds-mode "
            "660`); the socket file has no wider ones at any moment, not even as it is "
            "created")
    worker_num: int = option(
        1, COUNT, "worker processes ($WEB_CONCURRENCY too); 0: serve in the master "
                  "process; -1: one per CPU", minimum=-(1 << 31), maximum=1024,
        check=_workers,
        aliases=("--workers", "-w"),
        doc="worker processes sharing each port with SO_REUSEPORT; 0: serve in this "
            "process; negative: one per CPU this process may run on (as the original)")
    backlog: int = option(100, COUNT, "listen backlog", maximum=65535)
    debug: bool = option(False, SWITCH, "show tracebacks on 500 pages and log at DEBUG")
    log_level: str = option(
        "INFO", TEXT, "DEBUG, INFO, WARNING, ERROR or CRITICAL (any case; trace is DEBUG); "
                      "above INFO the access log is off", check=_log_level,
        doc="level of the server's loggers (`tremolo`, `tremolo.error`), in any case "
            "(uvicorn's `trace` is DEBUG); `debug=True` makes it DEBUG. Above INFO the "
            "access log is off, as uvicorn's (its lines are INFO), unless `log_config` "
            "sets the levels")
    log_fmt: str = option("[%(asctime)s] %(module)s: %(levelname)s: %(message)s", TEXT,
                          "the format of log lines (Python logging)",
                          doc="format of the server's log lines (stderr)")
    log_config: str | None = option(
        None, TEXT, "a logging dictConfig file (JSON, or YAML with PyYAML) that replaces "
                    "the server's logging setup", aliases=("--log-config-json",))
    error_log_file: str | None = option(
        None, TEXT, "file the server's log lines are appended to; '-': stderr",
        check=_log_file, aliases=("--error-logfile", "--log-file"), shown="None (stderr)",
        doc="file the server's log lines (`tremolo`, `tremolo.error`) are appended to, "
            "by every process and reopened by name on SIGUSR1 (logrotate); `-` or None: "
            "stderr")
    access_log: bool = option(
        False, SWITCH, "one line per answered request, on stdout (tremolo.access)",
        shown="False (True under python3 -m tremolo)",
        doc="one line per answered request (the 101 of a WebSocket included) on "
            "`tremolo.access`, written to stdout")
    access_log_file: str | None = option(
        None, TEXT, "file the access log is appended to; '-': stdout", check=_log_file,
        aliases=("--access-logfile",), shown="None (stdout)",
        doc="file the access log is appended to, by every process (lines are written "
            "whole, so workers' lines never interleave), reopened by name on SIGUSR1 "
            "(logrotate); `-` or None: stdout. Giving one "
            "turns the access log on")
    access_log_format: str = option(
        "default", TEXT, "default, common, combined, json, or a format of gunicorn-like "
                         "atoms: %(h)s %(r)s %(s)s %(b)s %(M)s %({user-agent}i)s ... "
                         "(docs/configuration.md)", aliases=("--access-logformat",),
        doc="`default` (`%(h)s %(t)s \"%(r)s\" %(s)s %(b)s %(M)sms`), `common`, "
            "`combined`, `json` (one object per line, with the user), or a format of "
            "atoms: `%(h)s` client (as "
            "trusted proxies give it), `%(l)s` `-`, `%(u)s` user (HTTP Basic), `%(t)s` "
            "time, `%(r)s` request line, `%(m)s` method, `%(U)s` path, `%(q)s` query, "
            "`%(H)s` protocol, `%(s)s` status, `%(b)s` body bytes (`-` for none), "
            "`%(B)s` body bytes, `%(D)s` microseconds, `%(M)s` milliseconds, `%(L)s` "
            "seconds, `%(f)s` referer, `%(a)s` user agent, `%(p)s` pid, `%({name}i)s` a "
            "request field, `%({name}o)s` a response field, `%(I)s` bytes received (a "
            "WebSocket's). A WebSocket has two lines: its handshake (101) and, when it "
            "closes, one whose status is the close code (1000-4999), whose body bytes "
            "are those sent, whose time is how long it lasted, and which says the bytes "
            "received (`default` adds `(WebSocket closed, N bytes in)`, `json` "
            "`\"websocket\": true` and `bytes_in`). Requests the server refuses "
            "before any handler (400, 408, 413, 414, 431, and 503 past "
            "limit_concurrency) have a line too. An unknown atom is refused "
            "at start. Every atom is escaped as it is written, so no client can forge "
            "or break a line: `\"` as `\\\"`, `\\` as `\\\\`, control characters (C0, "
            "DEL, C1) as `\\xHH`, other unprintable ones (other spaces, line and "
            "paragraph separators, bidi and zero-width controls, private use) as "
            "`\\uHHHH`, and a space in "
            "`%(u)s` (left unquoted by `common` and `combined`) as `\\x20` (`json` "
            "escapes as JSON does)")
    loop: str = option("uvloop", TEXT, "uvloop (asyncio when missing; auto is uvloop), "
                                       "asyncio, or a dotted loop class",
                       check=lambda name, value: "uvloop" if value == "auto" else value,
                       aliases=("--asgi-loop",))
    buffer_size: int = option(
        16384, SIZE, "the unit of buffering: body pieces, write watermarks", minimum=1024,
        maximum=1 << 30,
        doc="the unit of buffering: a body longer than max(buffer_size, 64 KiB) is read "
            "in pieces of that size (request.stream()'s pieces), body buffered before "
            "reading pauses min(4x, that piece), write watermarks 4x and /2, file "
            "pieces 16x")
    client_max_body_size: int = option(
        2 * MiB, SIZE, "largest request body, 413 past it (no limit for ASGI and WSGI "
                       "apps unless given)",
        shown="2 MiB (no limit for ASGI and WSGI apps under `python3 -m tremolo` and "
              "`tremolo.run`, whose frameworks set their own)",
        doc="largest request body (413)")
    client_max_header_size: int = option(8192, SIZE, "largest request head, 431 past it",
                                         minimum=256,
                                         aliases=("--limit-request-field_size",
                                                  "--h11-max-incomplete-event-size"))
    max_request_line: int = option(8192, SIZE, "longest request line, 414 past it",
                                   minimum=64, aliases=("--limit-request-line",),
                                   doc="longest request line, at most client_max_header_"
                                       "size (414)")
    max_headers: int = option(100, COUNT, "most fields in a head, 431 past it", minimum=1,
                              aliases=("--limit-request-fields",),
                              doc="most fields in a head or trailer section (431)")
    max_chunk_line: int = option(1024, SIZE, "longest chunk-size line, 400 past it",
                                 minimum=16,
                                 doc="longest chunk-size line, extensions included (400)")
    max_queue_size: int = option(128, COUNT, "events queued behind a request before "
                                             "reading pauses", minimum=1)
    request_timeout: float = option(
        30, SECONDS, "to receive a request head (408), each piece of a body, and for a "
                     "client to read", minimum=0,
        doc="absolute deadline from the connection (or the end of the previous response) "
            "to a complete head (a PROXY header included), then 408 (a kept-alive "
            "connection's next head: closed unanswered, as the original's keep-alive "
            "clock does); the TLS handshake's deadline; the longest wait for each piece "
            "of body (408); and how long a write buffer may go without shrinking (a "
            "client that does not read) before the connection is aborted, whether a "
            "handler waits on it or the connection is closing")
    keepalive_timeout: float = option(
        30, SECONDS, "idle time between requests before closing",
        aliases=("--timeout-keep-alive", "--keep-alive"),
        doc="idle time between requests before the connection is closed; 0: no "
            "keep-alive (every connection closes after its response, as the original)")
    keepalive_connections: int = option(
        512, COUNT, "idle keep-alive connections kept per listener", minimum=1,
        doc="idle keep-alive connections kept per listener; past it the oldest idle ones "
            "are closed (checked with the other clocks, at least once a second)")
    app_handler_timeout: float = option(
        120, SECONDS, "longest a handler may run", minimum=0,
        doc="longest a handler may run: cancelled, 500 if nothing was sent, else the "
            "body is cut and the connection closed (checked by the sweeper, which looks "
            "every quarter of this and at least every second)")
    app_close_timeout: float = option(
        30, SECONDS, "how long a handler may run after its client left",
        doc="seconds a handler, and the `on_close` hooks, may run after the client left "
            "(or half-closed: the two look the same) before they are cancelled (0: at "
            "their first wait); a native handler that streams to the client (yields, "
            "wrote with `response.write()`, serves SSE) has none: it is cancelled at "
            "once, its `finally:` runs")
    shutdown_timeout: float = option(
        30, SECONDS, "how long a graceful stop waits for busy connections",
        aliases=("--timeout-graceful-shutdown", "--graceful-timeout",
                 "--workers-kill-timeout"),
        doc="seconds a graceful stop waits for busy connections (0: none)")
    server_name: str | bytes = option("Tremolo", TEXT, "the Server field; '' leaves it out",
                                      check=_server_name)
    thread_pool_size: int = option(
        5, COUNT, "threads for WSGI apps and plain (non-async) handlers", minimum=1,
        maximum=4096,
        aliases=("--threads", "--blocking-threads"),
        doc="threads for plain (non-async) handlers, and for a WSGI application (how "
            "many of its requests run at once)")
    wsgi_queue_size: int = option(
        1024, COUNT, "WSGI requests that may wait for a thread; then 503", minimum=1,
        doc="WSGI requests that may wait for a thread while every thread is busy; past "
            "it a request is answered 503 with `Retry-After: 1` (as is one still waiting "
            "at app_handler_timeout)")
    wsgi_input_buffer: int = option(
        65536, SIZE, "request body read before a WSGI app gets a thread",
        doc="bytes of a request body read on the loop before a WSGI application is given "
            "the request (all of a smaller body): a client sending slowly holds no thread "
            "meanwhile; the rest streams through wsgi.input (read by the thread from the "
            "socket for a Content-Length body on plain TCP; read ahead by the loop, up "
            "to 4 x this, otherwise)")
    download_rate: int = option(
        0, RATE, "speed limit of each response body; 0: none", shown="0 (no limit)",
        doc="bytes per second for one response body, for every interface (a native "
            "route's `rate` option overrides it); bodies and chunks within a tenth of a "
            "second's worth (at least buffer_size) go at once, larger ones in paced "
            "pieces")
    upload_rate: int = option(
        0, RATE, "speed limit of each connection's request bodies; 0: none",
        shown="0 (no limit)",
        doc="bytes per second for one connection's request bodies: past it, reading "
            "pauses (the data waits in the kernel and the client), nothing is buffered")
    body_min_rate: int = option(
        500, RATE, "slowest a request body may arrive after a grace of request_timeout "
                   "(408); 0: no minimum",
        doc="the slowest a request body may arrive, in bytes per second, counted only "
            "while a handler waits for it: after a grace of request_timeout, each byte "
            "received buys 1/body_min_rate seconds more, so a body trickled just inside "
            "each request_timeout wait is answered 408 (for every interface) instead of "
            "holding its handler until app_handler_timeout. 500 bytes/s is far below any "
            "honest link (a 56k modem does 7,000); with upload_rate set, at most half of "
            "it; 0: no minimum (as mod_reqtimeout's MinRate)")
    ssl: dict[str, Any] | None = option(  # noqa: RUF009 (a field(): None is its default)
        None, TEXT, "HTTPS", check=_ssl, flag=False,
        doc="HTTPS: `{'cert': path, 'key': path, 'password': ..., 'ca_certs': path, "
            "'cert_reqs': 'none'\\|'optional'\\|'required', 'ciphers': ...}` "
            "(`--ssl-certfile` or the original's `--ssl-cert`, `--ssl-keyfile` or "
            "`--ssl-key`, `--ssl-keyfile-password`, `--ssl-ca-certs`, `--ssl-cert-reqs`, "
            "`--ssl-ciphers`). TLS 1.2 at least, Mozilla's intermediate cipher suites "
            "for TLS 1.2 (ECDHE/DHE with AES-GCM or ChaCha20-Poly1305: no CBC, no RSA "
            "key exchange), no compression or renegotiation, ALPN `http/1.1`; "
            "`cert_reqs` asks for client certificates (mTLS), checked against "
            "`ca_certs`. The key-exchange groups are OpenSSL's defaults (X448 and P-521 "
            "besides Mozilla's X25519, P-256 and P-384): Python's ssl module offers no "
            "way to narrow them (set_ecdh_curve picks one curve only), so a "
            "TLS-terminating proxy is the place for that. Files are loaded in the master "
            "before anything is bound: a certificate that does not load is one line, "
            "exit 2")
    ws: bool = option(True, SWITCH, "WebSocket support",
                      doc="WebSocket support: with False (`--no-ws`) upgrade requests are "
                          "ordinary HTTP requests")
    ws_max_payload_size: int = option(
        2 * MiB, SIZE, "largest WebSocket message (1009 past it)", minimum=125,
        aliases=("--ws-max-size", "--websocket-max-message-size"),
        doc="largest WebSocket message (and frame), after inflating; larger is closed "
            "with 1009 before it is buffered")
    ws_ping_interval: float | None = option(
        None, OPTIONAL_SECONDS, "silence before a WebSocket client is pinged; 0: never",
        shown="None (request_timeout / 2)",
        doc="seconds of silence from a WebSocket client before the server pings it; 0: "
            "never")
    ws_ping_timeout: float | None = option(
        None, OPTIONAL_SECONDS, "time a pinged client has to answer",
        shown="None (= the interval)",
        doc="seconds a pinged client has to send anything before it is dropped")
    ws_close_timeout: float = option(
        5, SECONDS, "time the closing handshake may take", minimum=0,
        doc="seconds the closing handshake may take before the connection is dropped")
    ws_compression: bool = option(
        True, SWITCH, "offer permessage-deflate to clients that ask",
        doc="accept permessage-deflate when a client offers it (`--no-ws-compression`)")
    locks: int = option(16, COUNT, "inter-process locks offered to handlers", minimum=1,
                        maximum=1024,
                        doc="how many inter-process locks the `lock` argument offers")
    max_requests: int = option(
        0, COUNT, "replace a worker after this many requests (its successor serves "
                  "first); 0: never", aliases=("--limit-max-requests",),
        shown="0 (never)",
        doc="a worker is replaced after this many requests: the master starts its "
            "successor, and once that one serves, the old one stops accepting and "
            "drains (no request fails)")
    max_requests_jitter: int = option(
        0, COUNT, "a random 0..N added to max_requests per worker, so workers are not "
                  "replaced all at once", aliases=("--limit-max-requests-jitter",),
        doc="a random 0..N added to max_requests for each worker, so that workers are "
            "not replaced all at once")
    limit_memory: int = option(
        0, COUNT, "replace a worker whose resident memory passes this many KiB (Linux); "
                  "0: no limit", shown="0 (no limit)",
        doc="KiB of resident memory (Linux) past which a worker is replaced the same "
            "way, checked every second (the original's option)")
    limit_concurrency: int = option(
        0, COUNT, "connections one worker serves at once; past it new ones get 503; 0: "
                  "no limit", aliases=("--worker-connections",), shown="0 (no limit)",
        doc="connections one worker (listener) serves at once, those in their TLS "
            "handshake or PROXY header included; past it a new connection is answered "
            "`503` with `Retry-After: 1` and closed (on a TLS listener closed at once, "
            "without a handshake), never left waiting. Connections refused that way do "
            "not count")
    worker_timeout: float = option(
        30, OPTIONAL_SECONDS, "how long a worker's event loop may be blocked (a handler "
                              "that never yields) before the worker is replaced; 0: never",
        check=lambda name, value: value or 0.0,
        aliases=("--timeout", "-t", "--timeout-worker-healthcheck"),
        doc="seconds a worker's event loop may go without a tick (a handler that blocks "
            "it: `time.sleep`, a synchronous driver) before the master kills the worker "
            "and starts another (gunicorn's `--timeout`); the worker logs first the "
            "request whose handler blocks the loop (`the handler of GET /path`) with the "
            "handler's stack (a thread of the worker does it; faulthandler writes every "
            "stack to stderr instead when the stuck code never lets go of the GIL); 0: "
            "never")
    trusted_proxies: tuple[str, ...] = option(
        ("127.0.0.1", "::1"), LIST, "peers whose proxy fields (--proxy-headers) are "
                                    "believed: addresses, networks, unix (a UNIX socket "
                                    "peer) or * ($FORWARDED_ALLOW_IPS too)",
        check=_proxies, aliases=("--forwarded-allow-ips", "--proxy-allow-from"),
        doc="peers whose proxy fields are believed (`--trusted-proxies`, "
            "`--forwarded-allow-ips`, `$FORWARDED_ALLOW_IPS`): addresses, networks, "
            "`unix` (a peer on a UNIX socket) or `*`. From them, the family "
            "`proxy_headers` names gives the client (the rightmost address that is not "
            "a trusted proxy), the scheme and the host, for native (`request.ip`, "
            "`scheme`, `host`), ASGI (`client`, `scheme`, the `host` header) and WSGI "
            "(`REMOTE_ADDR`, `wsgi.url_scheme`, `HTTP_HOST`) alike, and for the access "
            "log. An IPv4 peer of a dual-stack listener (`::ffff:192.0.2.1`) matches its "
            "IPv4 entry")
    proxy_headers: str = option(
        "x-forwarded", TEXT, "the proxy fields believed from trusted peers: x-forwarded "
                             "(X-Forwarded-For/-Proto/-Host), forwarded (RFC 7239) or "
                             "off; never both families",
        choices=("x-forwarded", "forwarded", "off"),
        doc="the proxy fields believed from a trusted proxy (`--proxy-headers`; without "
            "a value, as uvicorn's, x-forwarded; `--no-proxy-headers` is off): "
            "`x-forwarded` (`X-Forwarded-For`, `-Proto`, `-Host`), `forwarded` (RFC "
            "7239 `Forwarded`) or `off`. Never both: a proxy passes on the family it "
            "does not set as the client sent it")
    proxy_protocol: str = option(
        "off", TEXT, "read the HAProxy PROXY protocol header (off, v1, v2, auto) that "
                     "trusted peers (--trusted-proxies) send first",
        choices=("off", "v1", "v2", "auto"),
        doc="read the HAProxy PROXY protocol header (`v1`, `v2`, or `auto` for either; "
            "`--proxy-protocol` without a value, as gunicorn's, is auto) that a trusted "
            "peer sends before its client's bytes, on a TLS listener before the TLS "
            "handshake as load balancers send it: the client it names becomes the peer "
            "(for `request.ip`, ASGI `client`, WSGI `REMOTE_ADDR`, the access log; a "
            "LOCAL header keeps the connection's own). Parsed in Rust, strictly and "
            "bounded (a v1 line of at most 107 bytes, a v2 header of at most 2 KiB); a "
            "trusted peer that sends none, or a malformed one, is closed without an "
            "answer. Untrusted peers send none")
    metrics: str | None = option(
        None, TEXT, "HOST:PORT of a Prometheus endpoint (/metrics) with the figures of "
                    "every worker", check=_metrics, shown="None (off)",
        doc="`HOST:PORT` of a Prometheus endpoint (`GET /metrics`, `--metrics "
            "127.0.0.1:9090`; every other path is 404) with the figures of every worker "
            "added up and each process's own (CPU, memory, descriptors), served by the "
            "master (by the process itself with `worker_num=0`); see "
            "[deployment.md](deployment.md#metrics)")
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Options:
        opts = cls(**{k: v for k, v in kwargs.items() if k in SPECS})
        opts.extra = {k: v for k, v in kwargs.items() if k not in SPECS}
        opts.validate()
        return opts

    def validate(self) -> None:
        for name, spec in SPECS.items():
            setattr(self, name, spec.validate(name, getattr(self, name)))
        if self.log_level not in ("DEBUG", "INFO") and not self.debug \
                and self.log_config is None:
            # its lines are INFO: uvicorn's --log-level warning silences it too, and
            # nothing is formatted for lines nobody writes
            self.access_log = False
        if self.access_log_file is not None:
            self.access_log = True  # a file asked for is a log asked for, at any level
        if self.log_config is not None:
            for given in ("access_log_file", "error_log_file"):
                if getattr(self, given) is not None:
                    raise ConfigError(f"{given} does not apply with log_config (its "
                                      "handlers say where lines go)", given)

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
        return address("metrics", self.metrics)

    @property
    def server_name_bytes(self) -> bytes:
        name = self.server_name
        return name if isinstance(name, bytes) else name.encode("latin-1")


#: every option's declaration, in the order of Options
SPECS: dict[str, Spec] = {f.name: f.metadata["spec"] for f in fields(Options)
                          if "spec" in f.metadata}
