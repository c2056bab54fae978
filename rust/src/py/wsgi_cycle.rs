//! WsgiCycleCore: what every WSGI request's run of the application holds, and the
//! part of it every request takes: start_response, the application's call and its
//! usual result in the application's thread, and the wake-up of the handler on the
//! loop when the thread is done.
//!
//! The usual result is a body given whole: a one-item list of bytes, or an
//! iterable whose first piece is as long as the Content-Length the application set
//! and that ends there (how Flask and Django answer). It is kept as `first` and the
//! request is answered in one write once the handler resumes. Any other result goes
//! to the Python subclass's `_iterate(result, iterator, pieces)` with what was taken
//! of it, which streams the rest (wsgi/cycle.py), as does the `write()` callable.
//!
//! Borrows of a cycle never span a call into Python, nor an allocation (a
//! collection may run Python code, which may let the GIL go): the loop's thread
//! and the application's both use it, each holding the GIL while it does.

use super::signal::Signal;
use super::wsgi::wsgi_head;
use pyo3::exceptions::PyRuntimeError;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use pyo3::PyTraverseError;
use std::thread::{self, Thread};

/// One request's run of the application: see the module docs.
#[pyclass(module = "tremolo._core", subclass)]
pub struct WsgiCycleCore {
    #[pyo3(get)]
    adapter: Py<PyAny>,
    /// the request's Exchange
    #[pyo3(get)]
    pub ex: Py<PyAny>,
    app: Py<PyAny>,
    #[pyo3(get, set)]
    pub environ: Option<Py<PyAny>>,
    /// what start_response() was given: the status, its reason phrase when it
    /// has one, the fields but Content-Length, and that length
    #[pyo3(get, set)]
    pub status: Option<u16>,
    #[pyo3(get, set)]
    pub reason: Option<Py<PyBytes>>,
    #[pyo3(get, set)]
    pub fields: Py<PyAny>,
    #[pyo3(get, set)]
    pub length: Option<u64>,
    /// held back: the whole body, sent with a length
    #[pyo3(get, set)]
    pub first: Option<Py<PyBytes>>,
    /// the response's head went out (on the loop), and the body bytes sent
    #[pyo3(get, set)]
    pub started: bool,
    #[pyo3(get, set)]
    sent: u64,
    /// the body bytes the thread queued for the loop to write (streamed)
    #[pyo3(get, set)]
    pub posted: u64,
    /// the thread is done with the application
    #[pyo3(get, set)]
    pub finished: bool,
    /// the loop gave up on the request (its handler was cancelled)
    #[pyo3(get, set)]
    cancelled: bool,
    /// what the application raised, and why reading the request body failed
    #[pyo3(get, set)]
    pub error: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    pub input_error: Option<Py<PyAny>>,
    /// a wsgi.file_wrapper the application returned (sent by the loop)
    #[pyo3(get, set)]
    pub file: Option<Py<PyAny>>,
    /// what the handler waits on
    #[pyo3(get, set)]
    pub _signal: Option<Py<PyAny>>,
    /// the thread running it (what it parks, what the loop unparks)
    thread: Option<Thread>,
}

impl WsgiCycleCore {
    /// The application, to the end of what it returned or to its first piece that
    /// is not the whole body (in the thread; what it raises is kept in `error`).
    pub fn run(slf: &Bound<'_, Self>, me: &Thread) {
        let py = slf.py();
        slf.borrow_mut().thread = Some(me.clone());
        let error = Self::call_app(slf)
            .err()
            .map(|e| e.into_value(py).into_any());
        let mut c = slf.borrow_mut();
        c.error = error;
        c.finished = true;
    }

    /// Whether `piece` would be the whole body: nothing sent or held yet, and as long
    /// as the Content-Length set (or the only item of a list).
    fn whole(&self, piece: &Bound<'_, PyAny>, only: bool) -> bool {
        self.nothing_yet()
            && piece.is_exact_instance_of::<PyBytes>()
            && (only || self.length == Some(piece.len().unwrap_or(0) as u64))
    }

    /// start_response was called and no piece was sent or held yet.
    fn nothing_yet(&self) -> bool {
        self.status.is_some() && self.posted == 0 && self.first.is_none()
    }

    fn call_app(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let (app, environ) = {
            let c = slf.borrow();
            (
                c.app.clone_ref(py),
                c.environ.as_ref().map(|e| e.clone_ref(py)),
            )
        };
        let start_response = slf.getattr(intern!(py, "start_response"))?;
        let result = app.call1(py, (environ, start_response))?.into_bound(py);
        // an iterable the core may take the first piece of: not a list (a one-item
        // one is taken here), a tuple or a file, with a length to check the piece by
        let iterable = match result.cast_exact::<PyList>() {
            Ok(list) => {
                if list.len() == 1 {
                    let item = list.get_item(0)?;
                    let mut c = slf.borrow_mut();
                    if c.whole(&item, true) {
                        c.first = Some(item.cast_into::<PyBytes>()?.unbind());
                        return Ok(());
                    }
                }
                false
            }
            Err(_) => {
                let usual = {
                    let c = slf.borrow();
                    c.nothing_yet() && c.length.is_some()
                };
                usual
                    && !result.is_exact_instance_of::<pyo3::types::PyTuple>()
                    && !result.is_instance(&slf.getattr(intern!(py, "file_wrapper"))?)?
            }
        };
        if !iterable {
            return slf
                .call_method1(intern!(py, "_iterate"), (result,))
                .map(|_| ());
        }
        let outcome = Self::take_whole(slf, &result);
        match outcome {
            Ok(None) => Self::close(&result),
            Ok(Some((it, pieces))) => slf
                .call_method1(intern!(py, "_iterate"), (result, it, pieces))
                .map(|_| ()),
            Err(e) => {
                // (the result is closed whatever happened, as a for loop's finally)
                let _ = Self::close(&result);
                Err(e)
            }
        }
    }

