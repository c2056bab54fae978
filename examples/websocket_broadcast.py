"""WebSocket broadcast: one message reaches every connected client.

Clients connect to /ws. A message one of them sends, or one POSTed to /publish,
goes to all of them (the sender included). Each client has its own bounded queue
and its own writer task: a client that does not read loses its oldest messages
instead of slowing the others down, and memory stays bounded.

    python3 examples/websocket_broadcast.py
    python3 -m websockets ws://127.0.0.1:8000/ws        # in two or three terminals
    curl -d 'hello, everyone' http://127.0.0.1:8000/publish

Clients live in the worker's memory: run it with one worker (as here).
PORT=8080 serves on another port.
"""

import asyncio
import os

from tremolo import Tremolo
from tremolo.exceptions import UpgradeRequired

app = Tremolo()

QUEUE_SIZE = 64
CLIENTS = set()  # one queue per connected client


def publish(message):
    """Hands `message` to every client's queue; returns how many it reached."""
    for queue in CLIENTS:
        if queue.full():
            queue.get_nowait()  # a client that falls behind loses its oldest message
        queue.put_nowait(message)
    return len(CLIENTS)


async def forward(queue, websocket):
    while True:
        await websocket.send(await queue.get())


@app.route('/ws')
async def ws(websocket=None, **server):
    if websocket is None:
        raise UpgradeRequired('connect with a WebSocket client', upgrade='websocket')
    await websocket.accept()
    queue = asyncio.Queue(QUEUE_SIZE)
    CLIENTS.add(queue)
    writer = asyncio.create_task(forward(queue, websocket))
    try:
        async for message in websocket:  # ends when the client closes
            publish(message)
    finally:
        CLIENTS.discard(queue)
        writer.cancel()


@app.route('/publish')
async def publish_http(request, content_type='text/plain', **server):
    message = (await request.body()).decode('utf-8', 'replace')
    return f'sent to {publish(message)} client(s)\n'


if __name__ == '__main__':
    app.run('127.0.0.1', int(os.environ.get('PORT', 8000)))
