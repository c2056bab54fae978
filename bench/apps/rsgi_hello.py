"""RSGI app for granian: /hello (12 bytes) and /64k (65536 bytes)."""

BODIES = {"/hello": b"Hello world!", "/64k": b"x" * 65536}


async def app(scope, proto):
    proto.response_bytes(200, [("content-type", "text/plain")], BODIES.get(scope.path, b""))
