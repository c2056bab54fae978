//! RequestTask: each request's handler runs in one, a task without a Task's costs.
//!
//! An asyncio.Task per request costs about as much as the rest of a small request
//! (its creation, its registration in a WeakSet, a loop iteration before its first
//! step and another for its done callbacks). Most handlers answer without waiting
//! for anything, so a RequestTask runs its first step at once, the way Python 3.12's
//! eager tasks do, and later steps only when the futures it waits on are done. It is
//! written here rather than in Python because every request makes one: created from
//! Python it costs a tenth of a Python object with an `__init__`.
//!
//! It is the current task while it runs (asyncio.current_task() returns it), from the
//! handler's first line to its last, so asyncio.timeout(), TaskGroup and anyio's
//! cancel scopes work in handlers. It offers what code running inside a task asks of
//! its task, and the private fields anyio reads (`_fut_waiter`, `_must_cancel`,
//! `_callbacks`, `_loop`). It is not an asyncio.Task: it is not in asyncio.all_tasks()
//! and cannot be awaited; the protocol that started it is told when it ends (before
//! its done callbacks run).
//!
//! Steps follow asyncio.Task's rules: a coroutine waits on a Future by yielding it
//! (with `_asyncio_future_blocking` set), a bare yield gives way for one iteration, a
//! cancel() cancels the future waited on or is delivered at the next step, and a
//! coroutine that swallows its cancellation goes on.
//!
//! This is the one place where Rust calls Python: the coroutine, the loop and the
//! futures are Python objects. No borrow of a task is held across such a call (the
//! coroutine may call the task's own methods).

use super::call::RequestCall;
use super::signal::Signal;
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyStopIteration, PySystemExit};
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple};
use pyo3::PyTraverseError;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a task needs of asyncio, looked up once.
pub struct Asyncio {
    enter_task: Py<PyAny>,
    leave_task: Py<PyAny>,
    current_task: Py<PyAny>,
    copy_context: Py<PyAny>,
    pub cancelled_error: Py<PyAny>,
    invalid_state: Py<PyAny>,
    /// what `run_first()` returns while the coroutine goes on
    running: Py<PyAny>,
}

static ASYNCIO: PyOnceLock<Asyncio> = PyOnceLock::new();
static NUMBERS: AtomicU64 = AtomicU64::new(1);

pub fn asyncio(py: Python<'_>) -> PyResult<&'static Asyncio> {
    ASYNCIO.get_or_try_init(py, || {
        let tasks = py.import("asyncio.tasks")?;
        let exceptions = py.import("asyncio.exceptions")?;
        Ok(Asyncio {
            enter_task: tasks.getattr("_enter_task")?.unbind(),
            leave_task: tasks.getattr("_leave_task")?.unbind(),
            // (3.11's current_task() is Python around this dict, which its C
            // _enter_task fills; later versions' is C)
            current_task: match tasks.getattr("_current_tasks") {
                Ok(d)
                    if d.is_exact_instance_of::<PyDict>()
                        && !py.import("_asyncio")?.hasattr("current_task")? =>
                {
                    d.unbind()
                }
                _ => tasks.getattr("current_task")?.unbind(),
            },
            copy_context: py.import("contextvars")?.getattr("copy_context")?.unbind(),
            cancelled_error: exceptions.getattr("CancelledError")?.unbind(),
            invalid_state: exceptions.getattr("InvalidStateError")?.unbind(),
            running: py.import("builtins")?.getattr("object")?.call0()?.unbind(),
        })
    })
}

/// The sentinel `RequestTask.run_first()` returns while the coroutine goes on.
/// The task running in `loop` now, if one is (asyncio.current_task).
pub fn current<'py>(loop_: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = loop_.py();
    let current = asyncio(py)?.current_task.bind(py);
    let task = match current.cast::<PyDict>() {
        Ok(tasks) => tasks.get_item(loop_)?,
        Err(_) => Some(current.call1((loop_,))?),
    };
    Ok(task.filter(|t| !t.is_none()))
}

