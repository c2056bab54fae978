//! RequestCall: a request's whole cycle as one coroutine stand-in that the
//! RequestTask steps directly (task.rs), for the native framework's plain routes
//! (plain.rs) and for ASGI http (asgi.rs).
//!
//! Before, a request ran three Python coroutines: the adapter's, the cycle's
//! (`serve`) and the application's. Here the application's coroutine (a plain
//! handler's, an ASGI app's) is driven from Rust and what comes before it (its
//! arguments) and after it (the answer, the checks) is Rust too in the usual case.
//! Everything else goes to a Python coroutine of the adapter, which the call then
//! drives instead ("the rest").
//!
//! The call ends the way a coroutine does for the task; for whoever looks into the
//! task's coroutine (anyio, inspect) it shows the driven coroutine's `cr_*`
//! attributes, and it refuses to be stepped from inside itself as a running
//! coroutine does.

use super::asgi::{self, AsgiParts};
use super::exchange::ExchangeCore;
use super::parser::RequestHead;
use super::plain::{self, PlainParts};
use super::signal::Signal;
use super::task::{self, Sent, Step};
use super::wsgi_call::{self, WsgiParts};
use pyo3::exceptions::{PyAttributeError, PyRuntimeError, PyStopIteration, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};
use pyo3::PyTraverseError;

static COROUTINE_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Whether `awaitable` is a coroutine (which the call can send into).
fn is_coroutine(awaitable: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = awaitable.py();
    let t = COROUTINE_TYPE.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("types")?.getattr("CoroutineType")?.unbind())
    })?;
    Ok(awaitable.is_exact_instance(t.bind(py)))
}

/// Whose cycle it is, and what that cycle holds.
pub enum Parts {
    Plain(PlainParts),
    Asgi(AsgiParts),
    Wsgi(WsgiParts),
}

