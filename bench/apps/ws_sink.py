"""WebSocket sinks for the deflate benchmark (bench/wsdeflate.py): they read every
message and drop it; the text message "end" is answered with how many messages and
bytes came before it.

    ws_sink:app                       the native Tremolo API
    ws_sink:asgi                      ASGI (tremolo, uvicorn), without lifespan
"""

from typing import Any

from tremolo import Tremolo

app = Tremolo()


@app.route("/")
async def sink(websocket=None, **server):  # type: ignore[no-untyped-def]
    if websocket is None:
        return b"ws sink"
    await websocket.accept()
    count = size = 0
    while True:
        message = await websocket.receive()
        if message == "end":
            await websocket.send(f"{count} {size}")
        else:
            count += 1
            size += len(message)


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "websocket"  # served with --lifespan off
    count = size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            if text == "end":
                await send({"type": "websocket.send", "text": f"{count} {size}"})
            else:
                count += 1
                size += len(text if text is not None else message["bytes"])
        elif kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        else:
            return