pub fn running(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(asyncio(py)?.running.clone_ref(py))
}

fn gone() -> PyErr {
    PyRuntimeError::new_err("the task was cleared")
}

/// A done callback and the context it runs in.
/// A done callback and the context it runs in (None: the current one, copied).
pub type Callback = (Py<PyAny>, Option<Py<PyAny>>);

/// Each request's handler runs in one: see the module's documentation.
#[pyclass(module = "tremolo._core", weakref)]
pub struct RequestTask {
    loop_: Option<Py<PyAny>>,
    coro: Option<Py<PyAny>>,
    /// called as done(arg, None), or done(arg, exception) (a CancelledError if the
    /// task was cancelled), once the coroutine has ended
    notify: Option<Py<PyAny>>,
    arg: Option<Py<PyAny>>,
    /// a copy of the context, as a Task has: what a handler sets stays its own
    context: Option<Py<PyAny>>,
    fut_waiter: Option<Py<PyAny>>,
    must_cancel: bool,
    cancel_message: Option<Py<PyAny>>,
    cancel_requests: i64,
    finished: bool,
    cancelled: bool,
    outcome: Option<Py<PyAny>>,
    /// done callbacks and their contexts; None until one is added (the usual end,
    /// without any, takes the short way)
    callbacks: Option<Vec<Callback>>,
    name: Option<String>,
}

/// How a step of the coroutine ended.
pub enum Step<'py> {
    Yielded(Bound<'py, PyAny>),
    Returned,
    Raised(PyErr),
}

