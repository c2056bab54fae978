"""Server-Sent Events: notifications pushed to each browser session.

GET / gives a page and a session cookie. The page listens to /notifications (an
event stream, `text/event-stream`); a login attempt (POST /login) notifies that
session only, GET /ping notifies every session that listens.

    python3 examples/sse_notifications.py
    open http://127.0.0.1:8000/ (the password is 'tremolo'), or from a shell:
    curl -c jar -s http://127.0.0.1:8000/ -o /dev/null
    curl -b jar -N http://127.0.0.1:8000/notifications &
    curl -b jar -d password=tremolo http://127.0.0.1:8000/login
    curl http://127.0.0.1:8000/ping

Sessions live in the worker's memory: run it with one worker (as here).
PORT=8080 serves on another port.
"""

import asyncio
import json
import os

from tremolo import Tremolo
from tremolo.exceptions import Forbidden

app = Tremolo()

LISTENERS = {}  # session -> the queue of its event stream

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SSE notifications</title>
<style>
  #box { position: fixed; right: 1em; bottom: 1em; display: flex;
         flex-direction: column; gap: .5em; }
  #box div { color: white; padding: .5em; transition: opacity .4s; }
  .message { background: green; } .error { background: firebrick; }
</style></head>
<body>
<p>The password is 'tremolo'.</p>
<form id="login"><input name="password" type="password" /><button>Login</button></form>
<button onclick="fetch('/ping')">Ping everyone</button>
<div id="box"></div>
<script>
const form = document.getElementById('login');
form.onsubmit = (event) => {
    event.preventDefault();
    fetch('/login', {method: 'POST', body: new URLSearchParams(new FormData(form))});
    form.reset();
};
new EventSource('/notifications').addEventListener('notify', (event) => {
    const data = JSON.parse(event.data);
    const note = document.createElement('div');
    note.textContent = data.text;
    note.className = data.class;
    document.getElementById('box').appendChild(note);
    setTimeout(() => note.style.opacity = 0, 1500);
    setTimeout(() => note.remove(), 2000);
});
</script>
</body></html>
"""


def session_of(request):
    session = request.cookies.get('session', [''])[0]
    return session if len(session) == 64 and session.isalnum() else None


def notify(queue, text, kind='message'):
    if queue.full():
        queue.get_nowait()  # a listener that falls behind loses its oldest note
    queue.put_nowait({'text': text, 'class': kind})


@app.route('/')
async def index(request, response, **server):
    if session_of(request) is None:
        response.set_cookie('session', request.uid(32).hex(), expires=3600,
                            httponly=True, samesite='Strict')
    return PAGE


@app.route('/notifications')
async def notifications(request, sse=None, **server):
    session = session_of(request)
    if session is None:
        raise Forbidden('no session: GET / first')
    queue = asyncio.Queue(16)
    LISTENERS[session] = queue  # a new stream of a session replaces the old one
    try:
        notify(queue, 'listening')
        while True:
            note = await queue.get()
            await sse.send(json.dumps(note), event='notify')
    finally:
        # the client left (the handler is cancelled) or the server stops
        if LISTENERS.get(session) is queue:
            del LISTENERS[session]


@app.route('/login')
async def login(request, content_type='text/plain', **server):
    form = await request.form()
    queue = LISTENERS.get(session_of(request))
    if queue is None:
        raise Forbidden('open /notifications first')
    if form.get('password') == ['tremolo']:
        notify(queue, 'correct password')
        return 'welcome\n'
    notify(queue, 'incorrect password', 'error')
    return 'try again\n'


@app.route('/ping')
async def ping(content_type='text/plain', **server):
    for queue in LISTENERS.values():
        notify(queue, 'ping!')
    return f'ping to {len(LISTENERS)} listener(s)\n'


if __name__ == '__main__':
    # an event stream is a long answer: let it run for 10 minutes (EventSource
    # reconnects by itself when it ends)
    app.run('127.0.0.1', int(os.environ.get('PORT', 8000)), app_handler_timeout=600)
