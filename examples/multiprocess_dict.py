"""State shared by worker processes: a `multiprocessing.Manager` dict, handed to
every worker as an option of `app.run()` (any unknown option lands in
`globals.options`).

Each worker has its own memory, so a plain dict would be one per worker; a Manager
dict lives in a process of its own, and every worker talks to it. The handler is a
plain def: a Manager call blocks, so it runs in the thread pool instead of on the
event loop.

    python3 examples/multiprocess_dict.py         # 2 workers (WORKERS=4 for more)
    for i in 1 2 3 4 5 6; do curl http://127.0.0.1:8000/; done

Each new connection lands on one of the workers (SO_REUSEPORT), and each worker
counts its requests in the shared dict.
PORT=8080 serves on another port.
"""

import json
import multiprocessing
import os

from tremolo import Tremolo

app = Tremolo()


@app.route('/')
def hello(globals, content_type='application/json', **server):
    hits = globals.options['hits']
    lock = globals.options['hits_lock']
    me = str(os.getpid())
    with lock:  # a read and a write: two calls to the manager
        hits[me] = hits.get(me, 0) + 1
        seen = dict(hits)
    return json.dumps({'worker': me, 'hits': seen, 'workers_seen': len(seen)})


if __name__ == '__main__':
    with multiprocessing.Manager() as manager:
        app.run('127.0.0.1', int(os.environ.get('PORT', 8000)),
                worker_num=int(os.environ.get('WORKERS', 2)),
                hits=manager.dict(), hits_lock=manager.Lock())