impl RequestTask {
    fn parts<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let py = slf.py();
        let t = slf.borrow();
        match (&t.loop_, &t.coro, &t.context) {
            (Some(l), Some(c), Some(x)) => {
                Ok((l.bind(py).clone(), c.bind(py).clone(), x.bind(py).clone()))
            }
            _ => Err(gone()),
        }
    }

    fn cancelled_error<'py>(py: Python<'py>, message: Option<&Py<PyAny>>) -> PyResult<Py<PyAny>> {
        let error = asyncio(py)?.cancelled_error.bind(py);
        Ok(match message {
            Some(m) => error.call1((m.bind(py),))?,
            None => error.call0()?,
        }
        .unbind())
    }

    /// The cancellation a step ending now delivers, if one is pending.
    fn pending_cancel(slf: &Bound<'_, Self>) -> PyResult<Option<Py<PyAny>>> {
        let py = slf.py();
        let t = slf.borrow();
        if t.must_cancel {
            Ok(Some(Self::cancelled_error(py, t.cancel_message.as_ref())?))
        } else {
            Ok(None)
        }
    }

    /// Sends into the coroutine (or throws `exc` into it), in `context` if given.
    fn step_once<'py>(
        coro: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
        exc: Option<&Bound<'py, PyAny>>,
    ) -> Step<'py> {
        if let Ok(call) = coro.cast::<RequestCall>() {
            // a request's cycle (call.rs): stepped without a coroutine's protocol
            return RequestCall::advance(call, context, exc);
        }
        match send(coro, context, exc) {
            Sent::Yielded(value) => Step::Yielded(value),
            Sent::Returned(_) => Step::Returned,
            Sent::Raised(e) => Step::Raised(e),
        }
    }

    /// The next step: sends into the coroutine (throws `exc` into it), in the
    /// task's context if `in_context` (else the caller runs in it already).
    fn step_with(
        slf: &Bound<'_, Self>,
        exc: Option<Bound<'_, PyAny>>,
        in_context: bool,
    ) -> PyResult<()> {
        let py = slf.py();
        let a = asyncio(py)?;
        let (loop_, coro, context) = Self::parts(slf)?;
        a.enter_task.bind(py).call1((&loop_, slf))?;
        let mut exc = exc;
        let cancel = {
            let mut t = slf.borrow_mut();
            t.fut_waiter = None;
            if t.must_cancel {
                t.must_cancel = false;
                Some(t.cancel_message.as_ref().map(|m| m.clone_ref(py)))
            } else {
                None
            }
        };
        if let Some(message) = cancel {
            let is_cancel = match &exc {
                Some(e) => e.is_instance(a.cancelled_error.bind(py))?,
                None => false,
            };
            if !is_cancel {
                exc = Some(Self::cancelled_error(py, message.as_ref())?.into_bound(py));
            }
        }
        let step = Self::step_once(&coro, in_context.then_some(&context), exc.as_ref());
        a.leave_task.bind(py).call1((&loop_, slf))?;
        match step {
            Step::Yielded(value) => Self::wait(slf, &value),
            // cancelled just as it ended: it ends cancelled, as a Task would
            Step::Returned => {
                let cancel = Self::pending_cancel(slf)?;
                Self::finish(slf, cancel)
            }
            Step::Raised(e) => Self::raised(slf, e, true).map(|_| ()),
        }
    }

    /// A Signal it waits on is done: its next step, in its context.
    pub fn signalled(slf: &Bound<'_, Self>, signal: &Bound<'_, Signal>) -> PyResult<()> {
        let py = slf.py();
        let exc = signal.borrow().outcome(py)?;
        Self::step_with(
            slf,
            exc.map(|e| e.into_value(py).into_bound(py).into_any()),
            true,
        )
    }

    fn is_stop(py: Python<'_>, e: &PyErr) -> bool {
        e.is_instance_of::<PyKeyboardInterrupt>(py) || e.is_instance_of::<PySystemExit>(py)
    }

    /// The task is done with `outcome`: its done callbacks are scheduled.
    fn end(slf: &Bound<'_, Self>, outcome: Option<Py<PyAny>>) -> PyResult<Option<Py<PyAny>>> {
        let py = slf.py();
        let cancelled = match &outcome {
            Some(o) => o
                .bind(py)
                .is_instance(asyncio(py)?.cancelled_error.bind(py))?,
            None => false,
        };
        let (callbacks, loop_) = {
            let mut t = slf.borrow_mut();
            t.finished = true;
            if let Some(o) = &outcome {
                t.outcome = Some(o.clone_ref(py));
                t.cancelled = cancelled;
                t.fut_waiter = None;
            }
            (
                t.callbacks.take(),
                t.loop_.as_ref().map(|l| l.clone_ref(py)),
            )
        };
        if let (Some(callbacks), Some(loop_)) = (callbacks, loop_) {
            // as a Future does: each callback on its own, later, with the task
            for (func, context) in callbacks {
                call_soon(
                    loop_.bind(py),
                    func.bind(py),
                    slf.as_any(),
                    context.as_ref(),
                )?;
            }
        }
        Ok(outcome)
    }

    fn finish(slf: &Bound<'_, Self>, outcome: Option<Py<PyAny>>) -> PyResult<()> {
        let py = slf.py();
        let outcome = Self::end(slf, outcome)?;
        Self::notify(slf, outcome.unwrap_or_else(|| py.None()))
    }

    /// Tells `done(arg, outcome)` that the task ended.
    fn notify(slf: &Bound<'_, Self>, outcome: Py<PyAny>) -> PyResult<()> {
        let py = slf.py();
        let (notify, arg) = {
            let t = slf.borrow();
            match (&t.notify, &t.arg) {
                (Some(n), Some(a)) => (n.clone_ref(py), a.clone_ref(py)),
                _ => return Err(gone()),
            }
        };
        notify.call1(py, (arg, outcome))?;
        Ok(())
    }

    /// What a step that raised `e` ends the task with (a KeyboardInterrupt or
    /// SystemExit ends it, then goes on up).
    fn raised(slf: &Bound<'_, Self>, e: PyErr, notify: bool) -> PyResult<Option<Py<PyAny>>> {
        let py = slf.py();
        if Self::is_stop(py, &e) {
            Self::finish(slf, Some(e.value(py).clone().into_any().unbind()))?;
            return Err(e);
        }
        let outcome = Some(e.into_value(py).into_any());
        if notify {
            Self::finish(slf, outcome)?;
            Ok(None)
        } else {
            Self::end(slf, outcome)
        }
    }

    /// The task waits on `future`, which will wake it: a cancel() already asked
    /// for cancels it now.
    fn waiting_on(slf: &Bound<'_, Self>, future: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let (must, message) = {
            let mut t = slf.borrow_mut();
            t.fut_waiter = Some(future.clone().unbind());
            (
                t.must_cancel,
                t.cancel_message.as_ref().map(|m| m.clone_ref(py)),
            )
        };
        if must && cancel_future(future, message)? {
            slf.borrow_mut().must_cancel = false;
        }
        Ok(())
    }

    /// Arranges the next step for what the coroutine yielded.
    fn wait(slf: &Bound<'_, Self>, result: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let (loop_, _, context) = Self::parts(slf)?;
        if let Ok(signal) = result.cast::<Signal>() {
            let waits = {
                let mut s = signal.borrow_mut();
                let waits = s.blocking() && s.same_loop(&loop_);
                if waits {
                    // the signal keeps the task: no done callback, no context to pass
                    s.wait_by(slf.clone().unbind());
                }
                waits
            };
            if waits {
                return Self::waiting_on(slf, result);
            }
        }
        let blocking = result.getattr_opt(intern!(py, "_asyncio_future_blocking"))?;
        let problem = match blocking {
            None if result.is_none() => {
                // a bare yield (asyncio.sleep(0)): give way once
                let step = slf.getattr(intern!(py, "_step"))?;
                let kwargs = PyDict::new(py);
                kwargs.set_item(intern!(py, "context"), &context)?;
                loop_.call_method(intern!(py, "call_soon"), (step, py.None()), Some(&kwargs))?;
                return Ok(());
            }
            None => format!("a task got a bad yield: {}", result.repr()?),
            Some(b) if !b.is_truthy()? => {
                "yield was used instead of yield from in a task".to_string()
            }
            Some(_) if !loop_of(result)?.is(&loop_) => {
                format!(
                    "a task waited on a future of another loop: {}",
                    result.repr()?
                )
            }
            Some(_) => {
                result.setattr(intern!(py, "_asyncio_future_blocking"), false)?;
                let wakeup = slf.getattr(intern!(py, "_wakeup"))?;
                let kwargs = PyDict::new(py);
                kwargs.set_item(intern!(py, "context"), &context)?;
                result.call_method(intern!(py, "add_done_callback"), (wakeup,), Some(&kwargs))?;
                return Self::waiting_on(slf, result);
            }
        };
        let error = PyRuntimeError::new_err(problem).into_value(py);
        let step = slf.getattr(intern!(py, "_step"))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "context"), &context)?;
        loop_.call_method(intern!(py, "call_soon"), (step, error), Some(&kwargs))?;
        Ok(())
    }
}

