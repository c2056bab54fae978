"""Applications written with the public Tremolo API only, served by this tremolo and
by the original (tremolo==0.5.3) alike, for tests/framework/test_against_the_original.py.

    python apps.py PORT VARIANT

Whichever `tremolo` the interpreter has serves them. Variants: `main` (routing,
handlers, request, response, hooks, middlewares, mount, forms, cookies, sendfile,
SSE, WebSocket, default error answers), `handled` (an application's own error
handlers), `limits` (options), and programs like the original's examples
(`examples`). Every answer is deterministic: nothing random, no ports, no times
(a file's dates are fixed with os.utime).
"""

import asyncio
import json
import os
import sys

from tremolo import Tremolo
from tremolo.exceptions import (
    BadRequest,
    Forbidden,
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = os.path.join(HERE, "files")
STAMP = 1_700_000_000  # the files' mtime, so both servers give the same dates


def prepare_files():
    os.makedirs(FILES, exist_ok=True)
    for name, data in [("hello.txt", b"Hello, file!\n"),
                       ("data.bin", bytes(range(256)) * 40),
                       ("page.html", b"<!DOCTYPE html><p>a page</p>\n")]:
        path = os.path.join(FILES, name)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (STAMP, STAMP))


def dump(value):
    """JSON of what a handler saw: bytes as latin-1 text."""
    def default(o):
        if isinstance(o, (bytes, bytearray)):
            return o.decode("latin-1")
        if isinstance(o, tuple):
            return list(o)
        if isinstance(o, dict):
            return dict(o)
        return repr(o)
    return json.dumps(value, default=default, sort_keys=True)


# -- main --------------------------------------------------------------------

