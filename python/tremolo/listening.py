"""The listening sockets of a server with worker processes: bound once by the master
(so that a port in use fails at start), and one SO_REUSEPORT socket per worker slot,
which the master keeps while the slot's worker is replaced so that nothing queued on
it is lost."""

from __future__ import annotations

import errno
import socket
from typing import Any

from .config import ConfigError, Options
from .sockets import Address, ListenerSpec, adopt, bind, bind_unix


def listeners(options: Options, extra: list[tuple[Address, dict[str, Any]]],
              primary: bool = True) -> list[ListenerSpec]:
    """The listeners: options.host:options.port unless not `primary`, and each of
    `extra` with options of its own over the server's (a TCP one without a host
    takes the server's)."""
    out = [ListenerSpec(Address.tcp(options.host, options.port), options)] \
        if primary else []
    for address, opts in extra:
        base = {k: v for k, v in vars(options).items() if k != "extra"}
        merged = Options.from_kwargs({**base, **options.extra, **opts,
                                      "host": address.host or options.host})
        if address.kind == "tcp":
            address = Address.tcp(merged.host, address.port)
        out.append(ListenerSpec(address, merged))
    return out


def per_worker(spec: ListenerSpec, worker_num: int) -> bool:
    """Whether each worker listens on a socket of its own (SO_REUSEPORT) there."""
    return spec.kind == "tcp" and worker_num > 0 and spec.options.reuse_port


def open_sockets(specs: list[ListenerSpec], worker_num: int
                 ) -> list[tuple[socket.socket, ListenerSpec]]:
    """Binds every listener once here. With SO_REUSEPORT and worker processes, the
    master's TCP socket only reserves the address (it never listens, so the kernel
    sends it no connection); each worker slot has its own (slot_sockets). Otherwise
    the master listens and the workers share its socket."""
    out = []
    try:
        for spec in specs:
            opts, at = spec.options, spec.address
            if at.kind == "fd":
                out.append((adopt(at.fd), spec))  # shared by the workers as it is
                continue
            if at.kind == "unix":
                out.append((bind_unix(at.path, opts.backlog, opts.uds_mode), spec))
                continue
            if at.port and opts.reuse_port and not opts.share_port:
                # SO_REUSEPORT is for our own workers: a bind without it fails when
                # anyone (another tremolo included) listens there already
                bind(at.host, at.port, reuse_port=False, backlog=None).close()
            sock = bind(at.host, at.port, reuse_port=opts.reuse_port,
                        backlog=None if per_worker(spec, worker_num) else opts.backlog)
            spec.bound(sock.getsockname()[1])
            out.append((sock, spec))
    except OSError as exc:
        for sock, _ in out:
            sock.close()
        why = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            why = "address already in use (by another program, or another tremolo"
            why += ")" if spec.kind == "unix" else \
                "; share_port=True, or --share-port, shares it on purpose)"
        raise ConfigError(f"cannot listen on {spec.display}: {why}") from exc
    return out


def slot_sockets(opened: list[tuple[socket.socket, ListenerSpec]], worker_num: int
                 ) -> tuple[list[tuple[socket.socket, Options]], list[socket.socket]]:
    """The listening sockets one worker slot serves, and those of them that are the
    slot's own (SO_REUSEPORT: listening from now on) rather than shared."""
    serve, own = [], []
    for sock, spec in opened:
        if per_worker(spec, worker_num):
            mine = bind(spec.address.host, spec.address.port, reuse_port=True,
                        backlog=spec.options.backlog)
            serve.append((mine, spec.options))
            own.append(mine)
        else:
            serve.append((sock, spec.options))
    return serve, own