/// How a send into a coroutine ended, with what it returned.
pub enum Sent<'py> {
    Yielded(Bound<'py, PyAny>),
    Returned(Bound<'py, PyAny>),
    Raised(PyErr),
}

/// Sends None into `coro` (or throws `exc` into it), in `context` if given.
pub fn send<'py>(
    coro: &Bound<'py, PyAny>,
    context: Option<&Bound<'py, PyAny>>,
    exc: Option<&Bound<'py, PyAny>>,
) -> Sent<'py> {
    let py = coro.py();
    match resume(coro, context, exc) {
        Ok(v) => Sent::Yielded(v),
        Err(e) if e.is_instance_of::<PyStopIteration>(py) => {
            match e.value(py).getattr(intern!(py, "value")) {
                Ok(v) => Sent::Returned(v),
                Err(e) => Sent::Raised(e),
            }
        }
        Err(e) => Sent::Raised(e),
    }
}

/// Sends None into a coroutine (or throws `exc` into it), in `context` if given:
/// what it yields, or the StopIteration that ends it.
fn resume<'py>(
    coro: &Bound<'py, PyAny>,
    context: Option<&Bound<'py, PyAny>>,
    exc: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = coro.py();
    match (exc, context) {
        (Some(e), None) => coro.call_method1(intern!(py, "throw"), (e,)),
        (Some(e), Some(ctx)) => coro
            .getattr(intern!(py, "throw"))
            .and_then(|throw| ctx.call_method1(intern!(py, "run"), (throw, e))),
        (None, Some(ctx)) => coro
            .getattr(intern!(py, "send"))
            .and_then(|send| ctx.call_method1(intern!(py, "run"), (send, py.None()))),
        (None, None) => coro.call_method1(intern!(py, "send"), (py.None(),)),
    }
}

