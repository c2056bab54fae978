"""Serve a directory of static files from a native app, next to ordinary routes.

`StaticFiles` is a small request middleware you can copy into your project. It hands
each file to `response.sendfile()`, which answers conditional requests (ETag,
Last-Modified, If-None-Match, If-Modified-Since -> 304) and byte ranges (Range,
If-Range -> 206, multipart/byteranges, 416) and sends the file without copying it
through Python where it can. The middleware's own job is to map a URL to a file
without ever leaving the directory: percent-escapes are decoded first (`%2e%2e` is
`..`), a `.` or `..` segment is refused (403), a NUL is a bad request (400), dotfiles
are hidden, the path is built from its segments (`//etc/passwd` stays inside the
root) and a symlink whose target is outside the root is not served (404).

    python3 examples/static_files.py        # serves examples/public (STATIC_ROOT=...)
    curl -i http://127.0.0.1:8000/                   # public/index.html
    curl -i http://127.0.0.1:8000/hello.txt -H 'Range: bytes=0-4'
    curl -i http://127.0.0.1:8000/hello.txt -H 'If-None-Match: "<the ETag above>"'
    curl -i --path-as-is http://127.0.0.1:8000/../static_files.py    # 403
    curl -i http://127.0.0.1:8000/api/time           # a route beside the files

PORT=8080 serves on another port.
"""

import mimetypes
import os
import time
from urllib.parse import quote, unquote_to_bytes

from tremolo import Tremolo
from tremolo.exceptions import BadRequest, Forbidden


class StaticFiles:
    """Serves the files under `root` at the URL path `prefix` (GET and HEAD).

    A path that names no file falls through to the application's routes (and so to
    its 404). `max_age` adds a Cache-Control field.
    """

    def __init__(self, app, root, prefix='/', *, index='index.html', max_age=0,
                 priority=999):
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise ValueError(f'{root!r} is not a directory')
        self.prefix = prefix.rstrip('/').encode() + b'/'
        self.index = index
        self.max_age = max_age
        app.add_middleware(self.serve, 'request', priority=priority)

    def locate(self, path):
        """The real path of what `path` (the URL path below the prefix, still
        percent-encoded) names inside the root, with its segments; None when it
        names nothing that may be served. Raises on a request that tries to leave."""
        raw = unquote_to_bytes(path)
        if b'\0' in raw:
            raise BadRequest('NUL in path')
        try:
            segments = [s for s in raw.decode('utf-8').split('/') if s]
        except UnicodeDecodeError:
            return None
        if any(s in ('.', '..') or '\\' in s for s in segments):
            raise Forbidden('path traversal is not allowed')
        if any(s.startswith('.') for s in segments):
            return None  # dotfiles (.git, .env, ...) are not published
        # joined segment by segment: an absolute path cannot replace the root
        real = self.inside(os.path.join(self.root, *segments))
        return None if real is None else (real, segments)

    def inside(self, path):
        """`path` with every symlink resolved, if that is still inside the root."""
        real = os.path.realpath(path)
        return real if os.path.commonpath([real, self.root]) == self.root else None

    async def serve(self, request, response, **server):
        if request.method not in (b'GET', b'HEAD'):
            return None
        path = request.path
        if not (path + b'/').startswith(self.prefix):
            return None
        found = self.locate(path[len(self.prefix) - 1:])
        if found is None:
            return None
        real, segments = found
        if os.path.isdir(real):
            if not self.index:
                return None
            if not path.endswith(b'/'):
                # /docs -> /docs/, so that the page's relative links work; built
                # from the checked segments (`//evil.example` must not be a Location)
                url = self.prefix + b''.join(quote(s).encode() + b'/' for s in segments)
                if request.query_string:
                    url += b'?' + request.query_string
                raise response.redirect(url, code=301)
            real = self.inside(os.path.join(real, self.index))
        elif path.endswith(b'/'):
            return None  # a file is not a directory: /hello.txt/ is not /hello.txt
        if real is None or not os.path.isfile(real):
            return None
        content_type, encoding = mimetypes.guess_type(real)
        if content_type is None or encoding is not None:
            content_type = 'application/octet-stream'  # .gz and such: bytes as they are
        elif content_type.startswith('text/'):
            content_type += '; charset=utf-8'
        if self.max_age:
            response.set_header('Cache-Control', f'public, max-age={self.max_age}')
        # The real path is checked and opened a moment apart: do not serve a
        # directory that people you do not trust can write to.
        await response.sendfile(real, content_type=content_type)
        return True


app = Tremolo()
StaticFiles(app, os.environ.get('STATIC_ROOT') or os.path.join(os.path.dirname(__file__),
                                                                'public'), max_age=60)


@app.route('/api/time')
async def now(content_type='text/plain; charset=utf-8', **server):
    # a keyword default is a route option: here the Content-Type of the answer
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


if __name__ == '__main__':
    app.run('127.0.0.1', int(os.environ.get('PORT', 8000)))
