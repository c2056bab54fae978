"""The metrics endpoint's small HTTP/1.1 server: one request per connection, read by
the core's parser and answered by its encoder (the same rules as every other request:
a malformed one is refused as the server refuses it), driven by `poll()` from a
selector rather than an event loop, since the master has none."""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import time
from collections.abc import Callable

from .. import _core, logs
from ..config import ConfigError
from ..sockets import bind

#: a scrape's request head may be this long, and take this long to come
MAX_REQUEST = 8192
REQUEST_TIMEOUT = 5.0
#: connections held at once; one more takes the place of the oldest still sending its
#: request after EVICT_AFTER (idle connections cannot keep a scrape out), or waits in
#: the listening socket's queue (costing the process no descriptor) meanwhile
MAX_CLIENTS = 8
#: how long a connection is held before a newer one may take its place: a flood of
#: connections cycles through the slots at most MAX_CLIENTS / EVICT_AFTER a second
#: (each accepted and closed costs the process that serves the endpoint), and one
#: whose request came while the process was busy is read before it could be evicted
EVICT_AFTER = 0.05
#: out of descriptors (EMFILE, ENFILE...), the endpoint stops accepting this long
#: instead of trying again at once (the socket stays readable: that was a busy loop)
ACCEPT_PAUSE = 0.5
#: seconds between two warnings that the endpoint paused
WARN_EVERY = 60.0
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
_TEXT = b"text/plain; charset=utf-8"

logger = logging.getLogger(logs.SERVER)


def _parser() -> _core.RequestParser:
    # (a body is never read: the answer goes once the head is in, and the
    # connection closes; one declared is let be, as before, up to this much)
    return _core.RequestParser(max_request_line=MAX_REQUEST, max_header_size=MAX_REQUEST,
                               max_body_size=MAX_REQUEST)


def respond(head: _core.RequestHead | _core.HTTPParseError, render: Callable[[], str]
            ) -> bytes:
    """The whole answer to a scrape's request (or to what the parser refused), and the
    connection closes after it."""
    http10 = False
    if isinstance(head, _core.HTTPParseError):
        status, fields, body = head.status, [(b"Content-Type", _TEXT)], head.answer.encode()
        method = b"GET"
    else:
        method, http10 = head.method, head.version == "1.0"
        status, fields, body = _answer(method, head.path, render)
    date = _core.http_date(time.time())
    return _core.encode_response(status, fields, body, False, http10, date, b"",
                                 head_only=method == b"HEAD")[0]


