"""WSGI apps for tremolo, granian and gunicorn: /hello (12 bytes), /64k (65536 bytes),
/upload (reads wsgi.input in 64 KiB reads, answers its size), /stream (a generator of
16 pieces of 4 KiB, no Content-Length: chunked on HTTP/1.1)."""

BODY = b"Hello world!"
BIG = b"x" * 65536
PIECE = b"y" * 4096


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/64k":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "65536")])
        return [BIG]
    if path == "/upload":
        stream, size = environ["wsgi.input"], 0
        while data := stream.read(65536):
            size += len(data)
        body = str(size).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (PIECE for _ in range(16))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
    return [BODY]
