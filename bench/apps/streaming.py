"""Issue 4 benchmark apps: GET /1m (1 MiB body), POST /upload (reads the body, answers
its size), GET /file (the file named by BENCH_FILE), as a native tremolo app, an ASGI
app (uvicorn) and an RSGI app (granian). Speed limits are off."""

import os
import sys

FILE = os.environ.get("BENCH_FILE", "/tmp/tremolo-bench-50m.bin")
ONE_MIB = b"x" * (1 << 20)


async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/upload":
        size = 0
        while True:
            msg = await receive()
            size += len(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        body = str(size).encode()
    elif path == "/file":
        total = os.path.getsize(FILE)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(total).encode())]})
        with open(FILE, "rb") as f:
            while data := f.read(1 << 20):
                await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    else:
        body = ONE_MIB
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def rsgi(scope, proto):
    if scope.path == "/upload":
        size = 0
        async for chunk in proto:
            size += len(chunk)
        proto.response_bytes(200, [("content-type", "text/plain")], str(size).encode())
    elif scope.path == "/file":
        proto.response_file(200, [("content-type", "application/octet-stream")], FILE)
    else:
        proto.response_bytes(200, [("content-type", "application/octet-stream")], ONE_MIB)


if __name__ == "__main__":
    from tremolo import Tremolo

    app = Tremolo()

    @app.route("/1m")
    async def one_mib(**server):
        return ONE_MIB

    @app.route("/upload")
    async def upload(request, **server):
        size = 0
        async for data in request.stream():
            size += len(data)
        return str(size)

    @app.route("/file")
    async def file(response, **server):
        await response.sendfile(FILE)

    # speed limits are off by default; the body limit is raised for the uploads
    app.run("127.0.0.1", int(sys.argv[1]), worker_num=int(os.environ.get("BENCH_WORKERS", "1")),
            log_level="ERROR",
            client_max_body_size=64 << 20,
            buffer_size=int(os.environ.get("BENCH_BUFFER_SIZE", "65536")),
            upload_rate=int(os.environ.get("BENCH_UPLOAD_RATE", "0")))