fn loop_of<'py>(future: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = future.py();
    match future.getattr_opt(intern!(py, "get_loop"))? {
        Some(get_loop) => get_loop.call0(),
        None => Ok(future
            .getattr_opt(intern!(py, "_loop"))?
            .unwrap_or_else(|| py.None().into_bound(py))),
    }
}

fn cancel_future(future: &Bound<'_, PyAny>, message: Option<Py<PyAny>>) -> PyResult<bool> {
    let py = future.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "msg"), message)?;
    future
        .call_method(intern!(py, "cancel"), (), Some(&kwargs))?
        .is_truthy()
}

/// loop.call_soon(func, arg, context=context).
pub fn call_soon(
    loop_: &Bound<'_, PyAny>,
    func: &Bound<'_, PyAny>,
    arg: &Bound<'_, PyAny>,
    context: Option<&Py<PyAny>>,
) -> PyResult<()> {
    let py = loop_.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "context"), context)?;
    loop_.call_method(intern!(py, "call_soon"), (func, arg), Some(&kwargs))?;
    Ok(())
}

#[pymethods]
impl RequestTask {
    /// A task for `coro`: `done(arg, outcome)` is called when it ends.
    #[new]
    pub fn new(
        py: Python<'_>,
        r#loop: Py<PyAny>,
        coro: Py<PyAny>,
        done: Py<PyAny>,
        arg: Py<PyAny>,
    ) -> PyResult<Self> {
        let context = asyncio(py)?.copy_context.call0(py)?;
        Ok(RequestTask {
            loop_: Some(r#loop),
            coro: Some(coro),
            notify: Some(done),
            arg: Some(arg),
            context: Some(context),
            fut_waiter: None,
            must_cancel: false,
            cancel_message: None,
            cancel_requests: 0,
            finished: false,
            cancelled: false,
            outcome: None,
            callbacks: None,
            name: None,
        })
    }

    /// Runs the first step now (from a loop callback, say); True if the coroutine
    /// ended in it. `done` is called when it ends, then or later.
    fn start(slf: &Bound<'_, Self>) -> PyResult<bool> {
        let py = slf.py();
        let outcome = Self::run_first(slf)?;
        if outcome.is(&asyncio(py)?.running) {
            return Ok(false);
        }
        Self::notify(slf, outcome)?;
        Ok(true)
    }

    /// Runs the first step now, as an eager task does. Returns RUNNING while the
    /// coroutine waits for something (later steps follow as in any task, and `done`
    /// is called when it ends); else what it ended with (None, or its exception), and
    /// `done` is not called: the caller, told so, goes on itself.
    pub fn run_first(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let a = asyncio(py)?;
        let (loop_, coro, context) = Self::parts(slf)?;
        let enter = a.enter_task.bind(py);
        let leave = a.leave_task.bind(py);
        let outer = match enter.call1((&loop_, slf)) {
            Ok(_) => None,
            Err(e) if e.is_instance_of::<PyRuntimeError>(py) => {
                // started from inside another task (a handler's response let the
                // next pipelined request start): that task steps aside while this
                // one runs, as it does for Python 3.12's eager tasks
                let outer = current(&loop_)?.unwrap_or_else(|| py.None().into_bound(py));
                leave.call1((&loop_, &outer))?;
                enter.call1((&loop_, slf))?;
                Some(outer)
            }
            Err(e) => return Err(e),
        };
        let step = Self::step_once(&coro, Some(&context), None);
        leave.call1((&loop_, slf))?;
        if let Some(outer) = &outer {
            enter.call1((&loop_, outer))?;
        }
        let outcome = match step {
            Step::Yielded(value) => {
                Self::wait(slf, &value)?;
                return Ok(a.running.clone_ref(py));
            }
            Step::Returned => {
                let cancel = Self::pending_cancel(slf)?;
                if cancel.is_none() && slf.borrow().callbacks.is_none() {
                    slf.borrow_mut().finished = true; // the usual end: answered at once
                    return Ok(py.None());
                }
                Self::end(slf, cancel)?
            }
            Step::Raised(e) => Self::raised(slf, e, false)?,
        };
        Ok(outcome.unwrap_or_else(|| py.None()))
    }

    #[pyo3(signature = (exc=None))]
    fn _step(slf: &Bound<'_, Self>, exc: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        Self::step_with(slf, exc, false)
    }

    /// A Signal it waits on is done: the next step, in the task's context (the
    /// signal's loop callback runs in none).
    fn _signalled(slf: &Bound<'_, Self>, signal: &Bound<'_, Signal>) -> PyResult<()> {
        Self::signalled(slf, signal)
    }

    fn _wakeup(slf: &Bound<'_, Self>, future: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        match future.call_method0(intern!(py, "result")) {
            Ok(_) => Self::_step(slf, None),
            Err(e) => Self::_step(slf, Some(e.into_value(py).into_bound(py).into_any())),
        }
    }