/// What a cycle's start led to.
pub enum Begun<'py> {
    /// the application's call returned this to await
    Awaits(Bound<'py, PyAny>),
    /// the application's call raised
    Raised(PyErr),
    /// the application runs elsewhere (a WSGI thread): its end sets this
    Waits(Bound<'py, Signal>),
    /// the request is answered already
    Answered,
}

impl<'py> From<Result<Bound<'py, PyAny>, PyErr>> for Begun<'py> {
    fn from(called: Result<Bound<'py, PyAny>, PyErr>) -> Self {
        match called {
            Ok(awaitable) => Begun::Awaits(awaitable),
            Err(e) => Begun::Raised(e),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Stage {
    /// not sent into yet
    Start,
    /// the application's coroutine runs
    App,
    /// the Signal of an application running elsewhere is to be yielded, or was
    Wait,
    Waited,
    /// a Python coroutine of the adapter finishes the request
    Rest,
    Done,
}

/// A request's cycle, as a coroutine: see the module docs.
#[pyclass(module = "tremolo._core")]
pub struct RequestCall {
    pub parts: Parts,
    /// the coroutine being driven
    inner: Option<Py<PyAny>>,
    stage: Stage,
    /// being stepped now
    running: bool,
}

impl RequestCall {
    pub fn new(parts: Parts) -> Self {
        RequestCall {
            parts,
            inner: None,
            stage: Stage::Start,
            running: false,
        }
    }

    /// Calls the application (or has it called).
    fn begin<'py>(slf: &Bound<'py, Self>) -> PyResult<Begun<'py>> {
        let kind = match slf.borrow().parts {
            Parts::Plain(_) => 0,
            Parts::Asgi(_) => 1,
            Parts::Wsgi(_) => 2,
        };
        match kind {
            0 => plain::begin(slf).map(Begun::from),
            1 => asgi::begin(slf).map(Begun::from),
            _ => wsgi_call::begin(slf),
        }
    }

    /// The adapter's coroutine that awaits an awaitable that is not a coroutine
    /// and finishes the request.
    fn rest<'py>(
        slf: &Bound<'py, Self>,
        awaitable: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match slf.borrow().parts {
            Parts::Plain(_) => None,
            Parts::Asgi(_) => Some(true),
            Parts::Wsgi(_) => Some(false),
        }
        .map_or_else(
            || plain::rest(slf, awaitable.clone()),
            |asgi| match asgi {
                true => asgi::rest(slf, awaitable.clone()),
                false => Err(cleared()), // (a WSGI call awaits nothing of the application's)
            },
        )
    }

    /// What the application's end (its result, or what it raised) leads to: None
    /// when the request is done, else the adapter's coroutine that finishes it.
    fn after<'py>(
        slf: &Bound<'py, Self>,
        outcome: Result<Bound<'py, PyAny>, PyErr>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let kind = match slf.borrow().parts {
            Parts::Plain(_) => 0,
            Parts::Asgi(_) => 1,
            Parts::Wsgi(_) => 2,
        };
        match kind {
            0 => plain::after(slf, outcome),
            1 => asgi::after(slf, outcome),
            _ => wsgi_call::after(slf, outcome.map(|_| ())),
        }
    }

    /// One step, sending None (or throwing `exc`) into the driven coroutine, in
    /// `context` if given: what it yields, or how the request's cycle ended. The
    /// task calls this directly (a RequestCall is its coroutine's stand-in).
    pub fn advance<'py>(
        slf: &Bound<'py, Self>,
        context: Option<&Bound<'py, PyAny>>,
        exc: Option<&Bound<'py, PyAny>>,
    ) -> Step<'py> {
        {
            let mut c = slf.borrow_mut();
            if c.running {
                // (stepped from inside its own handler: as a running coroutine says)
                return Step::Raised(PyValueError::new_err(
                    "the request's cycle is already running",
                ));
            }
            c.running = true;
        }
        let step = match Self::advance_or_err(slf, context, exc) {
            Ok(step) => step,
            Err(e) => {
                Self::close_up(slf);
                Step::Raised(e)
            }
        };
        slf.borrow_mut().running = false;
        step
    }

    fn advance_or_err<'py>(
        slf: &Bound<'py, Self>,
        context: Option<&Bound<'py, PyAny>>,
        exc: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Step<'py>> {
        let py = slf.py();
        let mut exc = exc.cloned();
        if slf.borrow().stage == Stage::Start {
            if let Some(e) = exc {
                return Err(PyErr::from_value(e));
            }
            let (next, stage) = match Self::begin(slf)? {
                Begun::Awaits(awaitable) if is_coroutine(&awaitable)? => (awaitable, Stage::App),
                Begun::Awaits(awaitable) => (Self::rest(slf, awaitable)?, Stage::Rest),
                Begun::Waits(signal) => (signal.into_any(), Stage::Wait),
                Begun::Raised(e) => match Self::after(slf, Err(e))? {
                    Some(next) => (next, Stage::Rest),
                    None => {
                        Self::close_up(slf);
                        return Ok(Step::Returned);
                    }
                },
                Begun::Answered => {
                    Self::close_up(slf);
                    return Ok(Step::Returned);
                }
            };
            let mut c = slf.borrow_mut();
            c.inner = Some(next.unbind());
            c.stage = stage;
        }
        loop {
            let (inner, stage) = {
                let c = slf.borrow();
                (c.inner.as_ref().map(|i| i.clone_ref(py)), c.stage)
            };
            let Some(inner) = inner.filter(|_| stage != Stage::Done) else {
                return Ok(Step::Returned);
            };
            let outcome = match stage {
                Stage::Wait if exc.is_none() => {
                    // yielded as an await yields a future: the task resumes the call
                    // once it is set (or throws in its cancellation)
                    let signal = inner.into_bound(py);
                    signal.cast::<Signal>()?.borrow_mut().yielded_now();
                    slf.borrow_mut().stage = Stage::Waited;
                    return Ok(Step::Yielded(signal));
                }
                Stage::Wait | Stage::Waited => match exc.take() {
                    Some(e) => Err(PyErr::from_value(e)),
                    None => Ok(py.None().into_bound(py)),
                },
                _ => match task::send(inner.bind(py), context, exc.as_ref()) {
                    Sent::Yielded(v) => return Ok(Step::Yielded(v)),
                    Sent::Returned(v) if stage == Stage::App => Ok(v),
                    Sent::Raised(e) if stage == Stage::App => Err(e),
                    Sent::Returned(_) => {
                        Self::close_up(slf);
                        return Ok(Step::Returned);
                    }
                    Sent::Raised(e) => return Err(e),
                },
            };
            let next = Self::after(slf, outcome)?;
            let mut c = slf.borrow_mut();
            c.stage = Stage::Rest;
            match next {
                Some(next) => c.inner = Some(next.unbind()),
                None => {
                    drop(c);
                    Self::close_up(slf);
                    return Ok(Step::Returned);
                }
            }
            exc = None;
        }
    }

    /// Done: what the parts hold goes (they refer to the request and back), but
    /// the coroutine it drove stays, for whoever looks at it (see __getattr__).
    fn close_up(slf: &Bound<'_, Self>) {
        let mut c = slf.borrow_mut();
        c.stage = Stage::Done;
        match &mut c.parts {
            Parts::Plain(p) => p.release(),
            Parts::Asgi(p) => p.release(),
            Parts::Wsgi(p) => p.release(),
        }
    }

    /// A step as a coroutine's send() tells it.
    fn outcome(step: Step<'_>) -> PyResult<Bound<'_, PyAny>> {
        match step {
            Step::Yielded(v) => Ok(v),
            Step::Returned => Err(PyStopIteration::new_err(())),
            Step::Raised(e) => Err(e),
        }
    }
}

