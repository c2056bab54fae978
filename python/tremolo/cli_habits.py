"""The flags of uvicorn, gunicorn and granian that people's fingers know, beyond those
that are another spelling of a tremolo flag (the aliases in the declarations): each
either sets what it means here, or has no meaning here and is accepted with a
one-line note, or asks for something tremolo does not do and is refused with what to
do instead (ignoring `--user nobody` or `--daemon` would do the wrong thing silently).

`PEERS` lists each server's flags (of the versions named); a test reads the installed
servers' own command lines and fails on a flag that is neither here nor an alias, so
that none is forgotten."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config.kinds import read_bool, read_size


@dataclass(frozen=True)
class Habit:
    """Another server's flag: its value's placeholder (None: a switch), what it does
    here (`sets`), or why it does nothing (`note`), or why it is refused."""

    value: str | None
    note: str
    sets: Callable[[str], dict[str, Any]] | None = None
    refused: bool = False


HTTP = "tremolo has its own HTTP/1.1 parser (Rust), strict by design"
HTTP2 = "tremolo serves HTTP/1.1 (HTTP/2 is for the proxy in front)"
WS = "tremolo has its own WebSocket implementation (--ws-max-payload-size, --no-ws)"
RUNTIME = "a tremolo worker is one event loop with a thread pool (--thread-pool-size)"
LOGGING = "log lines are plain text on stderr (--error-logfile, --log-config)"
NAME = "the processes keep Python's name"
RELOAD = "--reload watches with watchfiles (or polls); --reload-dir/-include/-exclude"
TLS = "TLS 1.2 or later is offered (Mozilla's intermediate profile)"
RESPAWN = "crashed workers are always restarted, with backoff"
SUPERVISOR = "run tremolo under a process manager (systemd, a container): "
ENV = "set the variables in the shell or the process manager (systemd's EnvironmentFile=)"
DIRTY = "tremolo has no second pool of workers: run blocking work in a thread " \
        "(plain handlers) or a job queue"
STATIC = "serve static files from a route (examples/static_files.py) or from the proxy"
METRICS = "tremolo's Prometheus endpoint is --metrics HOST:PORT"


def _note(note: str, value: str | None = None) -> Habit:
    return Habit(value, note)


def _refused(note: str, value: str | None = "VALUE") -> Habit:
    return Habit(value, note, refused=True)


def _sets(value: str | None, note: str, sets: Callable[[str], dict[str, Any]]) -> Habit:
    return Habit(value, note, sets)


def _tls_min(version: str) -> dict[str, Any]:
    """granian's --ssl-protocol-min: tls1.2 is what is offered anyway; anything
    higher asks for something tremolo does not do, and must not be ignored."""
    if version.lower().replace(".", "").replace("v", "") != "tls12":
        raise ValueError(f"{version!r}: TLS 1.2 is the least offered and cannot be raised "
                         "here (a TLS-terminating proxy can)")
    return {}


HABITS: dict[str, Habit] = {
    # uvicorn
    "--uds": _sets("PATH", "--bind unix:PATH", lambda v: {"bind": f"unix:{v}"}),
    "--http": _note(HTTP, "IMPL"),
    "--http2": _note(HTTP2),
    "--ws-max-queue": _note("a WebSocket's messages are held back by flow control, not "
                            "a queue", "N"),
    "--ws-per-message-deflate": _sets("BOOL", "--ws-compression / --no-ws-compression",
                                      lambda v: {"ws_compression": read_bool(v)}),
    "--use-colors": _note(LOGGING),
    "--no-use-colors": _note(LOGGING),
    "--server-header": _sets(None, "the Server field is sent (--server-name)", lambda v: {}),
    "--no-server-header": _sets(None, "--server-name ''", lambda v: {"server_name": ""}),
    "--date-header": _note("the Date field is always sent"),
    "--no-date-header": _note("the Date field is always sent (RFC 9110 asks it of a "
                              "server with a clock)"),
    "--reload-delay": _note(RELOAD, "SECONDS"),
    "--env-file": _refused(ENV, "PATH"),
    "--ssl-version": _note(TLS, "N"),
    "--header": _refused("set default response fields in the application (a "
                         "middleware)", "NAME:VALUE"),
    "--reset-contextvars": _note("each request runs in a context of its own"),
    # gunicorn
    "--worker-class": _note("tremolo serves Tremolo, ASGI and WSGI applications with "
                            "workers of its own", "CLASS"),
    "-k": _note("tremolo serves Tremolo, ASGI and WSGI applications with workers of its "
                "own", "CLASS"),
    "--config": _refused("gunicorn's configuration is Python: give flags or TREMOLO_* "
                         "variables", "PATH"),
    "-c": _refused("gunicorn's configuration is Python: give flags or TREMOLO_* "
                   "variables", "PATH"),
    "--reload-engine": _note(RELOAD, "ENGINE"),
    "--reload-extra-file": _note(RELOAD, "PATH"),
    "--spew": _note("use a debugger or py-spy"),
    "--check-config": _refused("python3 -m tremolo checks every setting before it "
                               "starts: a bad value is one line and exit 2", None),
    "--print-config": _refused("--help shows every setting with its default", None),
    "--preload": _note("the application is imported in the master before the workers "
                       "start"),
    "--no-sendfile": _note("files are sent with sendfile where the connection allows"),
    "--daemon": _refused(SUPERVISOR + "it keeps the process in front", None),
    "-D": _refused(SUPERVISOR + "it keeps the process in front", None),
    "--env": _refused(ENV, "NAME=VALUE"),
    "-e": _refused(ENV, "NAME=VALUE"),
    "--pid": _refused(SUPERVISOR + "it knows the pid (the start line names it too)", "PATH"),
    "-p": _refused(SUPERVISOR + "it knows the pid (the start line names it too)", "PATH"),
    "--worker-tmp-dir": _note("workers' heartbeats are in shared memory", "DIR"),
    "--user": _refused(SUPERVISOR + "start it as that user (systemd's User=)"),
    "-u": _refused(SUPERVISOR + "start it as that user (systemd's User=)"),
    "--group": _refused(SUPERVISOR + "start it as that group (systemd's Group=)"),
    "-g": _refused(SUPERVISOR + "start it as that group (systemd's Group=)"),
    "--umask": _refused("--uds-mode sets a UNIX socket's permissions; the umask is the "
                        "parent's"),
    "-m": _refused("--uds-mode sets a UNIX socket's permissions; the umask is the "
                   "parent's"),
    "--initgroups": _refused(SUPERVISOR + "start it as that user (systemd's User=)", None),
    "--disable-redirect-access-to-syslog": _note(LOGGING),
    "--capture-output": _note(LOGGING),
    "--logger-class": _refused("--log-config takes a logging dictConfig file", "CLASS"),
    "--log-syslog-to": _refused(LOGGING + "; journald or syslog take stderr", "ADDRESS"),
    "--log-syslog": _refused(LOGGING + "; journald or syslog take stderr", None),
    "--log-syslog-prefix": _refused(LOGGING + "; journald or syslog take stderr", "PREFIX"),
    "--log-syslog-facility": _refused(LOGGING + "; journald or syslog take stderr",
                                      "FACILITY"),
    "--enable-stdio-inheritance": _note(LOGGING),
    "-R": _note(LOGGING),
    "--statsd-host": _refused(METRICS, "HOST:PORT"),
    "--dogstatsd-tags": _refused(METRICS, "TAGS"),
    "--statsd-prefix": _refused(METRICS, "PREFIX"),
    "--enable-backlog-metric": _note(METRICS),
    "--name": _note(NAME, "NAME"),
    "-n": _note(NAME, "NAME"),
    "--pythonpath": _refused("--app-dir names the directory APP is imported from; "
                             "PYTHONPATH the others", "DIRS"),
    "--paste": _refused("PasteDeploy is not supported: give APP as module:attr", "PATH"),
    "--paster": _refused("PasteDeploy is not supported: give APP as module:attr", "PATH"),
    "--paste-global": _refused("PasteDeploy is not supported", "NAME=VALUE"),
    "--protocol": _refused("tremolo speaks HTTP (uwsgi is not supported)", "PROTOCOL"),
    "--uwsgi-allow-from": _note("tremolo speaks HTTP (uwsgi is not supported)", "ADDRS"),
    "--suppress-ragged-eofs": _note(TLS),
    "--do-handshake-on-connect": _note(TLS),
    "--http-protocols": _note(HTTP2, "LIST"),
    "--http2-cleartext": _note(HTTP2),
    "--http2-max-concurrent-streams": _note(HTTP2, "N"),
    "--http2-initial-window-size": _note(HTTP2, "N"),
    "--http2-max-frame-size": _note(HTTP2, "N"),
    "--http2-max-header-list-size": _note(HTTP2, "N"),
    "--permit-obsolete-folding": _refused("obsolete line folding is refused (RFC 9112: a "
                                          "request with it is ambiguous)", None),
    "--strip-header-spaces": _refused("a space before a field's colon is refused (RFC "
                                      "9112: it is how requests are smuggled)", None),
    "--permit-unconventional-http-method": _note(HTTP),
    "--permit-unconventional-http-version": _note(HTTP),
    "--casefold-http-method": _note(HTTP),
    "--forwarder-headers": _note("--proxy-headers names the family believed", "LIST"),
    "--header-map": _note("fields whose names hold `_` are refused, never mapped",
                          "MODE"),
    "--asgi-disconnect-grace-period": _note("--app-close-timeout", "SECONDS"),
    "--http-parser": _note(HTTP, "PARSER"),
    "--dirty-app": _refused(DIRTY, "APP"),
    "--dirty-workers": _refused(DIRTY, "N"),
    "--dirty-timeout": _refused(DIRTY, "SECONDS"),
    "--dirty-threads": _refused(DIRTY, "N"),
    "--dirty-graceful-timeout": _refused(DIRTY, "SECONDS"),
    "--control-socket": _note("the master takes signals: HUP reloads, TERM and INT "
                              "stop, TTIN/TTOU are not needed", "PATH"),
    "--control-socket-mode": _note("the master takes signals", "MODE"),
    "--no-control-socket": _note("the master takes signals"),
    # granian
    "--blocking-threads-idle-timeout": _note(RUNTIME, "SECONDS"),
    "--runtime-threads": _note(RUNTIME, "N"),
    "--runtime-blocking-threads": _note(RUNTIME, "N"),
    "--runtime-mode": _note(RUNTIME, "MODE"),
    "--task-impl": _note(RUNTIME, "IMPL"),
    "--backpressure": _note("--limit-concurrency bounds a worker's connections", "N"),
    "--http1-buffer-size": _note("--buffer-size", "SIZE"),
    "--http1-header-read-timeout": _note("--request-timeout is the head's deadline",
                                         "MILLISECONDS"),
    "--http1-keep-alive": _note("keep-alive is on (--keepalive-timeout)"),
    "--no-http1-keep-alive": _sets(None, "--keepalive-timeout 0",
                                   lambda v: {"keepalive_timeout": 0.0}),
    "--http1-pipeline-flush": _note(HTTP),
    "--no-http1-pipeline-flush": _note(HTTP),
    "--http2-adaptive-window": _note(HTTP2),
    "--no-http2-adaptive-window": _note(HTTP2),
    "--http2-initial-connection-window-size": _note(HTTP2, "N"),
    "--http2-initial-stream-window-size": _note(HTTP2, "N"),
    "--http2-keep-alive-interval": _note(HTTP2, "N"),
    "--http2-keep-alive-timeout": _note(HTTP2, "N"),
    "--http2-max-headers-size": _note(HTTP2, "N"),
    "--http2-max-send-buffer-size": _note(HTTP2, "N"),
    "--log": _note("logging is on (--log-level)"),
    "--no-log": _sets(None, "--log-level critical --no-access-log",
                      lambda v: {"log_level": "CRITICAL", "access_log": False}),
    "--ssl-protocol-min": _sets("VERSION", "TLS 1.2 is the least offered; a higher "
                                "minimum is refused (a TLS-terminating proxy can)",
                                lambda v: _tls_min(v)),
    "--access-log-fmt": _refused("--access-log-format takes gunicorn's atoms "
                                 "(docs/configuration.md), not granian's", "FORMAT"),
    "--ssl-crl": _refused("certificate revocation lists are not checked: a "
                          "TLS-terminating proxy can", "PATH"),
    "--ssl-client-verify": _sets(None, "--ssl-cert-reqs required",
                                 lambda v: {"ssl_cert_reqs": "required"}),
    "--no-ssl-client-verify": _sets(None, "--ssl-cert-reqs none",
                                    lambda v: {"ssl_cert_reqs": "none"}),
    "--respawn-failed-workers": _note(RESPAWN),
    "--no-respawn-failed-workers": _refused(RESPAWN, None),
    "--respawn-interval": _note(RESPAWN, "SECONDS"),
    "--rss-sample-interval": _note("--limit-memory is checked every second", "SECONDS"),
    "--rss-samples": _note("--limit-memory is checked every second", "N"),
    "--workers-lifetime": _refused("--max-requests replaces workers by the requests "
                                   "they served", "SECONDS"),
    "--workers-max-rss": _sets("MiB", "--limit-memory (in KiB)",
                               lambda v: {"limit_memory": read_size(v + "M") // 1024}),
    "--env-files": _refused(ENV, "PATHS"),
    "--static-path-route": _refused(STATIC, "PATH"),
    "--static-path-mount": _refused(STATIC, "DIR"),
    "--static-path-dir-to-file": _refused(STATIC, "FILE"),
    "--static-path-expires": _refused(STATIC, "SECONDS"),
    "--no-metrics": _sets(None, "--metrics off", lambda v: {"metrics": None}),
    "--metrics-scrape-interval": _note("workers publish their figures twice a second",
                                       "SECONDS"),
    "--metrics-address": _refused(METRICS, "ADDRESS"),
    "--metrics-port": _refused(METRICS, "PORT"),
    "--reload-tick": _note(RELOAD, "MILLISECONDS"),
    "--reload-ignore-worker-failure": _note("a change that does not compile keeps the old "
                                            "code serving"),
    "--no-reload-ignore-worker-failure": _note("a change that does not compile keeps the "
                                               "old code serving"),
    "--process-name": _note(NAME, "NAME"),
    "--pid-file": _refused(SUPERVISOR + "it knows the pid (the start line names it too)",
                           "PATH"),
}

#: flags whose value is optional here because another server's takes none: with no
#: value (or with one it does not take, which is then another argument), the value
#: it means there. `--ws` is tremolo's switch, or uvicorn's `--ws IMPL`.
OPTIONAL_VALUES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "--proxy-headers": (("x-forwarded", "forwarded", "off"), "x-forwarded"),
    "--proxy-protocol": (("off", "v1", "v2", "auto"), "auto"),
    "--metrics": ((), "127.0.0.1:9090"),
    "--ws": (("auto", "none", "websockets", "websockets-sansio", "wsproto"), None),
}
#: their switches that turn one of ours off
NEGATIONS = {"--no-proxy-headers": ("proxy_headers", "off"),
             "--no-proxy-protocol": ("proxy_protocol", "off")}
#: each server's flags, as its command line lists them
PEERS = {
    "uvicorn": """--host --port --uds --fd --reload --reload-dir --reload-include
        --reload-exclude --reload-delay --workers --loop --http --http2 --ws --ws-max-size
        --ws-max-queue --ws-ping-interval --ws-ping-timeout --ws-per-message-deflate
        --lifespan --interface --env-file --log-config --log-level --access-log
        --no-access-log --use-colors --no-use-colors --proxy-headers --no-proxy-headers
        --server-header --no-server-header --date-header --no-date-header
        --forwarded-allow-ips --root-path --limit-concurrency --backlog --limit-max-requests
        --limit-max-requests-jitter --timeout-keep-alive --timeout-graceful-shutdown
        --timeout-worker-healthcheck --ssl-keyfile --ssl-certfile --ssl-keyfile-password
        --ssl-version --ssl-cert-reqs --ssl-ca-certs --ssl-ciphers --header --version
        --app-dir --h11-max-incomplete-event-size --reset-contextvars --factory""",
    "gunicorn": """-c --config -b --bind --backlog -w --workers -k --worker-class --threads
        --worker-connections --max-requests --max-requests-jitter -t --timeout
        --graceful-timeout --keep-alive --limit-request-line --limit-request-fields
        --limit-request-field_size --reload --reload-engine --reload-extra-file --spew
        --check-config --print-config --preload --no-sendfile --reuse-port --chdir -D
        --daemon -e --env -p --pid --worker-tmp-dir -u --user -g --group -m --umask
        --initgroups --forwarded-allow-ips --access-logfile
        --disable-redirect-access-to-syslog --access-logformat --error-logfile --log-file
        --log-level --capture-output --logger-class --log-config --log-config-json
        --log-syslog-to --log-syslog --log-syslog-prefix --log-syslog-facility -R
        --enable-stdio-inheritance --statsd-host --dogstatsd-tags --statsd-prefix
        --enable-backlog-metric -n --name --pythonpath --paste --paster --proxy-protocol
        --proxy-allow-from --protocol --uwsgi-allow-from --keyfile --certfile --ssl-version
        --cert-reqs --ca-certs --suppress-ragged-eofs --do-handshake-on-connect --ciphers
        --http-protocols --http2-cleartext --http2-max-concurrent-streams
        --http2-initial-window-size --http2-max-frame-size --http2-max-header-list-size
        --paste-global --permit-obsolete-folding --strip-header-spaces
        --permit-unconventional-http-method --permit-unconventional-http-version
        --casefold-http-method --forwarder-headers --header-map --asgi-loop
        --asgi-lifespan --asgi-disconnect-grace-period --websocket-max-message-size
        --http-parser --root-path --dirty-app --dirty-workers --dirty-timeout
        --dirty-threads --dirty-graceful-timeout --control-socket --control-socket-mode
        --no-control-socket""",
    "granian": """--host --port --uds --uds-permissions --interface --http --ws --no-ws
        --workers --blocking-threads --blocking-threads-idle-timeout --runtime-threads
        --runtime-blocking-threads --runtime-mode --loop --task-impl --backlog
        --backpressure --http1-buffer-size --http1-header-read-timeout --http1-keep-alive
        --no-http1-keep-alive --http1-pipeline-flush --no-http1-pipeline-flush
        --http2-adaptive-window --no-http2-adaptive-window
        --http2-initial-connection-window-size --http2-initial-stream-window-size
        --http2-keep-alive-interval --http2-keep-alive-timeout
        --http2-max-concurrent-streams --http2-max-frame-size --http2-max-headers-size
        --http2-max-send-buffer-size --log --no-log --log-level --log-config --access-log
        --no-access-log --access-log-fmt --ssl-certificate --ssl-keyfile
        --ssl-keyfile-password --ssl-protocol-min --ssl-ca --ssl-crl --ssl-client-verify
        --no-ssl-client-verify --url-path-prefix --respawn-failed-workers
        --no-respawn-failed-workers --respawn-interval --rss-sample-interval --rss-samples
        --workers-lifetime --workers-max-rss --workers-kill-timeout --factory --no-factory
        --working-dir --env-files --static-path-route --static-path-mount
        --static-path-dir-to-file --static-path-expires --metrics --no-metrics
        --metrics-scrape-interval --metrics-address --metrics-port --reload --no-reload
        --reload-paths --reload-ignore-dirs --reload-ignore-patterns --reload-ignore-paths
        --reload-tick --reload-ignore-worker-failure --no-reload-ignore-worker-failure
        --process-name --pid-file --version""",
}
#: the versions PEERS was read from
PEER_VERSIONS = {"uvicorn": "0.54.0", "gunicorn": "27.0.1", "granian": "2.8.7"}
