//! AsgiHandle: the ASGI adapter's handle(exchange), and the parts of the
//! RequestCall (call.rs) it returns for an http request.
//!
//! The call makes the request's Cycle (a Python subclass of CycleCore, cycle.rs),
//! its scope (in one call into the request head, from what the connection's
//! requests share: `protocol.context["asgi"]`, with what a trusted proxy's fields
//! say), and calls the application; the
//! call drives the application's coroutine. When it ends having sent its whole
//! response, the request is done without a Python frame. Everything else goes to
//! the adapter's Python methods by name: `_upgrade` (a request asking for an
//! upgrade), `scope` (the first request of a connection), `_await` (an
//! application that returns an awaitable that is not a coroutine), `_ended` (an application that returned without a whole response,
//! or after its request body failed) and `_failed` (an application that raised).

use super::call::{cleared, connection_known, Parts, RequestCall};
use super::cycle::CycleCore;
use super::exchange::ExchangeCore;
use super::forwarded::Proxies;
use super::task;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::PyTraverseError;

/// The ASGI adapter's handle(): see the module docs.
#[pyclass(module = "tremolo._core")]
pub struct AsgiHandle {
    adapter: Py<PyAny>,
    app: Py<PyAny>,
    cycle_class: Py<PyAny>,
    /// what send() returns when it did its work at once
    done: Py<PyAny>,
    /// the scope's "asgi" and "state" (each request gets copies)
    asgi: Py<PyDict>,
    state: Py<PyDict>,
}

#[pymethods]
impl AsgiHandle {
    #[new]
    fn new(
        adapter: Py<PyAny>,
        app: Py<PyAny>,
        cycle_class: Py<PyAny>,
        done: Py<PyAny>,
        asgi: Py<PyDict>,
        state: Py<PyDict>,
    ) -> Self {
        AsgiHandle {
            adapter,
            app,
            cycle_class,
            done,
            asgi,
            state,
        }
    }

    /// The request's coroutine: a RequestCall for http, else the adapter's.
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        ex: &Bound<'py, ExchangeCore>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        if ex.borrow().upgrade {
            let adapter = slf.borrow().adapter.clone_ref(py);
            let other = adapter
                .bind(py)
                .call_method1(intern!(py, "_upgrade"), (ex,))?;
            if !other.is_none() {
                return Ok(other);
            }
        }
        let call = RequestCall::new(Parts::Asgi(AsgiParts {
            handle: slf.clone().unbind(),
            ex: ex.clone().unbind(),
            cycle: None,
        }));
        Ok(Bound::new(py, call)?.into_any())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.adapter)?;
        visit.call(&self.app)?;
        visit.call(&self.cycle_class)?;
        visit.call(&self.done)?;
        visit.call(&self.asgi)?;
        visit.call(&self.state)
    }
}

/// What an ASGI http RequestCall holds.
pub struct AsgiParts {
    handle: Py<AsgiHandle>,
    ex: Py<ExchangeCore>,
    cycle: Option<Py<PyAny>>,
}

impl AsgiParts {
    pub fn release(&mut self) {
        self.cycle = None;
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.handle)?;
        visit.call(&self.ex)?;
        visit.call(&self.cycle)
    }
}

/// The handle, the exchange and the Cycle (once made).
type Held = (Py<AsgiHandle>, Py<ExchangeCore>, Option<Py<PyAny>>);

/// An ASGI call's parts, as references of their own.
fn parts(slf: &Bound<'_, RequestCall>) -> PyResult<Held> {
    let py = slf.py();
    match &slf.borrow().parts {
        Parts::Asgi(p) => Ok((
            p.handle.clone_ref(py),
            p.ex.clone_ref(py),
            p.cycle.as_ref().map(|c| c.clone_ref(py)),
        )),
        _ => Err(cleared()),
    }
}

/// The request's scope: made here from what its connection's requests share, or
/// by the adapter when that is not known yet.
fn scope<'py>(
    handle: &Bound<'py, AsgiHandle>,
    ex: &Bound<'py, ExchangeCore>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = handle.py();
    let h = handle.borrow();
    if let Some((known, head)) = connection_known(ex, intern!(py, "asgi"))? {
        if let Ok(known) = known.cast::<PyTuple>() {
            if known.len() == 3 {
                // (base, extensions, the trusted proxies when the peer is one)
                let (base, extensions) = (known.get_item(0)?, known.get_item(1)?);
                let proxies = known.get_item(2)?;
                return Ok(head
                    .get()
                    .scope(
                        py,
                        base.cast::<PyDict>()?,
                        h.asgi.bind(py),
                        h.state.bind(py),
                        extensions.cast::<PyDict>()?,
                        proxies.cast::<Proxies>().ok(),
                    )?
                    .into_any());
            }
        }
    }
    h.adapter.bind(py).call_method1(intern!(py, "scope"), (ex,))
}

/// Makes the request's Cycle and scope, and calls the application: what it
/// returns is to be awaited.
pub fn begin<'py>(slf: &Bound<'py, RequestCall>) -> PyResult<Result<Bound<'py, PyAny>, PyErr>> {
    let py = slf.py();
    let (handle, ex, _) = parts(slf)?;
    let (handle, ex) = (handle.bind(py), ex.bind(py));
    let (cycle_class, done, app) = {
        let h = handle.borrow();
        (
            h.cycle_class.clone_ref(py),
            h.done.clone_ref(py),
            h.app.clone_ref(py),
        )
    };
    let cycle = cycle_class.bind(py).call1((ex, done))?;
    if let Parts::Asgi(p) = &mut slf.borrow_mut().parts {
        p.cycle = Some(cycle.clone().unbind());
    }
    // (a scope that cannot be made is answered as the application's failure)
    Ok(scope(handle, ex).and_then(|scope| {
        let receive = cycle.getattr(intern!(py, "receive"))?;
        let send = cycle.getattr(intern!(py, "send"))?;
        app.bind(py).call1((scope, receive, send))
    }))
}

/// The adapter's coroutine that awaits what the application returned that is not
/// a coroutine, and ends the request.
pub fn rest<'py>(
    slf: &Bound<'py, RequestCall>,
    awaitable: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    let (handle, _, cycle) = parts(slf)?;
    let adapter = handle.borrow(py).adapter.clone_ref(py);
    adapter.bind(py).call_method1(
        intern!(py, "_await"),
        (cycle.ok_or_else(cleared)?, awaitable),
    )
}

/// The application's end: nothing to do when it sent its whole response and its
/// request body did not fail; a cancellation goes on up; else the adapter's
/// `_ended` or `_failed` answers (and may raise what goes on up).
pub fn after<'py>(
    slf: &Bound<'py, RequestCall>,
    outcome: Result<Bound<'py, PyAny>, PyErr>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = slf.py();
    let (handle, _, cycle) = parts(slf)?;
    let cycle = cycle.ok_or_else(cleared)?.into_bound(py);
    let adapter = handle.borrow(py).adapter.clone_ref(py);
    match outcome {
        Ok(_) => {
            {
                let c = cycle.cast::<CycleCore>()?.borrow();
                if c.complete && c.input_error.is_none() {
                    return Ok(None);
                }
            }
            adapter.call_method1(py, intern!(py, "_ended"), (cycle,))?;
        }
        Err(e) => {
            if e.is_instance(py, task::asyncio(py)?.cancelled_error.bind(py))
                || e.is_instance_of::<pyo3::exceptions::PyGeneratorExit>(py)
            {
                return Err(e);
            }
            adapter.call_method1(py, intern!(py, "_failed"), (cycle, e.into_value(py)))?;
        }
    }
    Ok(None)
}
