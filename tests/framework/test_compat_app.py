"""What programs written for the original Tremolo reach beyond its documented API:
`app.routes.add`, `app.hooks`, `app.middlewares`, the `prefix` argument,
`globals.executor`, the `tremolo.lib` module paths, run()'s refusals, option values
the original accepts, and reload=True from a multiprocessing child."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tremolo import Tremolo
from tremolo.config import ConfigError, Options
from tremolo.framework.executor import MultiThreadExecutor
from tremolo.testing import serve_in_thread

from ..helpers import exchange, free_port, stop_process, wait_up


def get(port: int, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)


def test_routes_add_and_a_regex_route_mounted_twice() -> None:
    sub = Tremolo()

    async def where(request: Any, prefix: Any, **server: Any) -> bytes:
        return b"/".join(prefix) + b" " + request.path

    sub.routes.add(where, "^/item/(?P<n>\\d+)$")
    sub.routes.add(where, "/plain")
    sub.on_request(lambda **_: None)  # gives the mount points middleware groups
    app = Tremolo()
    app.mount("/a", sub)
    app.mount("/b", sub)  # the same application at a second prefix
    app.mount("/a", sub)  # and again at the first: nothing more
    assert set(app.middlewares) == {(), (b"a",), (b"b",)}
    assert [len(g["request"]) for g in app.middlewares.values()] == [0, 1, 1]
    with serve_in_thread(app) as (_, port):
        assert get(port, "/a/item/7").content == b"a /a/item/7"
        assert get(port, "/b/item/7").content == b"b /b/item/7"
        assert get(port, "/b/plain").content == b"b /b/plain"
        assert get(port, "/item/7").status_code == 404


def test_hooks_and_middlewares_read_as_the_originals_tuples() -> None:
    app = Tremolo()
    order: list[str] = []

    def hook(name: str) -> Any:
        def f(**_: Any) -> None:
            order.append(name)
        return f

    first, late, same_a, same_b = hook("p1"), hook("p999"), hook("a"), hook("b")
    app.on_worker_stop(priority=1)(first)
    app.on_worker_stop(late)
    app.on_worker_start(priority=5)(same_a)
    app.on_worker_start(priority=5)(same_b)
    # the original keeps worker_stop in descending priorities (and runs it from the end)
    assert [h[1] for h in app.hooks["worker_stop"]] == [late, first]
    assert [tuple(h) for h in app.hooks["worker_start"]] == [(5, same_a), (5, same_b)]

    def mw(content_type: bytes = b"text/plain", **_: Any) -> None:
        return None

    app.on_response(priority=3)(mw)
    priority, func, options = app.middlewares[()]["response"][-1]
    assert (priority, func, options) == (3, mw, {"content_type": b"text/plain"})
    with serve_in_thread(app):
        pass
    # run order: lower priorities first
    assert order == ["a", "b", "p1", "p999"]


def test_the_executor_as_the_original() -> None:
    async def main() -> None:
        ex = MultiThreadExecutor(size=3)
        await ex.start("t", asyncio.get_running_loop())
        assert [t.name for t in ex.threads] == ["t-1", "t-2", "t-3"]
        assert await ex.submit(sum, args=([1, 2, 3],)) == 6
        assert await ex.submit(threading.current_thread, name=4) is ex.threads[1]
        with pytest.raises(ZeroDivisionError):
            await ex.submit(lambda: 1 / 0)

        def gen(n: int) -> Any:
            yield from range(n)

        assert [x async for x in ex.submit(gen, args=(3,))] == [0, 1, 2]
        # the upstream test server's dance: a non-callable, then a dead thread that is
        # replaced on the next submit to it (which still fails)
        with pytest.raises(TypeError):
            ex.submit(None, name=0)
        await ex.threads[0].shutdown()
        with pytest.raises(RuntimeError):
            ex.submit(print, name=0)
        assert len(ex.threads) == 3 and all(t.is_alive() for t in ex.threads)
        assert ex.counter == 5
        threads = list(ex.threads)
        await ex.shutdown()
        for t in threads:
            t.join(5)
            assert not t.is_alive()
        with pytest.raises(RuntimeError):
            ex.submit(print)

    asyncio.run(asyncio.wait_for(main(), 20))


def test_globals_executor_in_a_worker() -> None:
    app = Tremolo()
    seen: dict[str, Any] = {}

    @app.on_worker_start
    async def start(globals: Any, **_: Any) -> None:
        seen["size"] = globals.executor.size
        seen["thread"] = await globals.executor.submit(
            lambda: threading.current_thread().name)

    @app.route("/blocking")
    async def blocking(globals: Any, **_: Any) -> bytes:
        return await globals.executor.submit(lambda: b"done in a thread")

    before = set(threading.enumerate())
    with serve_in_thread(app, thread_pool_size=2) as (_, port):
        assert get(port, "/blocking").content == b"done in a thread"
        threads = [t for t in set(threading.enumerate()) - before
                   if t.name.startswith("tremolo-executor")]
        assert len(threads) == 2
    assert seen["size"] == 2 and seen["thread"].startswith("tremolo-executor-")
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads)


def test_tremolo_lib_module_paths() -> None:
    from tremolo.framework.websocket import WebSocket as Ours
    from tremolo.lib.connections import KeepAliveConnections
    from tremolo.lib.contexts import RequestContext, WorkerContext
    from tremolo.lib.websocket import WebSocket

    assert WebSocket is Ours
    assert WebSocket.create_frame(b"hi", opcode=2) == b"\x82\x02hi"
    assert WorkerContext(a=1).a == 1 and RequestContext is WorkerContext
    conns = KeepAliveConnections(maxlen=2)
    conns.update(a=1, b=2)
    conns["c"] = 3
    assert list(conns.items()) == [("b", 2), ("c", 3)]
    for bad in (0, -1, (0, 1), True):
        with pytest.raises(ValueError):
            KeepAliveConnections(maxlen=bad)


def test_option_values_the_original_accepts() -> None:
    opts = Options.from_kwargs({"app_close_timeout": 0, "shutdown_timeout": 0, "backlog": 0,
                                "ssl": {}, "worker_num": -1})
    assert (opts.app_close_timeout, opts.shutdown_timeout, opts.backlog) == (0, 0, 0)
    assert opts.ssl is None  # any false value: no TLS
    assert opts.worker_num == len(os.sched_getaffinity(0))  # negative: one per CPU
    for name, bad in (("app_close_timeout", -1), ("shutdown_timeout", float("nan")),
                      ("app_close_timeout", "1")):
        with pytest.raises(ConfigError, match=name):
            Options.from_kwargs({name: bad})


def test_close_hooks_run_with_app_close_timeout_zero() -> None:
    app = Tremolo()
    closed = threading.Event()

    @app.on_close
    def on_close(**_: Any) -> None:
        closed.set()

    with serve_in_thread(app, app_close_timeout=0) as (_, port):
        assert get(port, "/").status_code == 503
        assert closed.wait(5)


def test_run_refuses_what_the_original_refuses() -> None:
    app, sub = Tremolo(), Tremolo()
    with pytest.raises(ValueError, match="listen"):
        app.run()
    app.mount("/s", sub)
    with pytest.raises(RuntimeError, match="mounted"):
        sub.run("127.0.0.1", 0)


def test_an_application_pickles_as_its_module_variable() -> None:
    from tests.framework import test_compat_app as here

    here.PICKLED = Tremolo()
    try:
        assert pickle.loads(pickle.dumps(here.PICKLED)) is here.PICKLED
    finally:
        del here.PICKLED
    lone = Tremolo()  # held by no module: pickled as a copy, as before
    assert isinstance(pickle.loads(pickle.dumps(lone)), Tremolo)


LAUNCHER = """
import multiprocessing as mp, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from served import app
print('launcher ran', flush=True)

