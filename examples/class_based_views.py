"""Class-based views: a class whose methods are named after HTTP methods (`get`,
`post`, ...) handles a path. Each request gets a new instance, made with the route's
options, so one class can serve two paths differently. An instance (one object for
every request) works too. A method the class does not have is a 405 with an Allow
field; HEAD is served by `get`.

    python3 examples/class_based_views.py
    curl -d 'buy milk' http://127.0.0.1:8000/notes          # 201
    curl http://127.0.0.1:8000/notes
    curl http://127.0.0.1:8000/shared/notes                 # the same notes, read-only:
    curl -d 'x' http://127.0.0.1:8000/shared/notes          # 403
    curl -X PUT -i http://127.0.0.1:8000/notes              # 405, Allow: DELETE, GET, HEAD, POST
    curl http://127.0.0.1:8000/uptime

PORT=8080 serves on another port.
"""

import os
import threading
import time

from tremolo import Tremolo
from tremolo.exceptions import BadRequest, Forbidden

app = Tremolo()


class Notes:
    """A list of notes. `store` and `readonly` come from the route's options."""

    def __init__(self, store, readonly=False, **options):
        self.store = store
        self.readonly = readonly

    def check(self):
        if self.readonly:
            raise Forbidden('these notes are read-only here')

    async def get(self, content_type='text/plain', **server):
        return ''.join(f'{i}. {note}\n' for i, note in enumerate(self.store, 1))

    async def post(self, request, response, **server):
        self.check()
        note = (await request.body()).decode('utf-8', 'replace').strip()
        if not note or len(note) > 200:
            raise BadRequest('a note is 1 to 200 characters')
        self.store.append(note)
        response.set_status(201)
        response.set_header('Location', '/notes')
        return f'note {len(self.store)} added\n'

    async def delete(self, response, **server):
        self.check()
        self.store.clear()
        response.set_status(204)
        return b''


class Uptime:
    def __init__(self):
        self.started = time.monotonic()
        self.hits = 0
        self.lock = threading.Lock()

    # a plain def: it runs in the thread pool, so it may block; one object serves
    # every request, so what it changes needs a lock
    def get(self, **server):
        with self.lock:
            self.hits += 1
            return f'up {time.monotonic() - self.started:.0f}s, {self.hits} request(s)\n'


NOTES = []
app.add_route(Notes, '/notes', store=NOTES)
app.add_route(Notes, '/shared/notes', store=NOTES, readonly=True)
app.add_route(Uptime(), '/uptime')


if __name__ == '__main__':
    app.run('127.0.0.1', int(os.environ.get('PORT', 8000)))
