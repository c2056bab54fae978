"""A native Tremolo echo server for Autobahn|Testsuite: python echo_native.py PORT."""

import sys

from tremolo import Tremolo

app = Tremolo()


@app.route("/")
async def echo(websocket=None, **server):
    if websocket is None:
        return b"a WebSocket echo server"
    async for message in websocket:
        await websocket.send(message)


if __name__ == "__main__":
    app.run("127.0.0.1", int(sys.argv[1]), worker_num=0, log_level="WARNING",
            ws_max_payload_size=16 << 20, request_timeout=60)