if __name__ == '__main__':
    mp.set_start_method('spawn', force=True)
    p = mp.Process(target=app.run, kwargs=dict(host='127.0.0.1', port=int(sys.argv[1]),
                   reload=True, worker_num=0))
    p.start()
    open('launcher.pid', 'w').write(str(p.pid))
    p.join()
"""

SERVED = """
import os
from tremolo import Tremolo
app = Tremolo()

@app.route('/v')
async def v(**server):
    return '{version} %d' % os.getpid()
"""


@pytest.mark.slow
def test_reload_from_a_spawned_multiprocessing_process(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "launcher.py").write_text(LAUNCHER)
    (tmp_path / "served.py").write_text(SERVED.format(version="one"))
    proc = subprocess.Popen([sys.executable, "launcher.py", str(port)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        first = wait_up(f"http://127.0.0.1:{port}/v", proc).text
        assert first.startswith("one ")
        time.sleep(1.1)  # a newer mtime than the first version's
        (tmp_path / "served.py").write_text(SERVED.format(version="two"))
        deadline = time.monotonic() + 20
        while not get_text(port).startswith("two "):
            assert time.monotonic() < deadline, "no reload within 20 s"
            time.sleep(0.2)
        watcher = int((tmp_path / "launcher.pid").read_text())
        server = serving_pid(port)
        assert server not in (watcher, proc.pid)
        os.kill(watcher, signal.SIGINT)  # as alltests.py stops its servers
        assert proc.wait(20) == 0
        out = proc.stdout.read().decode() if proc.stdout else ""
        # the launcher ran once in this process and once in the spawned one (its
        # __mp_main__), never again in a reload child
        assert out.count("launcher ran") == 2, out
        deadline = time.monotonic() + 10
        while pid_alive(server):
            assert time.monotonic() < deadline, "the reloaded server outlived its watcher"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
        stop_process(proc)


def get_text(port: int) -> str:
    try:
        return get(port, "/v").text
    except httpx.HTTPError:
        return ""


def serving_pid(port: int) -> int:
    return int(get(port, "/v").text.split()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_run_with_no_host_serves_the_listeners(tmp_path: Path) -> None:
    port = free_port()
    script = tmp_path / "listen_only.py"
    script.write_text(textwrap.dedent(f"""
        from tremolo import Tremolo
        app = Tremolo()

        @app.route('/x')
        async def x(**server):
            return b'listener'

        app.listen({port}, host='127.0.0.1')
        app.run(worker_num=0)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert wait_up(f"http://127.0.0.1:{port}/x", proc).content == b"listener"
    finally:
        stop_process(proc)


