"""The WSGI application's threads, and the hand-off between them and the event loop.

A request handed to a thread used to cost a loop round trip of its own (a concurrent
future, a wake-up of the loop per request) and the two threads took turns on the GIL
for every request. Here the hand-off goes by batches, both ways:

- the loop queues each request's job as it reads it and wakes one thread once per
  loop turn, after that turn's reads (`_hand_over`);
- a thread runs jobs one after another while any wait, and posts each finished one
  to the loop (`post`: a queue of calls for the loop, which a streamed body's pieces
  use too); only the first call posted since the loop last looked wakes the loop
  (`call_soon_threadsafe`), which then makes all of them (`_drain`).

A thread that takes a job while others still wait makes sure one more thread is awake
(a spare): a job that blocks (a slow query, a sleep) never holds back the jobs behind
it while the pool has threads, and at most one thread is awake beyond those running
jobs. Threads are started when first needed, up to `size`; they are daemons and never
keep the process (a worker that must stop with threads hung in an application exits
at its deadline: see worker_process.py). `queue_size` bounds the jobs waiting while
every thread is busy: past it submit() refuses (the adapter answers 503).

The compound steps take a lock: under the GIL it is never contended for long, and
without one (a free-threaded build) the steps stay whole.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol


class Job(Protocol):
    """What a thread runs (`run`) and what the loop then does with it (`done`)."""

    #: a thread took it (a job not yet taken can be withdrawn)
    taken: bool
    #: the thread running it
    thread: Any

    def run(self) -> None: ...

    def done(self) -> None: ...


class _Thread(threading.Thread):
    def __init__(self, pool: ThreadPool, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.pool = pool
        #: held while the thread is parked; released to wake it
        self.wake = threading.Lock()
        self.wake.acquire()

    def run(self) -> None:
        self.pool._work(self)


class ThreadPool:
    def __init__(self, loop: Any, size: int, queue_size: int, name: str) -> None:
        self.loop = loop
        self.size = size
        self.queue_size = queue_size
        self.name = name
        self.jobs: deque[Job] = deque()
        self._posted: deque[Callable[[], None]] = deque()
        self.mutex = threading.Lock()
        self._threads: list[_Thread] = []
        self._idle: list[_Thread] = []
        self._spare = 0  # threads woken that have not taken a job yet
        #: jobs being run (a hung application keeps its thread here)
        self.running = 0
        self._handing = False
        self._closed = False

    # -- on the loop ---------------------------------------------------------

    def submit(self, job: Job) -> bool:
        """Queues `job`; False when the queue is full (the job is not queued): when
        `queue_size` jobs wait beyond those the free threads are about to take."""
        if self._closed or len(self.jobs) - (self.size - self.running) >= self.queue_size:
            return False
        self.jobs.append(job)
        if not self._handing:
            self._handing = True
            self.loop.call_soon(self._hand_over)
        return True

    def withdraw(self, job: Job) -> bool:
        """Takes back a job no thread has taken; False when one has."""
        with self.mutex:
            if job.taken:
                return False
            try:
                self.jobs.remove(job)
            except ValueError:
                return False
            return True

    def _hand_over(self) -> None:
        self._handing = False
        with self.mutex:
            if self.jobs and self._spare == 0:
                self._wake_one()

    def _drain(self) -> None:
        posted = self._posted
        while posted:
            posted.popleft()()

    def close(self) -> None:
        """No more jobs; parked threads end, running ones end after their job."""
        with self.mutex:
            self._closed = True
            self.jobs.clear()
            idle, self._idle = self._idle, []
        for t in idle:
            t.wake.release()

    # -- in the pool's threads -----------------------------------------------

    def _wake_one(self) -> None:
        """A parked thread, or a new one within `size`, to take the next job
        (under the mutex)."""
        if self._idle:
            self._spare += 1
            self._idle.pop().wake.release()
        elif len(self._threads) < self.size:
            self._spare += 1
            t = _Thread(self, f"{self.name}-{len(self._threads)}")
            self._threads.append(t)
            t.start()

    def _work(self, me: _Thread) -> None:
        spare = True  # every thread starts as woken
        done: Job | None = None  # the job it just ran
        mutex, jobs, posted = self.mutex, self.jobs, self._posted
        while True:
            wake_loop = False
            with mutex:  # (one hold a job: what ends the last one, what takes the next)
                if done is not None:
                    self.running -= 1
                    posted.append(done.done)
                    wake_loop = len(posted) == 1
                if spare:
                    self._spare -= 1
                    spare = False
                if self._closed:
                    job = None
                elif not jobs:
                    self._idle.append(me)
                    job = None
                else:
                    job = jobs.popleft()
                    job.taken = True
                    self.running += 1
                    if jobs and self._spare == 0:
                        self._wake_one()
            done = None  # (a parked thread must not keep its last request alive)
            if wake_loop and not self._call_loop():
                return  # the loop is closed: nobody waits any more
            if job is None:
                if self._closed:
                    return
                me.wake.acquire()  # parked until woken (the GIL is let go)
                spare = True
                done = None
                continue
            job.thread = me
            job.run()  # (it catches what the application raises)
            done = job

    def _call_loop(self) -> bool:
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            return False
        return True

    def post(self, call: Callable[[], None]) -> bool:
        """Has the loop make `call` (from a thread); False when the loop is closed."""
        with self.mutex:
            self._posted.append(call)
            first = len(self._posted) == 1
        return not first or self._call_loop()
