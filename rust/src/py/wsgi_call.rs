//! WsgiHandle: the WSGI adapter's handle(exchange), and the parts of the
//! RequestCall (call.rs) it returns for a request without a body.
//!
//! The call makes the request's cycle (a Python subclass of WsgiCycleCore) and its
//! environ (in one call into the request head, from what the connection's requests
//! share: `protocol.context["wsgi"]`, with what a trusted proxy's fields say), queues
//! it for the pool's threads (wsgi_pool.rs) and waits for its Signal; when the
//! thread is done with a body given whole, the request is answered in one write
//! without a Python frame. Everything else goes to the adapter's Python methods by
//! name: `_handle` (a request with a body, or an upgrade), `environ` (the first
//! request of a connection), `_unavailable` (the pool's queue is full), `_finish`
//! (any other end: a streamed body, an error, a file) and `_abandon` (the handler
//! was cancelled while it waited).

use super::call::{cleared, connection_known, Begun, Parts, RequestCall};
use super::exchange::ExchangeCore;
use super::forwarded::Proxies;
use super::signal;
use super::wsgi_cycle::WsgiCycleCore;
use super::wsgi_pool::WsgiPool;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use pyo3::PyTraverseError;

/// The WSGI adapter's handle(): see the module docs.
#[pyclass(module = "tremolo._core")]
pub struct WsgiHandle {
    adapter: Py<PyAny>,
    pool: Py<WsgiPool>,
    cycle_class: Py<PyAny>,
    /// wsgi.input of a request without a body
    empty: Py<PyAny>,
    root: String,
    /// download_rate is set: answers are paced, by the adapter
    paced: bool,
    loop_: Py<PyAny>,
}

#[pymethods]
impl WsgiHandle {
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        adapter: Py<PyAny>,
        pool: Py<WsgiPool>,
        cycle_class: Py<PyAny>,
        empty: Py<PyAny>,
        root: String,
        paced: bool,
        r#loop: Py<PyAny>,
    ) -> Self {
        WsgiHandle {
            adapter,
            pool,
            cycle_class,
            empty,
            root,
            paced,
            loop_: r#loop,
        }
    }

    /// The request's coroutine: a RequestCall for a request without a body, else
    /// the adapter's.
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        ex: &Bound<'py, ExchangeCore>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let usual = {
            let x = ex.borrow();
            !x.upgrade && x.read_to_end(py)?
        };
        if !usual {
            let adapter = slf.borrow().adapter.clone_ref(py);
            return adapter.bind(py).call_method1(intern!(py, "_handle"), (ex,));
        }
        let call = RequestCall::new(Parts::Wsgi(WsgiParts {
            handle: slf.clone().unbind(),
            ex: ex.clone().unbind(),
            cycle: None,
        }));
        Ok(Bound::new(py, call)?.into_any())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.adapter)?;
        visit.call(&self.pool)?;
        visit.call(&self.cycle_class)?;
        visit.call(&self.empty)?;
        visit.call(&self.loop_)
    }
}

/// What a WSGI RequestCall holds.
pub struct WsgiParts {
    handle: Py<WsgiHandle>,
    ex: Py<ExchangeCore>,
    cycle: Option<Py<WsgiCycleCore>>,
}

impl WsgiParts {
    pub fn release(&mut self) {
        self.cycle = None;
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.handle)?;
        visit.call(&self.ex)?;
        visit.call(&self.cycle)
    }
}

type Held = (Py<WsgiHandle>, Py<ExchangeCore>, Option<Py<WsgiCycleCore>>);

fn parts(slf: &Bound<'_, RequestCall>) -> PyResult<Held> {
    let py = slf.py();
    match &slf.borrow().parts {
        Parts::Wsgi(p) => Ok((
            p.handle.clone_ref(py),
            p.ex.clone_ref(py),
            p.cycle.as_ref().map(|c| c.clone_ref(py)),
        )),
        _ => Err(cleared()),
    }
}

/// The request's environ: made here from what its connection's requests share, or
/// by the adapter when that is not known yet.
fn environ<'py>(
    handle: &Bound<'py, WsgiHandle>,
    ex: &Bound<'py, ExchangeCore>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = handle.py();
    let h = handle.borrow();
    let env = match connection_known(ex, intern!(py, "wsgi"))? {
        Some((known, head)) if known.cast::<PyTuple>().is_ok_and(|k| k.len() == 2) => {
            // (base, the trusted proxies when the peer is one)
            let known = known.cast::<PyTuple>()?;
            let base = known.get_item(0)?;
            let proxies = known.get_item(1)?;
            head.get()
                .environ(
                    py,
                    base.cast::<PyDict>()?,
                    &h.root,
                    proxies.cast::<Proxies>().ok(),
                )?
                .into_any()
        }
        _ => h
            .adapter
            .bind(py)
            .call_method1(intern!(py, "environ"), (ex,))?,
    };
    env.set_item(intern!(py, "wsgi.input"), h.empty.bind(py))?;
    Ok(env)
}