/// What the requests of `ex`'s connection share that the adapter put in the
/// protocol's `context` under `key` (worked out by its first request), and the
/// request's head; None until it is there.
pub fn connection_known<'py>(
    ex: &Bound<'py, ExchangeCore>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<(Bound<'py, PyAny>, Py<RequestHead>)>> {
    let py = ex.py();
    let x = ex.borrow();
    let protocol = x.protocol_ref(py).ok_or_else(cleared)?;
    let context = protocol.getattr(intern!(py, "context"))?;
    let context = context.cast::<PyDict>()?;
    Ok(match (context.get_item(key)?, x.head_ref()) {
        (Some(known), Some(head)) => Some((known, head.clone_ref(py))),
        _ => None,
    })
}

/// The error of a call whose parts were let go (by the garbage collector).
pub fn cleared() -> PyErr {
    PyRuntimeError::new_err("the request cycle was cleared")
}

#[pymethods]
impl RequestCall {
    /// As a coroutine's send(None) (there is nothing to send into it).
    fn send<'py>(slf: &Bound<'py, Self>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if !value.is_none() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "a request's cycle is sent None only",
            ));
        }
        Self::outcome(Self::advance(slf, None, None))
    }

    #[pyo3(signature = (typ, val=None, _tb=None))]
    fn throw<'py>(
        slf: &Bound<'py, Self>,
        typ: &Bound<'py, PyAny>,
        val: Option<&Bound<'py, PyAny>>,
        _tb: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // throw(exception) or the old throw(type, value)
        let exc = match val {
            Some(v) if !v.is_none() => typ.call1((v,))?,
            _ if typ.is_instance_of::<pyo3::types::PyType>() => typ.call0()?,
            _ => typ.clone(),
        };
        Self::outcome(Self::advance(slf, None, Some(&exc)))
    }

    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let inner = slf.borrow().inner.as_ref().map(|i| i.clone_ref(py));
        Self::close_up(slf);
        if let Some(inner) = inner {
            inner.call_method0(py, intern!(py, "close"))?;
        }
        Ok(())
    }

    /// What code that looks into a task's coroutine reads (anyio asks for
    /// cr_running and cr_frame through inspect.getcoroutinestate) is the driven
    /// coroutine's: the application's, then the adapter's.
    fn __getattr__<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let inner = slf.borrow().inner.as_ref().map(|i| i.clone_ref(py));
        match inner {
            Some(inner) if name.to_str()?.starts_with("cr_") => inner.into_bound(py).getattr(name),
            _ => Err(PyAttributeError::new_err(name.clone().unbind())),
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        match &self.parts {
            Parts::Plain(p) => p.traverse(&visit)?,
            Parts::Asgi(p) => p.traverse(&visit)?,
            Parts::Wsgi(p) => p.traverse(&visit)?,
        }
        visit.call(&self.inner)
    }

    fn __clear__(&mut self) {
        match &mut self.parts {
            Parts::Plain(p) => p.release(),
            Parts::Asgi(p) => p.release(),
            Parts::Wsgi(p) => p.release(),
        }
        self.inner = None;
    }
}