    // -- what code inside the task may ask of it ------------------------------

    #[pyo3(signature = (msg=None))]
    fn cancel(slf: &Bound<'_, Self>, msg: Option<Py<PyAny>>) -> PyResult<bool> {
        let py = slf.py();
        let waiter = {
            let mut t = slf.borrow_mut();
            if t.finished {
                return Ok(false);
            }
            t.cancel_requests += 1;
            t.fut_waiter.as_ref().map(|w| w.clone_ref(py))
        };
        if let Some(w) = waiter {
            let message = msg.as_ref().map(|m| m.clone_ref(py));
            if cancel_future(w.bind(py), message)? {
                // the wakeup throws the CancelledError into the coroutine
                return Ok(true);
            }
        }
        // running, or about to run: the next step delivers it
        let mut t = slf.borrow_mut();
        t.must_cancel = true;
        t.cancel_message = msg;
        Ok(true)
    }

    fn cancelling(&self) -> i64 {
        self.cancel_requests
    }

    fn uncancel(&mut self) -> i64 {
        if self.cancel_requests > 0 {
            self.cancel_requests -= 1;
            if self.cancel_requests == 0 {
                self.must_cancel = false;
            }
        }
        self.cancel_requests
    }

    fn done(&self) -> bool {
        self.finished
    }

    fn cancelled(&self) -> bool {
        self.cancelled
    }

    fn result(&self, py: Python<'_>) -> PyResult<()> {
        if !self.finished {
            return Err(not_done(py));
        }
        match &self.outcome {
            Some(o) => Err(PyErr::from_value(o.bind(py).clone())),
            None => Ok(()),
        }
    }

    fn exception(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if !self.finished {
            return Err(not_done(py));
        }
        match &self.outcome {
            Some(o) if self.cancelled => Err(PyErr::from_value(o.bind(py).clone())),
            other => Ok(other.as_ref().map(|o| o.clone_ref(py))),
        }
    }

