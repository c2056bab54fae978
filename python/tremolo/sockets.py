"""Listening sockets: where to listen (Address; ListenerSpec, with the options that
apply there) and how a socket is made there (bind, bind_unix, adopt). The bottom of
the process side: the master (listening.py), a worker (server.py), the metrics
endpoint and the tests' servers make their sockets here."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from dataclasses import dataclass, replace
from typing import Literal

from .config import ConfigError, Options

Kind = Literal["tcp", "unix", "fd"]


@dataclass(frozen=True)
class Address:
    """Where to listen: TCP `host`:`port` (host None: the server's host), a UNIX
    socket at `path`, or a listening socket handed in as `fd` (--fd, systemd's
    LISTEN_FDS)."""

    kind: Kind
    host: str | None = None
    port: int = 0
    path: str = ""
    fd: int = -1

    @classmethod
    def tcp(cls, host: str | None, port: int) -> Address:
        return cls("tcp", host=host, port=port)

    @classmethod
    def unix(cls, path: str) -> Address:
        return cls("unix", path=path)

    @classmethod
    def handed(cls, fd: int) -> Address:
        return cls("fd", fd=fd)

    @classmethod
    def listen(cls, port: int | str, host: str | None) -> Address:
        """What `app.listen(port, host)` names: a TCP port, or a UNIX socket's path
        in the port's place."""
        return cls.tcp(host, port) if isinstance(port, int) else cls.unix(port)

    def shown(self, secure: bool = False) -> str:
        """`http://127.0.0.1:8000`, `unix:/run/app.sock`, `fd:3`."""
        if self.kind == "fd":
            return f"fd:{self.fd}"
        if self.kind == "unix":
            return f"unix:{self.path}"
        host = self.host or "127.0.0.1"
        return f"http{'s' if secure else ''}://" + \
            (f"[{host}]" if ":" in host else host) + f":{self.port}"


@dataclass
class ListenerSpec:
    """An address with the options that apply there; a TCP port 0 becomes the
    port it was given once bound (`bound`)."""

    address: Address
    options: Options

    @property
    def kind(self) -> Kind:
        return self.address.kind

    @property
    def display(self) -> str:
        return self.address.shown(bool(self.options.ssl))

    def bound(self, port: int) -> None:
        self.address = replace(self.address, port=port)


def bind(host: str | None, port: int, *, reuse_port: bool, backlog: int | None
         ) -> socket.socket:
    """A TCP socket bound to host:port, listening unless `backlog` is None.
    '::' listens on IPv6 and IPv4 alike."""
    host = host or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        if backlog is not None:
            sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _listening(path: str) -> bool:
    """Whether a server accepts connections on the UNIX socket at `path`."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1)
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def adopt(fd: int) -> socket.socket:
    """A listening socket handed in by file descriptor; ConfigError if it is not one."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ConfigError(f"fd {fd}: not a socket ({exc.strerror or exc})") from None
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET,
                                                             socket.SO_ACCEPTCONN):
        sock.detach()
        raise ConfigError(f"fd {fd}: not a listening stream socket")
    sock.setblocking(False)
    return sock


def bind_unix(path: str, backlog: int, mode: int | None = None) -> socket.socket:
    """A listening UNIX socket; a stale socket file at `path` is replaced, any other
    file is not."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            if _listening(path):
                raise OSError(errno.EADDRINUSE, "address already in use", path)
            os.unlink(path)  # stale: left by a server that is gone
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if mode is None:
            sock.bind(path)
        else:
            _bind_with_mode(sock, path, mode)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _bind_with_mode(sock: socket.socket, path: str, mode: int) -> None:
    """Binds with the socket file never allowing more than `mode` (--uds-mode: who may
    connect), not even between bind and chmod. Linux creates the file with the
    socket's own mode less the umask, so the mode is set on the socket first: no
    process-wide state is touched (a umask set around bind would also apply to files
    other threads create meanwhile). Elsewhere, where a socket has no mode of its
    own, the umask is the way. The umask can only take bits away; chmod then gives
    them back."""
    try:
        os.fchmod(sock.fileno(), mode)
    except OSError:
        old = os.umask(0o777 & ~mode)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
    else:
        sock.bind(path)
    os.chmod(path, mode)
