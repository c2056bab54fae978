//! Signal: a one-shot Future for what a protocol waits on per message (the next
//! WebSocket message), cheap when the waiter is a RequestTask.
//!
//! An asyncio Future costs a WebSocket echo a fifth of its work: its creation, the
//! task's done callback with the task's context, the callback's trip through the
//! loop and its result() call. A Signal waited on by a RequestTask (task.rs) keeps
//! the task itself instead of a callback, and wakes it with one loop callback. For
//! any other awaiter (an asyncio.Task, say, when the wait runs inside wait_for) it
//! is a Future as asyncio knows one: `_asyncio_future_blocking`, get_loop(),
//! done callbacks with their contexts, result(), cancel().

use super::task::{self, RequestTask};
use pyo3::exceptions::PyRuntimeError;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::PyTraverseError;

fn cancelled_error(py: Python<'_>, message: Option<&Py<PyAny>>) -> PyResult<PyErr> {
    let class = &task::asyncio(py)?.cancelled_error;
    let error = match message {
        Some(m) => class.bind(py).call1((m.bind(py),))?,
        None => class.bind(py).call0()?,
    };
    Ok(PyErr::from_value(error))
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Pending,
    Set,
    Cancelled,
}

/// A one-shot Future: see the module docs.
#[pyclass(module = "tremolo._core")]
pub struct Signal {
    loop_: Option<Py<PyAny>>,
    state: State,
    cancel_message: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    _asyncio_future_blocking: bool,
    /// yielded to its awaiter once already
    yielded: bool,
    /// the RequestTask waiting on it, woken without a done callback
    task: Option<Py<RequestTask>>,
    /// done callbacks of other awaiters, and their contexts
    callbacks: Vec<task::Callback>,
}

impl Signal {
    /// A RequestTask waits on it: woken by fire(), without a callback.
    pub fn wait_by(&mut self, task: Py<RequestTask>) {
        self._asyncio_future_blocking = false;
        self.task = Some(task);
    }

    /// Awaited the way a Future is (yielded from an await).
    pub fn blocking(&self) -> bool {
        self._asyncio_future_blocking
    }

    /// Yielded by its awaiter's driver (a RequestCall), as `__next__` yields it.
    pub fn yielded_now(&mut self) {
        self.yielded = true;
        self._asyncio_future_blocking = true;
    }

    pub fn same_loop(&self, loop_: &Bound<'_, PyAny>) -> bool {
        self.loop_
            .as_ref()
            .is_some_and(|l| l.bind(loop_.py()).is(loop_))
    }

    /// What awaiting it ends with: None, or the CancelledError.
    pub fn outcome(&self, py: Python<'_>) -> PyResult<Option<PyErr>> {
        match self.state {
            State::Set => Ok(None),
            State::Cancelled => Ok(Some(cancelled_error(py, self.cancel_message.as_ref())?)),
            State::Pending => Err(PyRuntimeError::new_err("the signal is not set yet")),
        }
    }

    /// Done: the waiting task steps (at once when `now` and no task is running,
    /// else from the loop), and the done callbacks run from the loop.
    fn fire(slf: &Bound<'_, Self>, now: bool) -> PyResult<()> {
        let py = slf.py();
        let (loop_, task, callbacks) = {
            let mut s = slf.borrow_mut();
            let Some(l) = &s.loop_ else {
                return Ok(());
            };
            (
                l.clone_ref(py),
                s.task.take(),
                std::mem::take(&mut s.callbacks),
            )
        };
        let loop_ = loop_.bind(py);
        if let Some(task) = task {
            if now && task::current(loop_)?.is_none() {
                RequestTask::signalled(task.bind(py), slf)?;
            } else {
                let resume = task.bind(py).getattr(intern!(py, "_signalled"))?;
                loop_.call_method1(intern!(py, "call_soon"), (resume, slf))?;
            }
        }
        for (func, context) in callbacks {
            task::call_soon(loop_, func.bind(py), slf.as_any(), context.as_ref())?;
        }
        Ok(())
    }
}

