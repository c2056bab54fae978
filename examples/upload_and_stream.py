"""Upload a file and get it streamed straight back, while it is still arriving.

The first file part of a multipart/form-data body is sent back as the response
body, with the part's Content-Type, piece by piece as it is read: the server never
holds more than one piece (64 KiB here) of it. Its SHA-256 is logged.

    python3 examples/upload_and_stream.py
    curl -F file=@README.md http://127.0.0.1:8000/upload

Many clients send the whole body before they read any of the answer, so a file
larger than what the connection's buffers hold (a few MiB) can stall until the
request times out; curl reads while it sends.
PORT=8080 serves on another port.
"""

import hashlib
import os

from tremolo import Tremolo
from tremolo.exceptions import BadRequest

app = Tremolo()


@app.route('/')
async def index(**server):
    return """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Echo a file</title></head><body>
<form method="post" action="/upload" enctype="multipart/form-data">
  <label>A file to get back <input name="file" type="file"></label>
  <button>Send (up to 16 MiB)</button>
</form></body></html>
"""


@app.route('/upload')
async def upload(request, response, logger, **server):
    if request.method != b'POST':
        raise BadRequest('POST a multipart/form-data body here')
    async for part in request.files(max_file_size=65536):
        if not part.get('filename'):
            continue  # a plain field, or an empty file input: skipped
        # the head is not sent yet: the answer can still take the part's type
        response.set_content_type(part.get('type') or 'application/octet-stream')
        digest = hashlib.sha256()
        async for data in part.stream():
            digest.update(data)
            yield data
        logger.info('streamed back %s (sha256 %s)', part['filename'], digest.hexdigest())
        return
    raise BadRequest('no file in the body')


if __name__ == '__main__':
    app.run('127.0.0.1', int(os.environ.get('PORT', 8000)),
            client_max_body_size=16 * 1048576)