def build_main():
    app = Tremolo()

    # routing
    @app.route("/hello")
    async def hello(**server):
        return b"Hello, World!"

    @app.route("/str")
    async def text(**server):
        return "unicode: caf\u00e9"

    @app.route("/latin1")
    async def latin1(**server):
        return "caf\u00e9", "latin-1"

    @app.route("/tuple-bytes")
    async def tuple_bytes(request, **server):
        return request.path, b"latin-1"  # bytes first: the encoding is unused

    @app.route(r"^/page/(?P<page_id>\d+)$")
    async def page(request, page_id=b"1", **server):
        return b"page " + page_id + b" " + request.params["path"]["page_id"]

    @app.route(r"^/tag/(\w+)$")
    async def tag(request, **server):
        return dump(request.params["path"])

    @app.route("/twice")
    async def twice_old(**server):
        return b"first"

    @app.route("/twice")
    async def twice_new(**server):
        return b"second"

    @app.route(r"^/echo-path/.*")
    async def echo_path(request, **server):
        return dump([request.path, request.query_string])

    @app.route("/deep/a/b/c")
    async def deep(request, **server):
        return request.path

    class Items:
        async def get(self, request, **server):
            return b"items get"

        async def post(self, request, **server):
            return b"items post " + await request.body()

    app.add_route(Items, "/items")

    # handlers
    @app.route("/created")
    async def created(status=(201, b"Created"), content_type="text/plain", **server):
        return b"made"

    @app.route("/yield")
    async def gen(**server):
        yield b"one "
        yield "two "
        yield b"three"

    @app.route("/yield-empty")
    async def gen_empty(**server):
        yield b""

    @app.route("/sync")
    def sync(request, **server):
        return b"sync " + request.path

    @app.route("/sync-yield")
    def sync_gen(**server):
        yield b"a"
        yield b"b"

    @app.route("/none")
    async def nothing(**server):
        return None

    @app.route("/options")
    async def options(request, custom=b"knob", **server):
        return dump({"custom": request.ctx.options.get("custom")})

    # request
    @app.route("/request")
    async def req(request, **server):
        return dump({
            "method": request.method, "path": request.path, "url": request.url,
            "query_string": request.query_string, "version": request.version,
            "host": request.host, "content_type": request.content_type,
            "ip": request.ip, "scheme": request.scheme, "secure": request.is_secure,
            "client": request.client[0], "x_test": request.headers.get(b"x-test"),
            "x_multi": request.headers.getlist(b"x-multi"),
            "context_is_ctx": request.context is request.ctx,
        })

    @app.route("/query")
    async def query(request, **server):
        return dump(request.query)

    @app.route("/cookies")
    async def cookies(request, **server):
        return dump(request.cookies)

    @app.route("/body")
    async def body(request, **server):
        data = await request.body()
        return dump({"size": len(data), "body": data[:64]})

    @app.route("/read")
    async def read(request, **server):
        first = await request.read(3)
        rest = b""
        while True:
            data = await request.read()
            if not data:
                break
            rest += data
        return dump([first, len(rest)])

    @app.route("/stream")
    async def stream(request, **server):
        size = 0
        async for data in request.stream():
            size += len(data)
        return dump(size)

    @app.route("/form")
    async def form(request, **server):
        fields = await request.form()
        files = {name: [{k: v for k, v in f.items() if k in ("filename", "type", "data")}
                        for f in parts]
                 for name, parts in request.params.get("files", {}).items()}
        return dump({"form": fields, "post": request.params["post"], "files": files})

    @app.route("/files")
    async def files(request, **server):
        out = []
        async for part in request.files(max_file_size=1000):
            out.append([part.get("name"), part.get("filename", ""), part.get("type", ""),
                        len(part["data"]), part["eof"]])
        return dump(out)

    # response
    @app.route("/status")
    async def status(response, **server):
        response.set_status(202, "Accepted For Now")
        return b"status"

    @app.route("/status-code-only")
    async def status_code_only(response, **server):
        response.set_status(201)
        return b"created"

    @app.route("/headers")
    async def headers(response, **server):
        response.set_header("X-One", "1")
        response.set_header("X-One", "one")
        response.append_header("X-Two", "a")
        response.append_header("X-Two", "b")
        response.set_content_type("text/plain; charset=utf-8")
        return b"headers"

    @app.route("/set-cookie")
    async def set_cookie(response, **server):
        response.set_cookie("plain", "value")
        response.set_cookie("spaced", "a b;c", path="/x", secure=True, httponly=True,
                            samesite="Strict")
        return b"cookies set"

    @app.route("/redirect")
    async def redirect(request, response, **server):
        code = int(request.query.get("code", ["302"])[0])
        raise response.redirect("/hello", code)

    @app.route("/status-then-body")
    async def status_then_body(response, **server):
        response.set_status(404, "Not Here")
        response.set_content_type("text/plain")
        return b"a body with a 404"

    @app.route("/write")
    async def write(response, **server):
        await response.write(b"first ")
        await response.write(b"second")
        await response.write(b"")

    @app.route("/write-unchunked")
    async def write_unchunked(response, **server):
        response.set_header("Content-Length", "11")
        await response.write(b"hello ", chunked=False)
        await response.write(b"world", chunked=False)

    @app.route("/end")
    async def end(response, **server):
        await response.end(b"ended")

    @app.route("/raw")
    async def raw(response, **server):
        await response.send(b"HTTP/1.0 200 OK\r\nX-Raw: 1\r\n\r\nraw body")
        response.close()

    @app.route("/sendfile")
    async def sendfile(request, response, **server):
        name = request.query["name"][0]
        kwargs = {}
        if "type" in request.query:
            kwargs["content_type"] = request.query["type"][0]
        await response.sendfile(os.path.join(FILES, name), **kwargs)

    # hooks and middlewares
    @app.on_worker_start
    async def worker_start(**server):
        server["globals"].started = "yes"

    @app.on_connect
    async def connect(**server):
        server["context"].connected = "yes"

    @app.route("/hooked")
    async def hooked(**server):
        return dump([server["globals"].started, server["context"].connected])

    @app.on_request
    async def request_middleware(request, response, **server):
        response.set_header("X-Request-Middleware", "ran")
        if request.path == b"/mw/answer":
            return b"answered by a middleware"
        if request.path == b"/mw/raise":
            raise Forbidden("refused by a middleware")
        if request.path == b"/mw/answer-tuple":
            response.set_status(405, "Method Not Allowed")
            response.set_content_type("text/plain")
            return (b"answered with a tuple",)
        return None

    @app.on_response
    async def status_middleware(request, response, content_type="text/x-mw", **server):
        # registered first, so it runs after response_middleware (newest first)
        if request.path == b"/mw/status":
            response.set_status(500, "Changed")  # the route's status option wins
            return "a middleware's body"
        return None

    @app.on_response
    async def response_middleware(request, response, **server):
        if not request.path.startswith(b"/mw/"):
            return None
        response.set_header("X-Response-Middleware", "ran")
        if request.path == b"/mw/replace":
            return b"replaced by a middleware"
        return None

    @app.route("/mw/status")
    async def mw_status(status=(201, b"Made"), **server):
        return b"the handler's body"

    @app.route("/mw/replace")
    async def mw_replace(**server):
        return b"the handler's body"

    # errors without handlers
    @app.route("/error/forbidden")
    async def forbidden(**server):
        raise Forbidden("go away")

    @app.route("/error/teapot")
    async def teapot(**server):
        raise HTTPException("short and stout", code=418, message="I'm a teapot",
                            content_type="text/plain")

    @app.route("/error/headers")
    async def error_headers(**server):
        raise TooManyRequests("slow down", retry_after="5")

    @app.route("/error/bare")
    async def bare(**server):
        raise Unauthorized

    @app.route("/error/not-found-message")
    async def not_found_message(**server):
        raise NotFound("no such user")

    @app.route("/error/bad-request")
    async def bad_request(**server):
        raise BadRequest("bad input")

    @app.route("/error/too-large")
    async def too_large(**server):
        raise PayloadTooLarge

    @app.route("/error/unavailable")
    async def unavailable(**server):
        raise ServiceUnavailable("later")

    @app.route("/error/internal")
    async def internal(**server):
        raise InternalServerError("said on purpose")

    @app.route("/error/bug")
    async def bug(**server):
        raise ValueError("secret internals")

    @app.route("/error/timeout")
    async def timeout(**server):
        raise HTTPException(cause=TimeoutError("too slow"))

    @app.route("/error/recaused")
    async def recaused(**server):
        # an HTTPException as the cause: reused, with the new arguments and options
        first = MethodNotAllowed("only GET", allow=b"GET")
        raise HTTPException("only POST", cause=first, allow=b"POST")

    @app.route("/lock")
    async def locked(lock, **server):
        async with lock(3):
            try:
                await lock(3).acquire(timeout=0)
                yield b"taken twice"
            except TimeoutError:
                yield b"held: TimeoutError"
        # (not acquire(timeout=0) on a free lock: the original's times out now and
        # then, its timer racing the thread that takes it)
        lock(3).release()  # not held: nothing happens
        yield b", released"

    # SSE and WebSocket
    @app.route("/sse")
    async def sse_route(sse=None, **server):
        await sse.send("hello")
        await sse.send("two\nlines\n", event="update", event_id="7")
        await sse.send("with retry", retry=3000)
        await sse.close()

    @app.route("/sse-options")
    async def sse_options(sse=None, content_type="text/x-events", **server):
        server["response"].set_header("Cache-Control", "no-store")
        await sse.send(sse.request.path, event="", event_id="")
        await sse.close()

    @app.route("/ws")
    async def ws_route(websocket=None, **server):
        await websocket.accept()
        while True:
            message = await websocket.receive()
            if message == "bye":
                await websocket.close()
                return
            await websocket.send(message)

    # mount: a sub-application with a middleware of its own
    sub = Tremolo()

    @sub.route("/inner")
    async def inner(request, **server):
        return b"inner " + request.path

    @sub.on_request
    async def sub_middleware(response, **server):
        response.set_header("X-Sub-Middleware", "ran")

    @sub.route(r"^/re/(?P<n>\d+)$")
    async def sub_regex(n=b"", **server):
        return b"sub regex " + n

    app.mount("/sub", sub)
    return app, {}


