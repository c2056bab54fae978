"""socketify.py (uWebSockets in C++, one Python call per request) with its own API, the
peer issue 19 names: GET /hello (12 bytes), GET /64k (65536 bytes) and a WebSocket
echo on / (binary or text, sent back as it came).

    python3 bench/apps/socketify_app.py PORT

One process, one thread: socketify's loop is libuv, run by app.run(). Needs Debian's
libuv1 (the wheel links libuv.so.1).
"""

import signal
import sys

from socketify import App, AppListenOptions

BODIES = {"/hello": b"Hello world!", "/64k": b"x" * 65536}


def route(body: bytes):  # type: ignore[no-untyped-def]
    # res.send() is one native call: status, content-type, content-length and body
    def handler(res, req):  # type: ignore[no-untyped-def]
        res.send(body, content_type=b"text/plain")
    return handler


def echo(ws, message, opcode):  # type: ignore[no-untyped-def]
    ws.send(message, opcode)


def main() -> None:
    port = int(sys.argv[1])
    app = App()
    for path, body in BODIES.items():
        app.get(path, route(body))
    app.ws("/", {
        "message": echo,
        "max_payload_length": 1 << 20,
        "idle_timeout": 120,
        "compression": 0,  # off, as for every server in the throughput runs
    })
    app.listen(AppListenOptions(port=port, host="127.0.0.1"))
    # the harness stops a server with SIGINT to its process group
    signal.signal(signal.SIGINT, lambda *_: app.close())
    app.run()


if __name__ == "__main__":
    main()
