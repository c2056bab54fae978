"""WSGI hello world for tremolo, granian and gunicorn."""

BODY = b"Hello world!"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
    return [BODY]
