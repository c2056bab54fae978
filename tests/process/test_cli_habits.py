"""uvicorn's, gunicorn's and granian's flags on tremolo's command line: each one of the
installed servers' own command lines is known here (an alias, set another way, noted,
or refused with what to do instead), and a server started the way people start
uvicorn or gunicorn serves as they expect."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tremolo.cli import CommandLineError, read
from tremolo.cli_habits import HABITS, NEGATIONS, OPTIONAL_VALUES, PEER_VERSIONS, PEERS
from tremolo.config import Options

from ..helpers import free_port, stop_process, wait_up

ROOT = Path(__file__).resolve().parents[2]


def installed_flags(peer: str) -> list[str]:
    """Every flag of the installed server's own command line."""
    if peer == "gunicorn":
        from gunicorn.config import KNOWN_SETTINGS

        return [flag for setting in KNOWN_SETTINGS for flag in setting.cli or ()]
    if peer == "uvicorn":
        from uvicorn.main import main as command
    else:
        from granian.cli import cli as command
    command = getattr(command, "__self__", command)  # (uvicorn's is a bound method)
    return [flag for param in command.params if param.param_type_name == "option"
            for flag in (*param.opts, *param.secondary_opts)]


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_every_flag_of_the_installed_servers_is_known(peer: str) -> None:
    version = importlib.metadata.version(peer)
    listed, theirs = set(PEERS[peer].split()), set(installed_flags(peer))
    assert theirs - listed == set(), f"{peer} {version} has flags cli_habits.py lacks"
    assert version == PEER_VERSIONS[peer] or listed - theirs == set(), \
        f"flags {peer} {version} no longer has"


def settings(*argv: str) -> dict[str, Any]:
    return read([*argv, "app:app"], {})[0]


def a_value(name: str) -> list[str]:
    """A value the flag takes (none for a switch)."""
    habit = HABITS.get(name)
    if habit is not None:
        values = {"PATH": "/tmp/x.sock", "BOOL": "true", "MiB": "100", "VERSION": "tls1.2"}
        return [] if habit.value is None else [values.get(habit.value, "1")]
    return []


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_every_flag_of_theirs_is_taken_noted_or_refused_with_a_reason(
        peer: str, capsys: pytest.CaptureFixture[str]) -> None:
    from tremolo.cli import build_parser

    ours = {s for action in build_parser()._actions for s in action.option_strings}
    for name in PEERS[peer].split():
        if name == "--version" or name in NEGATIONS or name in OPTIONAL_VALUES or (
                name not in HABITS and name in ours):
            continue  # ours, or another spelling of ours: tested with their meaning below
        habit = HABITS[name]
        if habit.refused:
            with pytest.raises(CommandLineError, match=f"{peer}'s {name} is not supported: "):
                settings(name, *a_value(name))
            continue
        got = settings(name, *a_value(name))
        assert got["app"] == "app:app", name  # its value did not swallow APP
        note = capsys.readouterr().err
        if habit.sets is None:
            assert note.startswith(f"tremolo: note: {name}") and "has no effect" in note, name
        else:
            assert note == "", name


