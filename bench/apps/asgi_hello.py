"""ASGI app for uvicorn and granian: /hello (12 bytes) and /64k (65536 bytes)."""

BODIES = {"/hello": b"Hello world!", "/64k": b"x" * 65536}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = BODIES.get(scope["path"], b"")
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
