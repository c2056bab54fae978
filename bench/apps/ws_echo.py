"""WebSocket echo servers for the benchmark.

    python ws_echo.py PORT            the native Tremolo API (this tremolo, or 0.5.3)
    ws_echo:asgi                      an ASGI echo (tremolo, granian, uvicorn)
"""

import sys
from typing import Any


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            event = (await receive())["type"]
            await send({"type": event + ".complete"})
            if event == "lifespan.shutdown":
                return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ws echo"})
        return
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            if message.get("bytes") is not None:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
            else:
                await send({"type": "websocket.send", "text": message["text"]})
        elif kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        else:
            return


if __name__ == "__main__":
    from tremolo import Tremolo

    app = Tremolo()

    @app.route("/")
    async def echo(websocket=None, **server):  # type: ignore[no-untyped-def]
        if websocket is None:
            return b"ws echo"
        async for message in websocket:
            await websocket.send(message)

    app.run("127.0.0.1", int(sys.argv[1]), worker_num=1, log_level="ERROR",
            ws_max_payload_size=1 << 20, buffer_size=65536, request_timeout=120)