@pytest.mark.parametrize("argv, expected", [
    (["-w", "2"], {"worker_num": 2}),
    (["--workers", "3"], {"worker_num": 3}),
    (["-b", "127.0.0.1:8001", "-b", "unix:/tmp/a.sock"],
     {"bind": "127.0.0.1:8001,unix:/tmp/a.sock"}),
    (["--bind", "127.0.0.1:1,127.0.0.1:2", "-b", ":3"], {"bind": "127.0.0.1:1,127.0.0.1:2,:3"}),
    (["--uds", "/tmp/u.sock"], {"bind": "unix:/tmp/u.sock"}),
    (["-t", "5"], {"worker_timeout": 5.0}),
    (["--timeout", "1m"], {"worker_timeout": 60.0}),
    (["--timeout-keep-alive", "2"], {"keepalive_timeout": 2.0}),
    (["--keep-alive", "3"], {"keepalive_timeout": 3.0}),
    (["--timeout-graceful-shutdown", "9"], {"shutdown_timeout": 9.0}),
    (["--graceful-timeout", "8"], {"shutdown_timeout": 8.0}),
    (["--limit-max-requests", "100"], {"max_requests": 100}),
    (["--max-requests", "100", "--max-requests-jitter", "7"],
     {"max_requests": 100, "max_requests_jitter": 7}),
    (["--access-logfile", "-"], {"access_log_file": "-"}),
    (["--error-logfile", "/tmp/e.log"], {"error_log_file": "/tmp/e.log"}),
    (["--log-file", "/tmp/e.log"], {"error_log_file": "/tmp/e.log"}),
    (["--proxy-headers"], {"proxy_headers": "x-forwarded"}),
    (["--proxy-headers", "forwarded"], {"proxy_headers": "forwarded"}),
    (["--no-proxy-headers"], {"proxy_headers": "off"}),
    (["--proxy-protocol"], {"proxy_protocol": "auto"}),
    (["--proxy-protocol", "v2"], {"proxy_protocol": "v2"}),
    (["--ws", "none"], {"ws": False}),
    (["--ws"], {"ws": True}),
    (["--ws", "websockets"], {}),
    (["--ws-max-size", "1M"], {"ws_max_payload_size": 1 << 20}),
    (["--ws-per-message-deflate", "false"], {"ws_compression": False}),
    (["--no-server-header"], {"server_name": ""}),
    (["--threads", "8"], {"thread_pool_size": 8}),
    (["--worker-connections", "50"], {"limit_concurrency": 50}),
    (["--workers-max-rss", "256"], {"limit_memory": 256 * 1024}),
    (["--no-http1-keep-alive"], {"keepalive_timeout": 0.0}),
    (["--no-log"], {"log_level": "CRITICAL", "access_log": False}),
    (["--url-path-prefix", "/api"], {"root_path": "/api"}),
    (["--chdir", "/srv"], {"app_dir": "/srv"}),
    (["--certfile", "c.pem", "--keyfile", "k.pem", "--cert-reqs", "2"],
     {"ssl_certfile": "c.pem", "ssl_keyfile": "k.pem", "ssl_cert_reqs": "2"}),
    (["--ssl-client-verify"], {"ssl_cert_reqs": "required"}),
    (["--metrics"], {"metrics": "127.0.0.1:9090"}),
    (["--metrics", "127.0.0.1:9191"], {"metrics": "127.0.0.1:9191"}),
    (["--log-level", "trace"], {"log_level": "trace"}),
    (["--limit-request-line", "4096", "--limit-request-fields", "50"],
     {"max_request_line": 4096, "max_headers": 50}),
])
def test_their_spellings_mean_here_what_they_mean_there(argv: list[str],
                                                        expected: dict[str, Any]) -> None:
    got = settings(*argv)
    assert got["app"] == "app:app"
    assert {key: got.get(key) for key in expected} == expected


def test_what_options_make_of_their_values() -> None:
    opts = Options.from_kwargs({"log_level": "trace", "loop": "auto"})
    assert opts.log_level == "DEBUG" and opts.loop == "uvloop"
    assert Options.from_kwargs({"log_level": "warning"}).log_level == "WARNING"


def test_an_unknown_flag_is_named_with_the_nearest_ones(
        capsys: pytest.CaptureFixture[str]) -> None:
    for argv, said in [(["--wrokers", "2", "app:app"], "unknown flag --wrokers; did you mean "
                        "--workers"),
                       (["--frobnicate", "2", "app:app"], "unknown flag --frobnicate "
                        "(python3 -m tremolo --help lists them)"),
                       (["app:app", "other:app"], "unexpected argument 'other:app'"),
                       # flags pasted from a page that made their -- a dash
                       (["\u2014workers", "2", "app:app"], "'\u2014workers' starts with "
                        "'\u2014' (U+2014), not '-': write --workers"),
                       (["app:app", "\u2013reload"], "write --reload")]:
        with pytest.raises(SystemExit) as exited:
            read(argv, {})
        assert exited.value.code == 2
        assert said in capsys.readouterr().err


