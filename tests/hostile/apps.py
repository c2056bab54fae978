"""The same small application for each interface, as the hostile suite serves it:
`/` a short answer, `/big` 8 MiB in one piece (made for each request), `/upload` an
answer given before the request body is read, `/read` an answer given after reading
the whole body (ASGI: or after the client left)."""

NATIVE = '''
from tremolo import Tremolo

app = Tremolo()
SIZE = 8 << 20


@app.route("/")
async def hello(**server):
    return b"hello"


@app.route("/big")
async def big(**server):
    return b"x" * SIZE  # each answer its own memory, as an application's would be


@app.route("/upload")
async def upload(**server):
    return b"early"


@app.route("/read")
async def read(request, **server):
    return b"%d" % len(await request.body())
'''

ASGI = '''
SIZE = 8 << 20


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/read":
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break  # and answers all the same, as many applications do
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"%d" % size
    else:
        body = {"/big": b"x" * SIZE, "/upload": b"early"}.get(path, b"hello")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
'''

# Flask: its responses are iterables that are not lists, with a Content-Length, as
# most WSGI frameworks send them
WSGI = '''
from flask import Flask, request

app = Flask(__name__)
SIZE = 8 << 20


@app.route("/")
def hello():
    return b"hello"


@app.route("/big")
def big():
    return b"x" * SIZE  # each answer its own memory, as an application's would be


@app.route("/upload", methods=["GET", "POST"])
def upload():
    return b"early"


@app.route("/read", methods=["POST"])
def read():
    return b"%d" % len(request.get_data())
'''

APPS = {"native": NATIVE, "asgi": ASGI, "wsgi": WSGI}
