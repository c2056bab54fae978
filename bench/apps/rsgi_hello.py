"""RSGI hello world for granian."""


async def app(scope, proto):
    proto.response_bytes(200, [("content-type", "text/plain")], b"Hello world!")