def test_the_tables_in_the_docs_are_made_from_the_code() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "config_table.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ.get("REMOTE_ADDR", "").encode()]
"""


def test_a_gunicorn_command_line_serves(tmp_path: Path) -> None:
    """`gunicorn -w 2 -b A -b B -k ... -t 10 --access-logfile F --error-logfile F`,
    with `python3 -m tremolo` instead of `gunicorn`."""
    (tmp_path / "wapp.py").write_text(APP)
    port, sock = free_port(), tmp_path / "g.sock"
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tremolo", "-w", "2", "-b", f"127.0.0.1:{port}",
         "-b", f"unix:{sock}", "-k", "uvicorn.workers.UvicornWorker", "-t", "10",
         "--access-logfile", str(access), "--error-logfile", str(errors), "wapp:app"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert wait_up(f"http://127.0.0.1:{port}/", proc).text == "127.0.0.1"
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client:
            assert client.get("http://x/unix").status_code == 200
    finally:
        assert stop_process(proc) == 0
    err = proc.stderr.read() if proc.stderr else ""
    assert err.splitlines() == ["tremolo: note: -k uvicorn.workers.UvicornWorker "
                                "(gunicorn) has no effect: tremolo serves Tremolo, ASGI and "
                                "WSGI applications with workers of its own"], err
    logged = errors.read_text()
    assert "serving wapp:app (WSGI)" in logged and "2 workers" in logged, logged
    assert logged.splitlines()[-1].endswith("supervisor: INFO: stopped"), logged
    lines = access.read_text().splitlines()
    assert len(lines) >= 2 and any('"GET /unix HTTP/1.1" 200' in line for line in lines)


@pytest.mark.parametrize("level, logged", [("info", True), ("warning", False),
                                           ("trace", True)])
def test_a_log_level_above_info_silences_the_access_log(tmp_path: Path, level: str,
                                                        logged: bool) -> None:
    (tmp_path / "wapp.py").write_text(APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tremolo", "--port", str(port),
                             "--log-level", level, "--worker-num", "0", "wapp:app"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert wait_up(f"http://127.0.0.1:{port}/seen", proc).status_code == 200
    finally:
        assert stop_process(proc) == 0
    out = proc.stdout.read() if proc.stdout else ""
    assert ("GET /seen" in out) is logged, out


# -- from a hostile review -----------------------------------------------------------

def test_their_flags_win_over_our_variables_as_ours_do() -> None:
    env = {"TREMOLO_SSL_CERT_REQS": "none", "TREMOLO_METRICS": "127.0.0.1:9311"}
    got = read(["--ssl-client-verify", "--no-metrics", "app:app"], env)[0]
    assert got["ssl_cert_reqs"] == "required" and got["metrics"] is None
    # and our own flag wins over theirs
    got = read(["--ssl-client-verify", "--ssl-cert-reqs", "optional", "app:app"], {})[0]
    assert got["ssl_cert_reqs"] == "optional"


def test_what_must_not_be_ignored_is_not() -> None:
    assert settings("--ssl-protocol-min", "tls1.2")["app"] == "app:app"
    with pytest.raises(CommandLineError, match=r"TLS 1\.2 is the least offered"):
        settings("--ssl-protocol-min", "tls1.3")
    assert settings("--uds", "/tmp/a.sock", "--uds", "/tmp/b.sock")["bind"] == \
        "unix:/tmp/a.sock,unix:/tmp/b.sock"
    with pytest.raises(CommandLineError, match="TREMOLO_INTERFACE: 'junk' is not one of"):
        read(["app:app"], {"TREMOLO_INTERFACE": "junk"})
    with pytest.raises(CommandLineError, match=r"TREMOLO_PORT: .*ASCII digits"):
        read(["app:app"], {"TREMOLO_PORT": "\uff18\uff10"})


def test_metrics_on_the_applications_own_port_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "wapp.py").write_text(APP)
    port = free_port()
    r = subprocess.run([sys.executable, "-m", "tremolo", "--port", str(port), "--metrics",
                        f"127.0.0.1:{port}", "wapp:app"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        f"tremolo: error: argument --metrics (or $TREMOLO_METRICS): metrics: 127.0.0.1:"
        f"{port} is where the application is served (http://127.0.0.1:{port}): give it a "
        "port of its own"], r.stderr
