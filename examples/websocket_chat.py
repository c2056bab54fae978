"""A WebSocket chat room with an HTML page and vanilla JavaScript.

One handler serves both: a browser's GET gets the page, the page's WebSocket
request (same URL) joins the room. Every line a member sends reaches every member,
with the sender's name and the time; joining and leaving are announced, and a
newcomer first gets the last lines said.

    python3 examples/websocket_chat.py
    open http://127.0.0.1:8000/ in two browser tabs, or from a shell:
    python3 -m websockets 'ws://127.0.0.1:8000/?name=alice'

The room lives in the worker's memory: run it with one worker (as here).
PORT=8080 serves on another port.
"""

import asyncio
import collections
import json
import os
import time

from tremolo import Tremolo

app = Tremolo()

MEMBERS = set()
HISTORY = collections.deque(maxlen=20)

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>WebSocket Chat</title></head>
<body>
<h1>WebSocket Chat</h1>
<form id="form"><input id="message" autocomplete="off" autofocus />
<button>Send</button></form>
<ul id="messages"></ul>
<script>
const name = prompt('Your name?') || '';
const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const socket = new WebSocket(
    `${scheme}://${location.host}/?name=${encodeURIComponent(name)}`);
socket.onmessage = (event) => {
    const li = document.createElement('li');
    li.textContent = event.data;  // text, never HTML: members cannot inject markup
    messages.insertBefore(li, messages.firstChild);
};
document.getElementById('form').onsubmit = (event) => {
    event.preventDefault();
    socket.send(message.value);
    message.value = '';
};
</script>
</body></html>
"""


async def say(line):
    HISTORY.append(line)
    # each member's send waits for its own connection only; one that left is skipped
    await asyncio.gather(*(member.send(line) for member in list(MEMBERS)))


@app.route('/')
async def chat(request, websocket=None, **server):
    if websocket is None:
        return PAGE  # not an upgrade request: the page

    name = request.query.get('name', [''])[0].strip()[:20] or f'Guest{request.client[1]}'
    await websocket.accept()
    for line in HISTORY:
        await websocket.send(line)
    MEMBERS.add(websocket)
    await say(f'* {name} joined ({len(MEMBERS)} here)')
    try:
        async for message in websocket:  # ends when the member leaves
            if isinstance(message, str) and message.strip():
                await say(f'[{time.strftime("%H:%M:%S")}] {name}: {message[:1000]}')
    finally:
        MEMBERS.discard(websocket)
        await say(f'* {name} left')


@app.route('/members')
async def members(content_type='application/json', **server):
    return json.dumps({'members': len(MEMBERS)})


if __name__ == '__main__':
    app.run('127.0.0.1', int(os.environ.get('PORT', 8000)))