    #[pyo3(signature = (r#fn, *, context=None))]
    fn add_done_callback(
        slf: &Bound<'_, Self>,
        r#fn: Py<PyAny>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let loop_ = {
            let mut t = slf.borrow_mut();
            if !t.finished {
                t.callbacks
                    .get_or_insert_with(Vec::new)
                    .push((r#fn, context));
                return Ok(());
            }
            t.loop_.as_ref().map(|l| l.clone_ref(py)).ok_or_else(gone)?
        };
        call_soon(
            loop_.bind(py),
            r#fn.bind(py),
            slf.as_any(),
            context.as_ref(),
        )
    }

    fn remove_done_callback(slf: &Bound<'_, Self>, r#fn: &Bound<'_, PyAny>) -> PyResult<usize> {
        let py = slf.py();
        let callbacks = match slf.borrow_mut().callbacks.take() {
            Some(c) => c,
            None => return Ok(0),
        };
        let before = callbacks.len();
        let mut kept = Vec::with_capacity(before);
        for (f, c) in callbacks {
            if !f.bind(py).eq(r#fn)? {
                kept.push((f, c));
            }
        }
        let removed = before - kept.len();
        slf.borrow_mut().callbacks = Some(kept);
        Ok(removed)
    }

    /// What `done` is told of besides the outcome: the request's Exchange, for
    /// whoever asks which request a task serves (the worker's loop watch).
    #[getter]
    fn arg(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.arg.as_ref().map(|a| a.clone_ref(py))
    }

    fn get_coro(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.coro.as_ref().map(|c| c.clone_ref(py))
    }

    fn get_loop(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.loop_.as_ref().map(|l| l.clone_ref(py))
    }

    fn get_context(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.context.as_ref().map(|c| c.clone_ref(py))
    }

    fn get_name(&mut self) -> String {
        self.name
            .get_or_insert_with(|| {
                format!("RequestTask-{}", NUMBERS.fetch_add(1, Ordering::Relaxed))
            })
            .clone()
    }

    fn set_name(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.name = Some(value.str()?.to_string());
        Ok(())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let (name, state, coro) = {
            let mut t = slf.borrow_mut();
            let name = t.get_name();
            let state = if t.finished { "finished" } else { "pending" };
            (name, state, t.coro.as_ref().map(|c| c.clone_ref(py)))
        };
        let coro = match coro {
            Some(c) => c.bind(py).repr()?.to_string(),
            None => "None".to_string(),
        };
        Ok(format!("<RequestTask {name} {state} coro={coro}>"))
    }

    // -- what anyio reads of a task --------------------------------------------

    #[getter]
    fn _fut_waiter(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.fut_waiter.as_ref().map(|w| w.clone_ref(py))
    }

    #[getter]
    fn _must_cancel(&self) -> bool {
        self.must_cancel
    }

    #[getter]
    fn _loop(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.get_loop(py)
    }

    #[getter]
    fn _callbacks<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let Some(callbacks) = &self.callbacks else {
            return Ok(None);
        };
        let list = PyList::empty(py);
        for (f, c) in callbacks {
            let context = c.as_ref().map_or_else(|| py.None(), |c| c.clone_ref(py));
            list.append(PyTuple::new(py, [f.clone_ref(py), context])?)?;
        }
        Ok(Some(list))
    }

    // -- the garbage collector ---------------------------------------------------

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for obj in [
            &self.loop_,
            &self.coro,
            &self.notify,
            &self.arg,
            &self.context,
            &self.fut_waiter,
            &self.cancel_message,
            &self.outcome,
        ] {
            visit.call(obj)?;
        }
        if let Some(callbacks) = &self.callbacks {
            for (f, c) in callbacks {
                visit.call(f)?;
                visit.call(c)?;
            }
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.loop_ = None;
        self.coro = None;
        self.notify = None;
        self.arg = None;
        self.context = None;
        self.fut_waiter = None;
        self.cancel_message = None;
        self.outcome = None;
        self.callbacks = None;
    }
}

fn not_done(py: Python<'_>) -> PyErr {
    match asyncio(py) {
        Ok(a) => match a.invalid_state.bind(py).call1(("the task is not done",)) {
            Ok(e) => PyErr::from_value(e),
            Err(e) => e,
        },
        Err(e) => e,
    }
}
