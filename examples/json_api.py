"""A small JSON API: class-based views, a regex route, and error handlers that
answer every error as JSON (`{"error": {"status": 404, "message": "..."}}`).

Handlers raise `tremolo.exceptions` (BadRequest, NotFound, ...); the `@app.error`
handlers turn them into JSON, including the 404 of an unknown path, the 405 of a
method a view does not have (its Allow field is kept), the 413 of a chunked body
that grows past client_max_body_size, and a bug (a 500 that does not show the bug's
message). A Content-Length over client_max_body_size is refused by the server itself
before any handler runs (413, text).

    python3 examples/json_api.py
    curl -s http://127.0.0.1:8000/books
    curl -s http://127.0.0.1:8000/books -H 'Content-Type: application/json' \\
         -d '{"title": "Dune", "author": "Frank Herbert", "year": 1965}'
    curl -s http://127.0.0.1:8000/books/1
    curl -s -X PUT http://127.0.0.1:8000/books/1 -H 'Content-Type: application/json' \\
         -d '{"title": "Dune", "author": "F. Herbert"}'
    curl -s -X DELETE http://127.0.0.1:8000/books/1 -o /dev/null -w '%{http_code}\\n'
    curl -s http://127.0.0.1:8000/books/99                      # 404 as JSON
    curl -s http://127.0.0.1:8000/books -d 'not json'           # 415 as JSON
    curl -s -X PATCH http://127.0.0.1:8000/books                # 405 as JSON

The books live in the worker's memory: with more than one worker each has its own.
PORT=8080 serves on another port.
"""

import itertools
import json
import os

from tremolo import Tremolo
from tremolo.exceptions import BadRequest, HTTPException, NotFound

app = Tremolo()

BOOKS = {}
IDS = itertools.count(1)


def as_json(response, data, status=200):
    response.set_status(status)
    response.set_content_type('application/json')
    return json.dumps(data)


async def read_book(request):
    """The book in a request's JSON body, checked field by field."""
    kind = request.content_type.split(b';')[0].strip().lower()
    if kind != b'application/json':
        raise HTTPException('send the book as application/json', code=415,
                            message='Unsupported Media Type')
    data = await request.json()  # BadRequest when it is not JSON
    if not isinstance(data, dict):
        raise BadRequest('a book is a JSON object')
    book = {}
    for name in ('title', 'author'):
        value = data.get(name)
        if not isinstance(value, str) or not 0 < len(value.strip()) <= 200:
            raise BadRequest(f'"{name}" must be a non-empty string')
        book[name] = value.strip()
    year = data.get('year')
    if year is not None and (type(year) is not int or not 0 < year < 3000):
        raise BadRequest('"year" must be a whole number')
    book['year'] = year
    return book


def find(book_id):
    try:
        return BOOKS[int(book_id)]
    except KeyError:
        raise NotFound(f'no book {int(book_id)}') from None


@app.route('/books')
class Books:
    async def get(self, request, response, **server):
        author = request.query.get('author', [None])[0]
        books = [b for b in BOOKS.values() if author in (None, b['author'])]
        return as_json(response, {'books': books})

    async def post(self, request, response, **server):
        book = {'id': next(IDS), **await read_book(request)}
        BOOKS[book['id']] = book
        response.set_header('Location', f'/books/{book["id"]}')
        return as_json(response, book, 201)


@app.route(r'^/books/(?P<book_id>\d{1,9})$')
class Book:
    # `book_id` is the regex group, as bytes
    async def get(self, response, book_id, **server):
        return as_json(response, find(book_id))

    async def put(self, request, response, book_id, **server):
        book = find(book_id)
        book.update(await read_book(request))
        return as_json(response, book)

    async def delete(self, response, book_id, **server):
        del BOOKS[find(book_id)['id']]
        response.set_status(204)
        return b''


@app.route('/bug')
async def bug(**server):
    raise KeyError('a secret the client must not see')


# 400, 404 and 405 have default handlers of their own, so each gets one here;
# every other status (403, 413, 415, 500, ...) falls back to the 500 handler.
@app.error(400)
@app.error(404)
@app.error(405)
@app.error(500)
async def json_error(request, response, exc, **server):
    # a bug arrives as an InternalServerError whose __cause__ is the bug: its text
    # is for the log, not for the client
    message = exc.message if exc.code >= 500 else (str(exc) or exc.message)
    # the status was set from the exception already; the Content-Type is ours
    response.set_content_type('application/json')
    return json.dumps({'error': {'status': exc.code, 'message': message}})


if __name__ == '__main__':
    app.run('127.0.0.1', int(os.environ.get('PORT', 8000)), client_max_body_size=65536)