def test_a_body_left_unread_ends_the_connection() -> None:
    app = Tremolo()

    @app.route("/ignore")
    async def ignore(**server: Any) -> bytes:
        return b"ignored"

    @app.route("/read")
    async def read(request: Any, **server: Any) -> bytes:
        return b"read " + await request.body()

    post = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nfoo=bar"
    then = b"GET /read HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with serve_in_thread(app) as (_, port):
        # as the original: answered, then closed; the pipelined request is not
        out = exchange(port, post % b"/ignore" + then)
        assert out.count(b"HTTP/1.1 ") == 1 and b"Connection: close\r\n" in out
        assert out.endswith(b"ignored")
        # a body that was read leaves the connection open for the next request
        out = exchange(port, post % b"/read" + then)
        assert out.count(b"HTTP/1.1 200") == 2 and b"read foo=bar" in out


def test_keepalive_timeout_zero_closes_after_each_response() -> None:
    assert Options.from_kwargs({"keepalive_timeout": 0}).keepalive_timeout == 0
    app = Tremolo()

    @app.route("/x")
    async def x(**server: Any) -> bytes:
        return b"x"

    two = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n" * 2
    with serve_in_thread(app, keepalive_timeout=0) as (_, port):
        out = exchange(port, two, timeout=3)
        assert out.count(b"HTTP/1.1 200") == 1 and b"Connection: close\r\n" in out
    with serve_in_thread(app) as (_, port):
        out = exchange(port, two + b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        assert out.count(b"HTTP/1.1 200") == 3