# -- handled: the application's own error handlers ---------------------------

def build_handled():
    app = Tremolo()

    @app.route("/forbidden")
    async def forbidden(**server):
        raise Forbidden("go away", x_why="test")

    @app.route("/bug")
    async def bug(**server):
        raise ZeroDivisionError("division by zero")

    @app.route("/quiet")
    async def quiet(**server):
        raise HTTPException("own words", code=409, message="Conflict",
                            content_type="text/plain")

    @app.route("/bad")
    async def bad(**server):
        raise BadRequest("bad input")

    @app.route("/restatus")
    async def restatus(**server):
        raise Forbidden

    @app.route("/recode")
    async def recode(**server):
        raise Forbidden('{"error": "forbidden"}')

    @app.error(500)
    async def error_500(request, response, exc, **server):
        if request.path == b"/quiet":
            return None
        if request.path == b"/recode":
            exc.code = 409
            exc.content_type = "application/json"
            response.set_header("X-Dropped", "yes")
            return None
        if request.path == b"/restatus":
            response.set_status(451, "Unavailable For Legal Reasons")
            return "legal"
        cause = type(exc.__cause__).__name__ if exc.__cause__ else "-"
        return f"{exc.code} {type(exc).__name__} cause={cause} [{exc}]"

    @app.error(404)
    async def error_404(request, **server):
        return b"custom 404 for " + request.path

    @app.error(400)
    async def error_400(exc, **server):
        return f"custom 400: {exc}"

    return app, {}


