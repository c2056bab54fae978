//! WsgiPool: the WSGI application's threads, and the hand-off between them and the
//! event loop, by batches both ways.
//!
//! - The loop queues each request's job (a WsgiCycleCore) as it reads it and wakes
//!   one thread once per loop turn, after that turn's reads (`_hand_over`).
//! - A thread runs jobs one after another while any wait, holding the GIL across
//!   them, and posts each finished one for the loop; only the first post since the
//!   loop last looked wakes the loop (`call_soon_threadsafe`), which then takes all
//!   of them (`_drain`): each finished job's handler resumes at once.
//!
//! This was Python (a deque, a lock, a lock per thread to sleep on): a third of a
//! hello-world request's work. Here the queues are Rust behind one mutex, taken
//! only by threads holding the GIL and never while Python code runs, and a thread
//! sleeps in `std::thread::park` with the GIL let go.
//!
//! A thread that takes a job while others still wait makes sure one more thread is
//! awake (a spare): a job that blocks (a slow query, a sleep) never holds back the
//! jobs behind it while the pool has threads, and at most one thread is awake beyond
//! those running jobs. Threads are Python threads (daemons: they never keep the
//! process), started when first needed, up to `size`. `queue_size` bounds the jobs
//! waiting while every thread is busy: past it submit() refuses.

use super::wsgi_cycle::WsgiCycleCore;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyTraverseError;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, Thread};

/// What a thread posts for the loop: a finished job, or a call (a streamed body's).
enum Posted {
    Done(Py<WsgiCycleCore>),
    Call(Py<PyAny>),
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Py<WsgiCycleCore>>,
    /// parked threads, waiting for a job
    idle: Vec<Thread>,
    /// threads started
    threads: usize,
    /// threads woken that have not taken a job yet
    spare: usize,
    /// jobs being run (a hung application keeps its thread here)
    running: usize,
    posted: Vec<Posted>,
    /// a `_hand_over` is due this loop turn
    handing: bool,
    closed: bool,
}

/// What waking one more thread takes, done once the mutex is let go (starting a
/// thread runs Python).
enum Wake {
    Nothing,
    Unpark(Thread),
    Start(usize),
}

impl State {
    /// A parked thread, or a new one within `size`, to take the next job.
    fn wake_one(&mut self, size: usize) -> Wake {
        if let Some(t) = self.idle.pop() {
            self.spare += 1;
            Wake::Unpark(t)
        } else if self.threads < size {
            self.spare += 1;
            self.threads += 1;
            Wake::Start(self.threads - 1)
        } else {
            Wake::Nothing
        }
    }
}

/// The pool: see the module docs.
#[pyclass(module = "tremolo._core", frozen)]
pub struct WsgiPool {
    loop_: Py<PyAny>,
    #[pyo3(get)]
    size: usize,
    #[pyo3(get)]
    queue_size: usize,
    name: String,
    state: Mutex<State>,
}

impl WsgiPool {
    fn lock(&self) -> MutexGuard<'_, State> {
        // (a panic never happens under it; a poisoned state is still whole)
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn act(slf: &Bound<'_, Self>, wake: Wake) -> PyResult<()> {
        let py = slf.py();
        match wake {
            Wake::Nothing => Ok(()),
            Wake::Unpark(t) => {
                t.unpark();
                Ok(())
            }
            Wake::Start(n) => {
                let kwargs = PyDict::new(py);
                kwargs.set_item("target", slf.getattr(intern!(py, "_work"))?)?;
                kwargs.set_item("name", format!("{}-{n}", slf.get().name))?;
                kwargs.set_item("daemon", true)?;
                let t = py
                    .import(intern!(py, "threading"))?
                    .getattr(intern!(py, "Thread"))?
                    .call((), Some(&kwargs))?;
                if let Err(e) = t.call_method0(intern!(py, "start")) {
                    let mut s = slf.get().lock();
                    s.threads -= 1;
                    s.spare -= 1;
                    return Err(e);
                }
                Ok(())
            }
        }
    }

    /// Wakes the loop to take what was posted; false when it is closed.
    fn call_loop(slf: &Bound<'_, Self>) -> bool {
        let py = slf.py();
        let drain = match slf.getattr(intern!(py, "_drain")) {
            Ok(d) => d,
            Err(_) => return false,
        };
        slf.get()
            .loop_
            .bind(py)
            .call_method1(intern!(py, "call_soon_threadsafe"), (drain,))
            .is_ok()
    }

    /// Parks the calling thread (the GIL let go) until it is no longer idle.
    fn park_idle(&self, py: Python<'_>, me: &Thread) {
        loop {
            py.detach(thread::park);
            let s = self.lock();
            if s.closed || !s.idle.iter().any(|t| t.id() == me.id()) {
                return;
            }
        }
    }
}

#[pymethods]
impl WsgiPool {
    #[new]
    fn new(r#loop: Py<PyAny>, size: usize, queue_size: usize, name: String) -> Self {
        WsgiPool {
            loop_: r#loop,
            size: size.max(1),
            queue_size,
            name,
            state: Mutex::new(State::default()),
        }
    }