    /// Takes `result`'s first piece as the whole body if it is one and the
    /// iterator ends there: None; else the iterator and the pieces taken.
    fn take_whole<'py>(
        slf: &Bound<'py, Self>,
        result: &Bound<'py, PyAny>,
    ) -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyList>)>> {
        let py = slf.py();
        let it = result.try_iter()?;
        let Some(piece) = it.clone().next() else {
            return Ok(None); // an empty body
        };
        let piece = piece?;
        let pieces = PyList::new(py, [&piece])?;
        if slf.borrow().whole(&piece, false) {
            match it.clone().next() {
                None => {
                    slf.borrow_mut().first = Some(piece.cast_into::<PyBytes>()?.unbind());
                    return Ok(None);
                }
                Some(second) => pieces.append(second?)?,
            }
        }
        Ok(Some((it.into_any(), pieces)))
    }

    fn close(result: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = result.py();
        if let Some(close) = result.getattr_opt(intern!(py, "close"))? {
            close.call0()?;
        }
        Ok(())
    }

    /// The thread is done (on the loop): the handler resumes before this returns.
    pub fn done(slf: &Bound<'_, Self>) -> PyResult<()> {
        let signal = slf.borrow_mut()._signal.take();
        if let Some(signal) = signal {
            Signal::set(signal.bind(slf.py()).cast::<Signal>()?, true)?;
        }
        Ok(())
    }
}

#[pymethods]
impl WsgiCycleCore {
    #[new]
    fn new(adapter: &Bound<'_, PyAny>, ex: Py<PyAny>) -> PyResult<Self> {
        let py = adapter.py();
        Ok(WsgiCycleCore {
            app: adapter.getattr(intern!(py, "app"))?.unbind(),
            adapter: adapter.clone().unbind(),
            ex,
            environ: None,
            status: None,
            reason: None,
            fields: PyList::empty(py).into_any().unbind(),
            length: None,
            first: None,
            started: false,
            sent: 0,
            posted: 0,
            finished: false,
            cancelled: false,
            error: None,
            input_error: None,
            file: None,
            _signal: None,
            thread: None,
        })
    }

    /// PEP 3333's start_response: the write() callable back.
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn start_response<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        match exc_info.filter(|e| !e.is_none()) {
            Some(info) => {
                let sent = {
                    let c = slf.borrow();
                    c.started || c.posted > 0
                };
                if sent {
                    // too late to change the status: the error goes on up
                    let error = info.get_item(1)?;
                    let error =
                        error.call_method1(intern!(py, "with_traceback"), (info.get_item(2)?,))?;
                    return Err(PyErr::from_value(error));
                }
            }
            None if slf.borrow().status.is_some() => {
                return Err(PyRuntimeError::new_err(
                    "start_response called twice without exc_info",
                ));
            }
            None => {}
        }
        let (code, reason, fields, length) = wsgi_head(status, headers)?;
        {
            let mut c = slf.borrow_mut();
            c.status = Some(code);
            c.reason = reason.map(|r| r.unbind());
            c.fields = fields.into_any().unbind();
            c.length = length;
        }
        slf.getattr(intern!(py, "write"))
    }

    /// Sleeps in the thread running it (the GIL let go) until the loop wakes it
    /// (`_unpark`), or spuriously: the caller checks what it waits for again.
    fn _park(slf: &Bound<'_, Self>) -> PyResult<()> {
        let mine = slf.borrow().thread.as_ref().map(|t| t.id()) == Some(thread::current().id());
        if !mine {
            return Err(PyRuntimeError::new_err(
                "a WSGI cycle parks in its own thread only",
            ));
        }
        // (no borrow is held while parked: the loop changes the cycle meanwhile)
        slf.py().detach(thread::park);
        Ok(())
    }

    /// Wakes the thread if it is parked (else its next park returns at once).
    fn _unpark(&self) {
        if let Some(t) = &self.thread {
            t.unpark();
        }
    }

    /// The thread is done (on the loop).
    #[pyo3(name = "done")]
    fn py_done(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::done(slf)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.adapter)?;
        visit.call(&self.ex)?;
        visit.call(&self.app)?;
        visit.call(&self.environ)?;
        visit.call(&self.reason)?;
        visit.call(&self.fields)?;
        visit.call(&self.first)?;
        visit.call(&self.error)?;
        visit.call(&self.input_error)?;
        visit.call(&self.file)?;
        visit.call(&self._signal)
    }

    fn __clear__(&mut self) {
        self.environ = None;
        self.first = None;
        self.error = None;
        self.input_error = None;
        self.file = None;
        self._signal = None;
    }
}