/// Makes the request's cycle and environ and queues it: the Signal to wait on, or
/// the 503 the adapter answered when the queue is full.
pub fn begin<'py>(slf: &Bound<'py, RequestCall>) -> PyResult<Begun<'py>> {
    let py = slf.py();
    let (handle, ex, _) = parts(slf)?;
    let (handle, ex) = (handle.bind(py), ex.bind(py));
    let (adapter, pool, cycle_class, loop_) = {
        let h = handle.borrow();
        (
            h.adapter.clone_ref(py),
            h.pool.clone_ref(py),
            h.cycle_class.clone_ref(py),
            h.loop_.clone_ref(py),
        )
    };
    let cycle = cycle_class.bind(py).call1((&adapter, ex))?;
    let cycle = cycle.cast_into::<WsgiCycleCore>()?;
    let env = environ(handle, ex)?;
    let signal = Bound::new(py, signal::signal(loop_))?;
    {
        let mut c = cycle.borrow_mut();
        c.environ = Some(env.unbind());
        c._signal = Some(signal.clone().into_any().unbind());
    }
    if !WsgiPool::submit(pool.bind(py), &cycle)? {
        adapter.call_method1(py, intern!(py, "_unavailable"), (ex,))?;
        return Ok(Begun::Answered);
    }
    if let Parts::Wsgi(p) = &mut slf.borrow_mut().parts {
        p.cycle = Some(cycle.unbind());
    }
    Ok(Begun::Waits(signal))
}

/// Answers a body given whole in one write; false when the answer is anything
/// else (the adapter's `_finish` then does it).
fn answer(
    handle: &Bound<'_, WsgiHandle>,
    ex: &Bound<'_, ExchangeCore>,
    cycle: &Bound<'_, WsgiCycleCore>,
) -> PyResult<bool> {
    let py = handle.py();
    if handle.borrow().paced {
        return Ok(false);
    }
    let (status, fields, body, reason) = {
        let c = cycle.borrow();
        let usual = c.finished
            && c.error.is_none()
            && c.input_error.is_none()
            && c.file.is_none()
            && c.posted == 0
            && !c.started;
        let Some(status) = c.status.filter(|_| usual) else {
            return Ok(false);
        };
        let first = c.first.as_ref().map(|b| b.clone_ref(py));
        let size = first.as_ref().map_or(0, |b| b.as_bytes(py).len());
        if c.length.is_some_and(|n| n != size as u64) {
            return Ok(false); // (the adapter says so)
        }
        (
            status,
            c.fields.clone_ref(py),
            first,
            c.reason.as_ref().map(|r| r.clone_ref(py)),
        )
    };
    let body = match body {
        Some(b) => b.into_bound(py),
        None => PyBytes::new(py, b""),
    };
    {
        let x = ex.borrow();
        if x.phase != super::exchange::RECEIVED {
            return Ok(false);
        }
        let head_only = x.head_ref().is_some_and(|h| h.get().is_head());
        if body.as_bytes().is_empty() && (head_only || status == 304) {
            return Ok(false); // (a length is kept for a HEAD: the adapter's rule)
        }
    }
    ExchangeCore::respond(
        ex,
        status,
        fields.bind(py),
        &body,
        reason.as_ref().map(|r| r.as_bytes(py)),
    )?;
    Ok(true)
}

/// The thread's end (or the handler's cancellation while it waited): None when the
/// request is answered, else the adapter's coroutine that finishes it.
pub fn after<'py>(
    slf: &Bound<'py, RequestCall>,
    outcome: Result<(), PyErr>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = slf.py();
    let (handle, ex, cycle) = parts(slf)?;
    let cycle = cycle.ok_or_else(cleared)?.into_bound(py);
    let handle = handle.into_bound(py);
    let adapter = handle.borrow().adapter.clone_ref(py);
    match outcome {
        Ok(()) => {
            if answer(&handle, ex.bind(py), &cycle)? {
                return Ok(None);
            }
            adapter
                .call_method1(py, intern!(py, "_finish"), (cycle,))
                .map(|c| Some(c.into_bound(py)))
        }
        Err(e) => {
            // a 503 when no thread took it yet; else the cancellation goes on up
            let answered = adapter
                .call_method1(py, intern!(py, "_abandon"), (cycle,))?
                .is_truthy(py)?;
            if answered {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}