def _answer(method: bytes, path: bytes, render: Callable[[], str]
            ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    if path != b"/metrics":
        return 404, [(b"Content-Type", _TEXT)], b"the metrics are at /metrics\n"
    if method not in (b"GET", b"HEAD"):
        return 405, [(b"Content-Type", _TEXT), (b"Allow", b"GET, HEAD")], b"GET /metrics\n"
    return 200, [(b"Content-Type", CONTENT_TYPE)], render().encode()


class _Client:
    """One connection: its deadline, its parser, and the answer still to send (None
    while its request is coming)."""

    __slots__ = ("answer", "deadline", "evictable", "parser")

    def may_make_way(self, now: float) -> bool:
        """Still sending its request, and held long enough to give its place up."""
        return self.answer is None and now >= self.evictable

    def __init__(self) -> None:
        now = time.monotonic()
        self.deadline = now + REQUEST_TIMEOUT
        self.evictable = now + EVICT_AFTER
        self.parser = _parser()
        self.answer: bytes | None = None


class Endpoint:
    """A small HTTP/1.1 server for scrapes, driven by `poll()` (the master's watch
    loop calls it when its selector is readable and after every wait; a
    single-process server's event loop does the same). Every connection answers one
    request and closes; a head longer than MAX_REQUEST is refused as the server
    refuses one (431), one slower than REQUEST_TIMEOUT is dropped. At most
    MAX_CLIENTS at once: a new one takes the place of the oldest that has not sent
    its whole request, once it is EVICT_AFTER old and what it sent is read (80 idle
    connections held for REQUEST_TIMEOUT each used to keep scrapes out for a minute);
    the listening socket leaves the selector while none can make way, and for
    ACCEPT_PAUSE when the process is out of descriptors."""

    def __init__(self, address: tuple[str, int], render: Callable[[], str]) -> None:
        self.render = render
        try:
            self.sock = bind(address[0], address[1], reuse_port=False, backlog=64)
        except OSError as exc:
            raise ConfigError(f"metrics: cannot listen on {address[0]}:{address[1]}: "
                              f"{exc.strerror or exc}", "metrics") from None
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.sock, selectors.EVENT_READ, None)
        self.clients: dict[socket.socket, _Client] = {}
        self.accepting = True
        #: when accepting may start again after running out of descriptors
        self.paused_until = 0.0
        self.warned = -WARN_EVERY

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def url(self) -> str:
        """HOST:PORT as bound (the port a `:0` was given), IPv6 in brackets."""
        host, port = self.sock.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def fileno(self) -> int:
        return self.selector.fileno()

    def poll(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            if key.data is None:
                self._accept()
            else:
                self._serve(key.fileobj)  # type: ignore[arg-type]
        now = time.monotonic()
        for sock, client in list(self.clients.items()):
            if now > client.deadline:
                self._drop(sock)
        accept = self._room() and now >= self.paused_until
        if accept != self.accepting:
            self.accepting = accept
            if accept:
                self.selector.register(self.sock, selectors.EVENT_READ, None)
            else:
                self.selector.unregister(self.sock)

    def due(self, now: float) -> float:
        """How soon `poll()` has something to do by the clock: a connection to drop,
        or one old enough to make way while more wait to be accepted."""
        dues = [c.deadline for c in self.clients.values()]
        if not self.accepting:
            # (not before accepting may start again, out of descriptors: a wait of
            # zero each turn was the busy loop the pause is there to prevent)
            dues += [max(c.evictable, self.paused_until) for c in self.clients.values()
                     if c.answer is None]
        return max(min(dues, default=now + 60.0) - now, 0.0)

    def _room(self) -> bool:
        """Whether a new connection can be held: under MAX_CLIENTS, or one of those
        held may make way (see _make_way)."""
        if len(self.clients) < MAX_CLIENTS:
            return True
        now = time.monotonic()
        return any(c.may_make_way(now) for c in self.clients.values())

    def _make_way(self) -> None:
        """Drops the oldest connection that may make way, once what it did send is
        read (a request that came while the process was busy is answered, not
        dropped: answering it may be what makes room)."""
        now = time.monotonic()
        for sock, client in list(self.clients.items()):
            if client.may_make_way(now):
                self._serve(sock)  # (what waits in its socket, read now)
                if sock in self.clients and self.clients[sock].answer is None:
                    self._drop(sock)
                    return

    def _accept(self) -> None:
        while self._room():
            try:
                sock, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # gone before it was accepted
            except OSError as exc:
                # out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM):
                # the socket stays readable, so trying again at once would spin
                now = time.monotonic()
                self.paused_until = now + ACCEPT_PAUSE
                if now - self.warned >= WARN_EVERY:
                    self.warned = now
                    logger.warning("metrics: cannot accept a scrape (%s); pausing for "
                                   "%gs", errno.errorcode.get(exc.errno or 0, exc),
                                   ACCEPT_PAUSE)
                return
            if len(self.clients) >= MAX_CLIENTS:
                self._make_way()
            if len(self.clients) >= MAX_CLIENTS:
                sock.close()  # (those that could make way were answered, and stay)
                return
            sock.setblocking(False)
            self.clients[sock] = _Client()
            self.selector.register(sock, selectors.EVENT_READ, True)

    def _serve(self, sock: socket.socket) -> None:
        client = self.clients.get(sock)
        if client is None:
            return
        try:
            if client.answer is None:
                data = sock.recv(4096)
                if not data:
                    self._drop(sock)
                    return
                request = self._request(client, data)
                if request is None:
                    return
                client.answer = respond(request, self.render)
                self.selector.modify(sock, selectors.EVENT_WRITE, True)
            sent = sock.send(client.answer)
            client.answer = client.answer[sent:]
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(sock)
            return
        if not client.answer:
            self._drop(sock)

    @staticmethod
    def _request(client: _Client, data: bytes
                 ) -> _core.RequestHead | _core.HTTPParseError | None:
        """The request (or why the parser refused it) once its head is whole."""
        for event in client.parser.feed(data):
            if isinstance(event, _core.RequestHead | _core.HTTPParseError):
                return event
        return None

    def _drop(self, sock: socket.socket) -> None:
        self.clients.pop(sock, None)
        self.selector.unregister(sock)
        sock.close()

    def closeables(self) -> list[socket.socket | selectors.BaseSelector]:
        """What a forked worker must close: the listening socket, the selector, the
        scrapes in progress."""
        return [self.sock, self.selector, *self.clients]

    def close(self) -> None:
        for sock in list(self.clients):
            self._drop(sock)
        self.selector.close()
        self.sock.close()
