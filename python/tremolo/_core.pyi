"""Type stubs for the extension module tremolo._core (rust/src/py)."""

from collections.abc import Callable, Iterable
from typing import Any, Self, TypeAlias, final

from typing_extensions import disjoint_base

__all__ = [
    "RUNNING",
    "AsgiHandle",
    "CycleCore",
    "ExchangeCore",
    "FlowCore",
    "Frame",
    "HTTPParseError",
    "PlainRoutes",
    "ProtocolCore",
    "Proxies",
    "RequestCall",
    "RequestCore",
    "RequestHead",
    "RequestParser",
    "RequestTask",
    "ResponseCore",
    "ResponseEncodeError",
    "Signal",
    "StateCore",
    "TokenBucket",
    "WebSocketCodec",
    "WebSocketError",
    "WsgiCycleCore",
    "WsgiHandle",
    "WsgiPool",
    "__version__",
    "encode_chunk",
    "encode_head",
    "encode_response",
    "http_date",
    "last_chunk",
    "proxy_header",
    "reason_phrase",
    "signal",
    "ws_accept",
    "ws_frame",
    "ws_negotiate",
    "wsgi_head",
]

__version__: str

class HTTPParseError(Exception):
    """A request the parser refused; answer with `status` and the body `answer`,
    then close. `reason` is the precise account, for logs."""

    status: int
    reason: str
    answer: str

class ResponseEncodeError(ValueError):
    """A response the encoder refused to write (bad status, control character)."""

@final
class RequestHead:
    @property
    def method(self) -> bytes: ...
    @property
    def target(self) -> bytes: ...
    @property
    def path(self) -> bytes: ...
    @property
    def version(self) -> str: ...
    @property
    def headers(self) -> list[tuple[bytes, bytes]]: ...
    def scope(self, base: dict[str, Any], asgi: dict[str, Any], state: dict[str, Any],
              extensions: dict[str, Any], proxies: Proxies | None = None
              ) -> dict[str, Any]: ...
    def environ(self, base: dict[str, Any], root: str, proxies: Proxies | None = None
                ) -> dict[str, Any]: ...
    def forwarded(self, proxies: Proxies, peer: tuple[str, int] | None, scheme: str
                  ) -> tuple[tuple[str, int] | None, str, str | None]: ...
    def get(self, name: bytes) -> bytes | None: ...
    def get_all(self, name: bytes) -> list[bytes]: ...
    @property
    def raw(self) -> bytes: ...
    @property
    def keep_alive(self) -> bool: ...
    @property
    def expect_continue(self) -> bool: ...
    @property
    def upgrade(self) -> bool: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def chunked(self) -> bool: ...
    @property
    def has_body(self) -> bool: ...
    def info(self) -> tuple[bytes, bool, bool, bool, bool, bool]: ...
    def respond(self, status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes,
                keep_alive: bool, date: bytes, server: bytes, reason: bytes | None = None
                ) -> tuple[bytes, bool]: ...

@final
class Proxies:
    """The trusted proxies, and whether their word is RFC 7239 Forwarded."""
    def __new__(cls, networks: list[tuple[str, int]], *, everyone: bool = False,
                rfc7239: bool = False) -> Proxies: ...
    def __call__(self, peer: str | None) -> bool: ...

_Event: TypeAlias = RequestHead | bytes | list[tuple[bytes, bytes]] | HTTPParseError | None