/// A new Signal of `loop`: what `Signal(loop)` makes, for less than a class call.
#[pyfunction]
pub fn signal(r#loop: Py<PyAny>) -> Signal {
    Signal::new(r#loop)
}

#[pymethods]
impl Signal {
    #[new]
    fn new(r#loop: Py<PyAny>) -> Self {
        Signal {
            loop_: Some(r#loop),
            state: State::Pending,
            cancel_message: None,
            _asyncio_future_blocking: false,
            yielded: false,
            task: None,
            callbacks: Vec::new(),
        }
    }

    /// Wakes whoever waits on it (once; later calls do nothing). With `now`, a
    /// RequestTask waiting on it takes its next step before this returns (when no
    /// other task is running), not at the loop's next turn: for a protocol's
    /// data_received, whose caller has nothing left to do but return.
    #[pyo3(signature = (now=false))]
    pub fn set(slf: &Bound<'_, Self>, now: bool) -> PyResult<()> {
        {
            let mut s = slf.borrow_mut();
            if s.state != State::Pending {
                return Ok(());
            }
            s.state = State::Set;
        }
        Self::fire(slf, now)
    }

    #[pyo3(signature = (msg=None))]
    fn cancel(slf: &Bound<'_, Self>, msg: Option<Py<PyAny>>) -> PyResult<bool> {
        {
            let mut s = slf.borrow_mut();
            if s.state != State::Pending {
                return Ok(false);
            }
            s.state = State::Cancelled;
            s.cancel_message = msg;
        }
        Self::fire(slf, false)?;
        Ok(true)
    }

    fn done(&self) -> bool {
        self.state != State::Pending
    }

    fn cancelled(&self) -> bool {
        self.state == State::Cancelled
    }

    fn result(&self, py: Python<'_>) -> PyResult<()> {
        match self.outcome(py)? {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    fn exception(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.outcome(py)? {
            None => Ok(None),
            Some(e) => Err(e),
        }
    }

    fn get_loop(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.loop_.as_ref().map(|l| l.clone_ref(py))
    }

    #[pyo3(signature = (r#fn, *, context=None))]
    fn add_done_callback(
        slf: &Bound<'_, Self>,
        r#fn: Py<PyAny>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        slf.borrow_mut().callbacks.push((r#fn, context));
        if slf.borrow().state != State::Pending {
            Self::fire(slf, false)?;
        }
        Ok(())
    }

    fn remove_done_callback(slf: &Bound<'_, Self>, r#fn: &Bound<'_, PyAny>) -> PyResult<usize> {
        let py = slf.py();
        let kept = {
            let mut s = slf.borrow_mut();
            std::mem::take(&mut s.callbacks)
        };
        let before = kept.len();
        let mut left = Vec::with_capacity(before);
        for (func, context) in kept {
            if !func.bind(py).eq(r#fn)? {
                left.push((func, context));
            }
        }
        let removed = before - left.len();
        slf.borrow_mut().callbacks = left;
        Ok(removed)
    }

    fn __await__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// As a Future's `__await__`: yields itself while pending, then ends with its
    /// outcome.
    fn __next__<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, Self>>> {
        let py = slf.py();
        let mut s = slf.borrow_mut();
        if s.state == State::Pending {
            if s.yielded {
                return Err(PyRuntimeError::new_err("await wasn't used with future"));
            }
            s.yielded = true;
            s._asyncio_future_blocking = true;
            return Ok(Some(slf.clone()));
        }
        match s.outcome(py)? {
            None => Ok(None), // (the iterator's end: cheaper than raising StopIteration)
            Some(e) => Err(e),
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.loop_)?;
        visit.call(&self.cancel_message)?;
        visit.call(&self.task)?;
        for (func, context) in &self.callbacks {
            visit.call(func)?;
            visit.call(context)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.loop_ = None;
        self.cancel_message = None;
        self.task = None;
        self.callbacks.clear();
    }
}
