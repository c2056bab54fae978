"""Upload files (multipart/form-data), streamed to disk as they arrive, and download
them again.

The body is never held whole in memory: `request.files(max_file_size=...)` gives
each part in pieces of at most that size, each written out before the next is read.
A file is written under a temporary name and renamed once complete; an upload cut
short leaves nothing behind. Names are reduced to safe characters (`../../x` is
saved as `x`), and downloads are sent as attachments, so an uploaded page never
runs as one of this site's.

    python3 examples/upload_and_save.py       # saves into ./uploads (UPLOAD_DIR=...)
    curl -F file1=@README.md -F file2=@Makefile http://127.0.0.1:8000/upload
    curl -O -J http://127.0.0.1:8000/uploads/README.md

PORT=8080 serves on another port.
"""

import asyncio
import mimetypes
import os
import re
from urllib.parse import quote

from tremolo import Tremolo
from tremolo.exceptions import BadRequest, NotFound

app = Tremolo()

UPLOAD_DIR = os.path.abspath(os.environ.get('UPLOAD_DIR', 'uploads'))
SAFE_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]{0,99}')


def safe_name(filename):
    """A file name without a directory, made of safe characters, or None."""
    base = filename.replace('\\', '/').rsplit('/', 1)[-1]
    name = re.sub(r'[^A-Za-z0-9._-]+', '_', base).lstrip('._-')[:100]
    return name if SAFE_NAME.fullmatch(name) else None


@app.route('/')
async def index(**server):
    return """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Upload</title></head><body>
<form method="post" action="/upload" enctype="multipart/form-data">
  <label>First file <input name="file1" type="file"></label><br>
  <label>Second file <input name="file2" type="file"></label><br>
  <button>Save them (up to 100 MiB in all)</button>
</form></body></html>
"""


@app.route('/upload')
async def upload(request, **server):
    if request.method != b'POST':
        raise BadRequest('POST a multipart/form-data body here')
    os.makedirs(UPLOAD_DIR, exist_ok=True)
    saved = 0
    # each piece of a part is at most 64 KiB, whatever the size of the file
    async for part in request.files(max_file_size=65536):
        name = safe_name(part.get('filename') or '')
        if name is None:
            continue  # a plain field, or a file without a usable name
        path = os.path.join(UPLOAD_DIR, name)
        partial = path + '.uploading'
        size = 0
        try:
            with open(partial, 'wb') as f:
                async for data in part.stream():
                    # the disk may be slow: write in a thread, not on the event loop
                    await asyncio.to_thread(f.write, data)
                    size += len(data)
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):  # the client left before the end
                os.unlink(partial)
        saved += 1
        yield (f'<p>Saved <a href="/uploads/{quote(name)}">{name}</a> '
               f'({size} bytes).</p>\n')
    if not saved:
        yield '<p>No file was uploaded.</p>\n'


@app.route(r'^/uploads/(?P<name>[^/?]+)$')
async def download(response, name, **server):
    name = name.decode('latin-1')
    if safe_name(name) != name or not os.path.isfile(os.path.join(UPLOAD_DIR, name)):
        raise NotFound(f'no upload named {name}')
    response.set_header('Content-Disposition', f'attachment; filename="{name}"')
    response.set_header('X-Content-Type-Options', 'nosniff')
    content_type = mimetypes.guess_type(name)[0] or 'application/octet-stream'
    await response.sendfile(os.path.join(UPLOAD_DIR, name), content_type=content_type)


if __name__ == '__main__':
    app.run('127.0.0.1', int(os.environ.get('PORT', 8000)),
            client_max_body_size=100 * 1048576)