    /// Jobs being run, and jobs waiting for a thread.
    #[getter]
    fn running(&self) -> usize {
        self.lock().running
    }

    #[getter]
    fn waiting(&self) -> usize {
        self.lock().jobs.len()
    }

    /// Queues `job`; False when the queue is full (the job is not queued): when
    /// `queue_size` jobs wait beyond those the free threads are about to take.
    pub fn submit(slf: &Bound<'_, Self>, job: &Bound<'_, WsgiCycleCore>) -> PyResult<bool> {
        let py = slf.py();
        let pool = slf.get();
        let hand_over = {
            let mut s = pool.lock();
            let free = pool.size.saturating_sub(s.running);
            if s.closed || s.jobs.len() >= free + pool.queue_size {
                return Ok(false);
            }
            s.jobs.push_back(job.clone().unbind());
            !std::mem::replace(&mut s.handing, true)
        };
        if hand_over {
            let call = slf.getattr(intern!(py, "_hand_over"))?;
            pool.loop_
                .bind(py)
                .call_method1(intern!(py, "call_soon"), (call,))?;
        }
        Ok(true)
    }

    /// Takes back a job no thread has taken; False when one has.
    fn withdraw(&self, job: &Bound<'_, WsgiCycleCore>) -> bool {
        let taken = {
            let mut s = self.lock();
            match s.jobs.iter().position(|j| j.as_ptr() == job.as_ptr()) {
                Some(i) => s.jobs.remove(i),
                None => None,
            }
        };
        taken.is_some()
    }

    fn _hand_over(slf: &Bound<'_, Self>) -> PyResult<()> {
        let pool = slf.get();
        let wake = {
            let mut s = pool.lock();
            s.handing = false;
            if !s.jobs.is_empty() && s.spare == 0 {
                s.wake_one(pool.size)
            } else {
                Wake::Nothing
            }
        };
        Self::act(slf, wake)
    }

    /// On the loop: the finished jobs' handlers resume, the posted calls are made.
    fn _drain(&self, py: Python<'_>) -> PyResult<()> {
        let posted = std::mem::take(&mut self.lock().posted);
        let mut failed = None;
        for p in posted {
            let outcome = match p {
                Posted::Done(job) => WsgiCycleCore::done(job.bind(py)),
                Posted::Call(call) => call.call0(py).map(|_| ()),
            };
            if let Err(e) = outcome {
                // (the others are still made; the loop's handler reports the first)
                failed.get_or_insert(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// No more jobs; parked threads end, running ones end after their job.
    fn close(&self) {
        let (jobs, idle) = {
            let mut s = self.lock();
            s.closed = true;
            (std::mem::take(&mut s.jobs), std::mem::take(&mut s.idle))
        };
        drop(jobs);
        for t in idle {
            t.unpark();
        }
    }

    /// Has the loop make `call` (from a thread); False when the loop is closed.
    fn post(slf: &Bound<'_, Self>, call: Py<PyAny>) -> bool {
        let first = {
            let mut s = slf.get().lock();
            s.posted.push(Posted::Call(call));
            s.posted.len() == 1
        };
        !first || Self::call_loop(slf)
    }

    /// A thread's life: jobs while any wait, else parked until woken.
    fn _work(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let pool = slf.get();
        let me = thread::current();
        let mut spare = true; // every thread starts as woken
        let mut done: Option<Py<WsgiCycleCore>> = None; // the job it just ran
        loop {
            let (job, wake_loop, wake, closed) = {
                let mut s = pool.lock(); // (one hold a job: the last one's end, the next)
                let mut wake_loop = false;
                if let Some(d) = done.take() {
                    s.running -= 1;
                    s.posted.push(Posted::Done(d));
                    wake_loop = s.posted.len() == 1;
                }
                if spare {
                    s.spare -= 1;
                    spare = false;
                }
                let mut wake = Wake::Nothing;
                let job = if s.closed {
                    None
                } else if let Some(job) = s.jobs.pop_front() {
                    s.running += 1;
                    if !s.jobs.is_empty() && s.spare == 0 {
                        wake = s.wake_one(pool.size);
                    }
                    Some(job)
                } else {
                    s.idle.push(me.clone());
                    None
                };
                (job, wake_loop, wake, s.closed)
            };
            if let Err(e) = Self::act(slf, wake) {
                // (no thread could be started: the job goes on in this one, and the
                // next hand-over tries again)
                e.write_unraisable(py, None);
            }
            if wake_loop && !Self::call_loop(slf) {
                return Ok(()); // the loop is closed: nobody waits any more
            }
            let Some(job) = job else {
                if closed {
                    return Ok(());
                }
                pool.park_idle(py, &me);
                spare = true;
                continue;
            };
            WsgiCycleCore::run(job.bind(py), &me);
            done = Some(job);
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.loop_)?;
        // (only threads holding the GIL take the mutex, never across a collection:
        // a held one is skipped rather than waited for)
        if let Ok(s) = self.state.try_lock() {
            for j in &s.jobs {
                visit.call(j)?;
            }
            for p in &s.posted {
                match p {
                    Posted::Done(j) => visit.call(j)?,
                    Posted::Call(c) => visit.call(c)?,
                }
            }
        }
        Ok(())
    }
}