@final
class RequestParser:
    def __new__(
        cls,
        *,
        max_request_line: int = 8192,
        max_header_size: int = 8192,
        max_headers: int = 100,
        max_body_size: int = 2097152,
        max_chunk_line: int = 1024,
    ) -> Self: ...
    def feed(self, data: bytes) -> list[_Event]: ...
    def feed_request(self, data: bytes) -> RequestHead | list[_Event]: ...
    @property
    def max_body_size(self) -> int: ...
    @max_body_size.setter
    def max_body_size(self, value: int) -> None: ...
    @property
    def paused(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def idle(self) -> bool: ...
    def resume(self) -> list[_Event]: ...
    def take_buffered(self) -> bytes: ...

@final
class TokenBucket:
    def __new__(cls, rate: float, burst: float, now: float) -> Self: ...
    def take(self, want: int, now: float) -> tuple[int, float]: ...
    def available(self, now: float) -> int: ...
    @property
    def rate(self) -> float: ...
    @property
    def burst(self) -> float: ...

_Field = tuple[bytes | bytearray, bytes | bytearray] | list[bytes | bytearray]

def wsgi_head(status: str, headers: Iterable[tuple[str, str]]
              ) -> tuple[int, bytes | None, list[tuple[bytes, bytes]], int | None]:
    """start_response's arguments as the encoder takes them: see rust/src/py/wsgi.rs."""

def encode_response(
    status: int,
    headers: Iterable[_Field],
    body: bytes,
    keep_alive: bool,
    http10: bool,
    date: bytes,
    server: bytes,
    reason: bytes | None = None,
    head_only: bool = False,
) -> tuple[bytes, bool]: ...
def encode_head(
    status: int,
    headers: Iterable[_Field],
    content_length: int | None,
    chunked: bool,
    keep_alive: bool,
    http10: bool,
    date: bytes,
    server: bytes,
    reason: bytes | None = None,
) -> tuple[bytes, bool]: ...
def encode_chunk(data: bytes) -> bytes: ...
def last_chunk(trailers: list[tuple[bytes, bytes]] | None = None) -> bytes: ...
def http_date(unix_time: float) -> bytes: ...
def reason_phrase(code: int) -> str: ...

class WebSocketError(Exception):
    """A client broke the WebSocket protocol or passed a limit; close with `close_code`."""

    close_code: int
    reason: str

@final
class Frame:
    @property
    def opcode(self) -> int: ...
    @property
    def data(self) -> bytes: ...
    @property
    def fin(self) -> bool: ...
    @property
    def code(self) -> int | None: ...
    @property
    def reason(self) -> str: ...

_Buffer: TypeAlias = bytes | bytearray | memoryview | str
_WSEvent: TypeAlias = str | bytes | Frame | WebSocketError
_Deflate: TypeAlias = tuple[bool, bool, int, int]

@final
class WebSocketCodec:
    def __new__(cls, max_message_size: int, deflate: _Deflate | None = None) -> Self: ...
    def feed(self, data: bytes, room: int | None = None
             ) -> tuple[list[_WSEvent], bytes | None]: ...
    def feed_into(self, data: bytes, room: int, queue: Any
                  ) -> tuple[bytes | None, int, int, Frame | WebSocketError | None]: ...
    def send(self, data: _Buffer, opcode: int | None = None, fin: bool = True) -> bytes: ...
    def close(self, code: int | None = ..., reason: str = "") -> bytes: ...
    @property
    def held(self) -> int: ...
    @property
    def close_sent(self) -> bool: ...
    @property
    def close_received(self) -> bool: ...

def ws_accept(key: bytes) -> str | None: ...
def ws_negotiate(values: list[bytes], window_bits: int = ...) -> tuple[str, _Deflate] | None: ...
def ws_frame(payload: _Buffer, opcode: int, fin: bool = True, mask: bytes | None = None
             ) -> bytes: ...

_Address: TypeAlias = tuple[str, int]

def proxy_header(data: bytes, accept: str
                 ) -> tuple[int, tuple[_Address, _Address] | None] | None: ...

#: what RequestTask.run_first() returns while the coroutine goes on
RUNNING: object

@final
class RequestTask:
    """A task for one request's handler: see rust/src/py/task.rs."""

    def __new__(cls, loop: Any, coro: Any, done: Callable[[Any, BaseException | None], object],
                arg: Any) -> Self: ...
    def start(self) -> bool: ...
    def run_first(self) -> BaseException | object | None: ...
    def _step(self, exc: BaseException | None = None) -> None: ...
    def _wakeup(self, future: Any) -> None: ...
    def _signalled(self, signal: Signal) -> None: ...
    def cancel(self, msg: Any | None = None) -> bool: ...
    def cancelling(self) -> int: ...
    def uncancel(self) -> int: ...
    def done(self) -> bool: ...
    def cancelled(self) -> bool: ...
    def result(self) -> None: ...
    def exception(self) -> BaseException | None: ...
    def add_done_callback(self, fn: Callable[[Any], object], *,
                          context: Any | None = None) -> None: ...
    def remove_done_callback(self, fn: Callable[[Any], object]) -> int: ...
    @property
    def arg(self) -> Any: ...
    def get_coro(self) -> Any: ...
    def get_loop(self) -> Any: ...
    def get_context(self) -> Any: ...
    def get_name(self) -> str: ...
    def set_name(self, value: object) -> None: ...
    @property
    def _fut_waiter(self) -> Any: ...
    @property
    def _must_cancel(self) -> bool: ...
    @property
    def _loop(self) -> Any: ...
    @property
    def _callbacks(self) -> list[tuple[Callable[[Any], object], Any]] | None: ...

@disjoint_base
class ExchangeCore:
    """What every request's Exchange holds and does: see rust/src/py/exchange.rs."""

    def __new__(cls, protocol: Any, head: RequestHead, *args: Any, **kwargs: Any) -> Self: ...
    @property
    def protocol(self) -> Any: ...
    @property
    def flow(self) -> Any: ...
    @property
    def head(self) -> RequestHead: ...
    phase: int
    keep_alive: bool
    _ended: bool
    _expect: bool
    upgrade: bool
    _body: Any
    _body_size: int
    _received: int
    _waiter: Any
    _error: Any
    status: int
    fields: Any
    sent: int
    task: Any
    handler_deadline: float
    t0: float
    def respond(self, status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes,
                reason: bytes | None = None) -> None: ...
    def _feed(self, data: bytes) -> None: ...
    def _wake(self) -> None: ...
    def take_body(self, most: int) -> list[bytes]: ...

@disjoint_base
class StateCore:
    """What every connection of a worker's listener reads per request: see
    rust/src/py/connection.rs."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self: ...
    date: bytes
    server_name: bytes
    requests: int
    max_requests: int
    recycle: Any
    stopping: bool
    keepalive: bool
    close_unread: bool
    access: Any
    counters: Any
    handler_timeout: float

@disjoint_base
class FlowCore:
    """A connection's transport and what its flow control reads per request."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self: ...
    transport: Any
    closed: bool
    read_paused: bool
    write_paused: bool
    counters: Any
    buffer_size: int
    def write(self, data: bytes | bytearray | memoryview) -> None: ...

@disjoint_base
class ProtocolCore:
    """One HTTP connection's hot state and the usual request's path."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self: ...
    phase: str
    state: Any
    flow: Any
    loop: Any
    handler: Any
    eager: bool
    parser: Any
    current: Any
    reading: Any
    pending: Any
    task: Any
    eof: bool
    reused: bool
    idle_since: float
    upload_rate: int
    exchange_class: Any
    on_done: Any
    def _waiting(self, ex: ExchangeCore, task: Any) -> None: ...
    def handler_done(self, ex: ExchangeCore, exc: BaseException | None) -> None: ...
    def data_received(self, data: bytes) -> None: ...
    def exchange_finished(self, ex: ExchangeCore) -> None: ...

@disjoint_base
class CycleCore:
    """An ASGI http cycle's send() for a one-message response: see
    rust/src/py/cycle.rs."""

    def __new__(cls, ex: ExchangeCore, done: Any) -> Self: ...
    @property
    def ex(self) -> Any: ...
    @property
    def done(self) -> Any: ...
    head: Any
    started: bool
    complete: bool
    finished: Any
    input_error: Any
    def send(self, message: Any) -> Any: ...

@disjoint_base
class RequestCore:
    """What every native request holds: see rust/src/py/native.rs."""

    def __new__(cls, exchange: Any) -> Self: ...
    @property
    def exchange(self) -> Any: ...

@disjoint_base
class ResponseCore:
    """A native response's status and fields: see rust/src/py/native.rs."""

    def __new__(cls, request: Any) -> Self: ...
    @property
    def request(self) -> Any: ...
    status: int
    reason: bytes | None
    fields: Any
    content_type: bytes
    keepalive: bool
    def head_fields(self) -> Any: ...

@final
class PlainRoutes:
    """The native adapter's handle(): see rust/src/py/plain.rs."""

    def __new__(cls, adapter: Any, router: Any, request_class: Any, response_class: Any,
                shared: dict[str, Any], buffer_size: int) -> Self: ...
    routes: dict[bytes, Any]
    version: int
    def __call__(self, ex: ExchangeCore) -> Any: ...

@final
class AsgiHandle:
    """The ASGI adapter's handle(): see rust/src/py/asgi.rs."""

    def __new__(cls, adapter: Any, app: Any, cycle_class: Any, done: Any,
                asgi: dict[str, Any], state: dict[str, Any]) -> Self: ...
    def __call__(self, ex: ExchangeCore) -> Any: ...

@final
class WsgiHandle:
    """The WSGI adapter's handle(): see rust/src/py/wsgi_call.rs."""

    def __new__(cls, adapter: Any, pool: WsgiPool, cycle_class: Any, empty: Any,
                root: str, paced: bool, loop: Any) -> Self: ...
    def __call__(self, ex: ExchangeCore) -> Any: ...

@disjoint_base
class WsgiCycleCore:
    """What every WSGI request's run of the application holds: see
    rust/src/py/wsgi_cycle.rs."""

    def __new__(cls, adapter: Any, ex: Any) -> Self: ...
    @property
    def adapter(self) -> Any: ...
    @property
    def ex(self) -> Any: ...
    environ: Any
    status: int | None
    reason: bytes | None
    fields: Any
    length: int | None
    first: bytes | None
    started: bool
    sent: int
    posted: int
    finished: bool
    cancelled: bool
    error: Any
    input_error: Any
    file: Any
    _signal: Any
    def start_response(self, status: Any, headers: Any,
                       exc_info: Any = None) -> Callable[[bytes], None]: ...
    def done(self) -> None: ...
    def _park(self) -> None: ...
    def _unpark(self) -> None: ...

@final
class WsgiPool:
    """The WSGI application's threads: see rust/src/py/wsgi_pool.rs."""

    def __new__(cls, loop: Any, size: int, queue_size: int, name: str) -> Self: ...
    @property
    def size(self) -> int: ...
    @property
    def queue_size(self) -> int: ...
    @property
    def running(self) -> int: ...
    @property
    def waiting(self) -> int: ...
    def submit(self, job: WsgiCycleCore) -> bool: ...
    def withdraw(self, job: WsgiCycleCore) -> bool: ...
    def close(self) -> None: ...
    def post(self, call: Callable[[], object]) -> bool: ...
    def _hand_over(self) -> None: ...
    def _drain(self) -> None: ...
    def _work(self) -> None: ...

@final
class RequestCall:
    """A request's cycle, as a coroutine: see rust/src/py/call.rs."""

    def send(self, value: None) -> Any: ...
    def throw(self, typ: Any, val: Any = None, _tb: Any = None) -> Any: ...
    def close(self) -> None: ...
    # (and the cr_* attributes of the coroutine it drives, through tp_getattro)

@final
class Signal:
    """A one-shot Future a RequestTask waits on cheaply: see rust/src/py/signal.rs."""

    def __new__(cls, loop: Any) -> Self: ...
    _asyncio_future_blocking: bool
    def set(self, now: bool = False) -> None: ...
    def cancel(self, msg: Any | None = None) -> bool: ...
    def done(self) -> bool: ...
    def cancelled(self) -> bool: ...
    def result(self) -> None: ...
    def exception(self) -> BaseException | None: ...
    def get_loop(self) -> Any: ...
    def add_done_callback(self, fn: Callable[[Any], object], *,
                          context: Any | None = None) -> None: ...
    def remove_done_callback(self, fn: Callable[[Any], object]) -> int: ...
    def __await__(self) -> Any: ...
    def __iter__(self) -> Any: ...
    def __next__(self) -> Any: ...

def signal(loop: Any) -> Signal: ...
