"""The master's signals, made harmless to the master itself: a handler only records
that a signal came (Python's C-level handler writes the signal's number to a socket,
signal.set_wakeup_fd; the Python-level one does nothing), and the watch loop reads
the numbers and acts between its own steps. So no signal ever runs the master's code
inside the master's code: in a fork, in the middle of a metrics scrape that iterates
the workers, or under the multiprocessing heap's lock, where a nested handler that
forks again deadlocked. Signals are blocked around every fork, so that a new child
never runs a handler of the master's: it installs its own (watchers.WorkerSignals), and
only then unblocks them."""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Iterator
from types import TracebackType
from typing import Any

#: what stops the master (SIGINT twice or SIGQUIT force it)
STOP = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
#: what reopens the log files (logrotate's postrotate), as nginx's and gunicorn's
#: SIGUSR1, in every process: the master reopens its own and passes it on, a worker
#: (or a server of one process) reopens its own; sent to the whole group (systemctl
#: kill's default) it does the same
REOPEN = signal.SIGUSR1
#: what the master sends a worker it replaces (a rollout, recycling): stop
#: accepting, drain, and close WebSockets with 1012 (service restart) rather than 1001
REPLACED = signal.SIGUSR2
#: what the master handles: the stops, SIGHUP (a rollout), SIGTTIN and SIGTTOU (one
#: worker more, one fewer), REOPEN
HANDLED = (*STOP, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, REOPEN)
#: what a fork blocks: those, and REPLACED, whose default action would kill a worker
#: that has no handler for it yet
FORK_BLOCKED = (*HANDLED, REPLACED)


def _recorded(_signum: int, _frame: Any) -> None:
    """The Python-level handler: the signal's number is in the inbox already."""


class Inbox:
    """The signals that came, in the order they came, until the watch loop takes them.
    Each delivery counts (the kernel merges only those of one kind that arrive while
    one is pending, as while a fork blocks them). Used as a context manager around
    the master's life; its previous handlers are put back at the end."""

    def __init__(self) -> None:
        self.reader, self.writer = socket.socketpair()
        for end in (self.reader, self.writer):
            end.setblocking(False)
        self.previous: dict[int, Any] = {}
        self.wakeup = -1

    def __enter__(self) -> Inbox:
        self.previous = {sig: signal.signal(sig, _recorded) for sig in HANDLED}
        self.wakeup = signal.set_wakeup_fd(self.writer.fileno(), warn_on_full_buffer=False)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        signal.set_wakeup_fd(self.wakeup)
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.reader.close()
        self.writer.close()

    def fileno(self) -> int:
        """Readable when a signal came (for a selector)."""
        return self.reader.fileno()

    def take(self) -> list[int]:
        """The signals that came since the last call, oldest first."""
        out: list[int] = []
        while True:
            try:
                data = self.reader.recv(4096)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                break
            out.extend(sig for sig in data if sig in HANDLED)
        return out

    def closeables(self) -> list[socket.socket]:
        """What a forked child must close (after set_wakeup_fd(-1))."""
        return [self.reader, self.writer]


@contextlib.contextmanager
def blocked() -> Iterator[None]:
    """The master's signals (and SIGUSR2) wait while the block runs (a fork): a
    child starts with them blocked and unblocks them once its own handlers are in
    place (watchers.WorkerSignals)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, FORK_BLOCKED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
