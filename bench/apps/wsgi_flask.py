"""Flask hello world (GET /hello) for tremolo, granian and gunicorn."""

from flask import Flask

app = Flask(__name__)


@app.get("/hello")
def hello() -> str:
    return "Hello world!"
