"""URL redirections: by hand, with `response.redirect()`, after a POST (303), for
moved paths (308, the query kept), and from a `?next=` parameter without becoming an
open redirect.

    python3 examples/url_redirections.py
    curl -i http://127.0.0.1:8000/example            # 301, set by hand
    curl -i http://127.0.0.1:8000/redirect           # 301, response.redirect()
    curl -i -d name=ada http://127.0.0.1:8000/signup # 303 See Other -> /welcome
    curl -i 'http://127.0.0.1:8000/old/a/b?x=1'      # 308 -> /new/a/b?x=1
    curl -i 'http://127.0.0.1:8000/go?next=/welcome' # 302 -> /welcome
    curl -i 'http://127.0.0.1:8000/go?next=//evil.example/'   # 302 -> / (not followed)
    curl -iL http://127.0.0.1:8000/redirect          # -L follows them

PORT=8080 serves on another port.
"""

import os

from tremolo import Tremolo
from tremolo.exceptions import MethodNotAllowed

app = Tremolo()


@app.route('/example')
async def by_hand(response, **server):
    # a redirection is a status and a Location field, with an empty body
    response.set_status(301, 'Moved Permanently')
    response.set_header('Location', 'http://example.com/')
    return ''


@app.route('/redirect')
async def with_helper(response, **server):
    # or the helper: it returns a tremolo.exceptions.HTTPRedirect, to raise
    raise response.redirect('http://example.com/', code=301)


@app.route('/signup')
async def signup(request, response, **server):
    if request.method != b'POST':
        raise MethodNotAllowed(allow='POST')
    await request.form()
    # 303: the client GETs the new place (a reload does not post the form again)
    raise response.redirect('/welcome', code=303)


@app.route('/welcome')
async def welcome(content_type='text/plain', **server):
    return 'Welcome!\n'


@app.route(r'^/old/(?P<rest>[^?]*)$')
async def moved(request, response, rest, **server):
    # 308 (and 307) keep the method and the body; 301 and 302 may turn a POST into GET
    target = b'/new/' + rest
    if request.query_string:
        target += b'?' + request.query_string
    raise response.redirect(target, code=308)


@app.route(r'^/new/')
async def new(request, content_type='text/plain', **server):
    return b'the new place: ' + request.url + b'\n'


def local_only(url):
    """`url` when it is a path on this site, else '/'. `//host` and `/\\host` are
    other sites to a browser."""
    if url.startswith('/') and not url.startswith(('//', '/\\')) \
            and not any(c < ' ' for c in url):
        return url
    return '/'


@app.route('/go')
async def go(request, response, **server):
    raise response.redirect(local_only(request.query.get('next', ['/'])[0]))


@app.route('/')
async def index(content_type='text/plain', **server):
    return 'Try /example, /redirect, /signup (POST), /old/x, /go?next=/welcome\n'


if __name__ == '__main__':
    app.run('127.0.0.1', int(os.environ.get('PORT', 8000)))
