//! CycleCore: the ASGI http cycle's send() for the response most applications send,
//! one `http.response.start` and one `http.response.body` without more_body.
//!
//! The start message is kept; the body message encodes and writes the whole
//! response in one call into the exchange and returns an awaitable that is already
//! done. Every other message, and every case this does not take (trailers, a body
//! to pace, a closed connection, a body that is not bytes), goes to the Python
//! subclass's `_send_other(message)`, which does what send() did before.

use super::connection::FlowCore;
use super::exchange::ExchangeCore;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use pyo3::PyTraverseError;

/// The part of an ASGI http cycle every request uses. See the module docs.
#[pyclass(module = "tremolo._core", subclass)]
pub struct CycleCore {
    #[pyo3(get)]
    ex: Option<Py<ExchangeCore>>,
    /// what send() returns when it did its work at once
    #[pyo3(get)]
    done: Option<Py<PyAny>>,
    /// the http.response.start message, once sent
    #[pyo3(get, set)]
    head: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    started: bool,
    #[pyo3(get, set)]
    pub complete: bool,
    /// resolved when the exchange ends (for a receive() waiting for the disconnect)
    #[pyo3(get, set)]
    finished: Option<Py<PyAny>>,
    /// why reading the request body failed, if it did
    #[pyo3(get, set)]
    pub input_error: Option<Py<PyAny>>,
}

impl CycleCore {
    /// Whether the connection is closed (then the Python side answers).
    fn closed(py: Python<'_>, ex: &Py<ExchangeCore>) -> PyResult<bool> {
        match ex.bind(py).borrow().flow_ref(py) {
            Some(f) => Ok(f.cast::<FlowCore>()?.borrow().closed),
            None => Ok(true),
        }
    }
}

#[pymethods]
impl CycleCore {
    #[new]
    fn new(ex: Py<ExchangeCore>, done: Py<PyAny>) -> Self {
        CycleCore {
            ex: Some(ex),
            done: Some(done),
            head: None,
            started: false,
            complete: false,
            finished: None,
            input_error: None,
        }
    }

    fn send<'py>(
        slf: &Bound<'py, Self>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let other = || slf.call_method1(intern!(py, "_send_other"), (message,));
        let Ok(message_dict) = message.cast::<PyDict>() else {
            return other();
        };
        let (ex, done, head, started, blocked) = {
            let c = slf.borrow();
            let (Some(ex), Some(done)) = (&c.ex, &c.done) else {
                return other();
            };
            (
                ex.clone_ref(py),
                done.clone_ref(py),
                c.head.as_ref().map(|h| h.clone_ref(py)),
                c.started,
                c.input_error.is_some(),
            )
        };
        if blocked {
            return other();
        }
        let Some(kind) = message_dict.get_item(intern!(py, "type"))? else {
            return other();
        };
        if head.is_none() {
            if kind.eq(intern!(py, "http.response.start"))? && !Self::closed(py, &ex)? {
                slf.borrow_mut().head = Some(message.clone().unbind());
                return Ok(done.into_bound(py));
            }
            return other();
        }
        let Some(head) = head else {
            return other();
        };
        if started || !kind.eq(intern!(py, "http.response.body"))? {
            return other();
        }
        if let Some(more) = message_dict.get_item(intern!(py, "more_body"))? {
            if more.is_truthy()? {
                return other();
            }
        }
        let Ok(head) = head.bind(py).cast::<PyDict>().cloned() else {
            return other();
        };
        if let Some(trailers) = head.get_item(intern!(py, "trailers"))? {
            if trailers.is_truthy()? {
                return other();
            }
        }
        let body = match message_dict.get_item(intern!(py, "body"))? {
            Some(b) => match b.cast_into::<PyBytes>() {
                Ok(b) => b,
                Err(_) => return other(),
            },
            None => PyBytes::new(py, b""),
        };
        if Self::closed(py, &ex)? {
            return other();
        }
        let ex = ex.bind(py);
        // a body within buffer_size is never held back by a speed limit; a larger
        // one may be (the Python side paces it)
        if body.as_bytes().len() > ex.borrow().buffer_size(py)? {
            return other();
        }
        let Some(status) = head.get_item(intern!(py, "status"))? else {
            return other();
        };
        let headers = match head.get_item(intern!(py, "headers"))? {
            Some(h) => h,
            None => PyTuple::empty(py).into_any(),
        };
        ExchangeCore::respond(ex, status.extract()?, &headers, &body, None)?;
        let finished = {
            let mut c = slf.borrow_mut();
            c.started = true;
            c.complete = true;
            c.finished.is_some()
        };
        if finished {
            slf.call_method0(intern!(py, "_done"))?;
        }
        Ok(done.into_bound(py))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.ex)?;
        visit.call(&self.done)?;
        visit.call(&self.head)?;
        visit.call(&self.finished)?;
        visit.call(&self.input_error)?;
        Ok(())
    }

    fn __clear__(&mut self) {
        self.ex = None;
        self.done = None;
        self.head = None;
        self.finished = None;
        self.input_error = None;
    }
}