# -- limits: options --------------------------------------------------------

def build_limits():
    app = Tremolo()

    @app.route("/upload")
    async def upload(request, **server):
        return dump(len(await request.body()))

    return app, {"client_max_body_size": 1000}


# -- programs like the original's examples ------------------------------------

def build_examples():
    app = Tremolo()

    # a static-file middleware (as examples/middlewares/static_middleware.py does)
    @app.on_request
    async def static(request, response, **server):
        if request.path.startswith(b"/static/"):
            name = os.path.basename(request.path.decode("latin-1"))
            path = os.path.join(FILES, name)
            if os.path.isfile(path):
                await response.sendfile(path, content_type="text/plain")
                return True
        return None

    # URL redirections (examples/url_redirections.py)
    @app.route("/go")
    async def go(request, response, **server):
        raise response.redirect("/target?from=go", 301)

    @app.route("/target")
    async def target(request, **server):
        return dump(request.query)

    # upload and stream back (examples/upload_and_stream.py)
    @app.route("/upload-stream")
    async def upload_stream(request, response, **server):
        files = request.files(max_file_size=100)
        part = await files.__anext__()
        response.set_content_type(part["type"])
        yield part["data"]
        async for part in files:
            yield part["data"]

    # upload and save, piece by piece (examples/upload_and_save.py)
    @app.route("/upload-save")
    async def upload_save(request, **server):
        saved = {}
        async for part in request.files(max_file_size=64):
            name = part.get("filename", "")
            if not name:
                continue
            data = b""
            async for piece in part.stream():
                data += piece
            saved[name] = [len(data), part["type"]]
            yield dump(saved)

    # server-sent notifications (examples/sse_notifications.py)
    @app.route("/notifications")
    async def notifications(sse=None, **server):
        for i in range(3):
            await sse.send(f"notification {i}", event="note")
            await asyncio.sleep(0)
        await sse.close()

    # a module of views, as examples/module_based_views.py mounts one
    class Fruits:
        async def get(self, request, **server):
            return b"fruits: apple, mango"

        async def delete(self, **server):
            return b"deleted"

    app.add_route(Fruits, "/fruits")

    # a chat over WebSocket, escaping what it echoes (examples/websocket_chat.py)
    @app.route("/chat")
    async def chat(websocket=None, **server):
        from tremolo.utils import html_escape

        await websocket.accept()
        async for message in websocket:
            await websocket.send(html_escape(message))

    return app, {}


VARIANTS = {"main": build_main, "handled": build_handled, "limits": build_limits,
            "examples": build_examples}

if __name__ == "__main__":
    prepare_files()
    application, options = VARIANTS[sys.argv[2]]()
    application.run("127.0.0.1", int(sys.argv[1]), worker_num=1, log_level="ERROR",
                    **options)
