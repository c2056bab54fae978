//! ExchangeCore: what every request's Exchange holds and does, for the Python class
//! `tremolo.protocols.exchange.Exchange` to build on.
//!
//! Every request makes an Exchange and nearly every one is answered by `respond()`.
//! As a Python object with an `__init__` the pair cost about a quarter of a small
//! request; here the fields every request touches are Rust fields (read from Python
//! through descriptors of the same names) and `respond()` encodes, writes and
//! finishes in one call. The rest of the exchange (the body, streamed responses,
//! the speed limit) is the Python subclass's.

use super::access::AccessLogCore;
use super::connection::{FlowCore, ProtocolCore};
use super::parser::RequestHead;
use pyo3::exceptions::PyRuntimeError;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{IntoPyDict, PyBytes, PyList, PyTuple};
use pyo3::PyTraverseError;

/// collections.deque, the body queue's type
static DEQUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The exchange's phases (protocols/lifecycle.py has the same numbers).
pub const RECEIVED: u8 = 0;
pub const DONE: u8 = 3;
/// Bodies this size or larger are written beside the head (writev), not copied into it.
const COPY_LIMIT: usize = 16384;

/// One request and its response: the part every request uses. See the module docs.
#[pyclass(module = "tremolo._core", subclass)]
pub struct ExchangeCore {
    /// the HTTPProtocol of the connection
    #[pyo3(get)]
    protocol: Option<Py<PyAny>>,
    /// its Flow (both directions' flow control and the transport)
    #[pyo3(get)]
    flow: Option<Py<PyAny>>,
    #[pyo3(get)]
    head: Option<Py<RequestHead>>,
    /// RECEIVED -> SENDING -> (DETACHED) -> DONE; see lifecycle.py
    #[pyo3(get, set)]
    pub phase: u8,
    /// the server's side of keep-alive: False once the server means to close. The
    /// client's side is its request's, joined when the response head is encoded,
    /// which sets this to the outcome.
    #[pyo3(get, set)]
    pub keep_alive: bool,
    /// the request's facts the protocol sets when they are not these: a request read
    /// whole in one go (the usual one) has no body, expects no 100-continue and asks
    /// for no upgrade
    #[pyo3(get, set)]
    _ended: bool,
    #[pyo3(get, set)]
    _expect: bool,
    #[pyo3(get, set)]
    pub upgrade: bool,
    /// body pieces received and not read yet (a deque), and why the body failed
    #[pyo3(get, set)]
    _body: Option<Py<PyAny>>,
    /// the bytes in `_body`, the body bytes received, and what a handler waiting
    /// for the next piece waits on
    #[pyo3(get, set)]
    pub _body_size: u64,
    #[pyo3(get, set)]
    _received: u64,
    #[pyo3(get, set)]
    _waiter: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    _error: Option<Py<PyAny>>,
    /// what the access log reads: the status and fields sent, body bytes sent
    #[pyo3(get, set)]
    pub status: u16,
    #[pyo3(get, set)]
    pub fields: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    pub sent: u64,
    /// the handler's task while it waits, and when app_handler_timeout ends it
    /// (the loop's time; 0: no clock): the sweeper looks, once a tick, rather than a
    /// timer being made and cancelled per request (1.5 us on uvloop)
    #[pyo3(get, set)]
    pub task: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    pub handler_deadline: f64,
    /// when the request started (set when the access log or the metrics are on)
    #[pyo3(get, set)]
    pub t0: f64,
}

fn cleared() -> PyErr {
    PyRuntimeError::new_err("the exchange was cleared")
}

impl ExchangeCore {
    /// The connection's Flow.
    pub fn flow_ref<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.flow.as_ref().map(|f| f.bind(py).clone())
    }

    /// The connection's HTTPProtocol.
    pub fn protocol_ref<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.protocol.as_ref().map(|p| p.bind(py).clone())
    }

    /// The request's head.
    pub fn head_ref(&self) -> Option<&Py<RequestHead>> {
        self.head.as_ref()
    }

    /// The connection's buffer_size (0 when the exchange was cleared).
    pub fn buffer_size(&self, py: Python<'_>) -> PyResult<usize> {
        match &self.flow {
            Some(f) => Ok(f.bind(py).cast::<FlowCore>()?.borrow().buffer_size),
            None => Ok(0),
        }
    }

    /// The whole body has arrived and been read (none, the usual case), and did not
    /// fail: Exchange.body_exhausted.
    pub fn read_to_end(&self, py: Python<'_>) -> PyResult<bool> {
        let body_left = match &self._body {
            Some(b) => b.bind(py).is_truthy()?,
            None => false,
        };
        Ok(self._ended && !body_left && self._error.is_none())
    }

    /// A piece of the body, read: queued for the handler, which is woken if it
    /// waits (the caller updates reading once it has fed what it read).
    pub fn feed(slf: &Bound<'_, Self>, data: &Bound<'_, PyBytes>) -> PyResult<()> {
        let py = slf.py();
        let (body, waiter) = {
            let mut x = slf.borrow_mut();
            if x.phase == DONE {
                return Ok(()); // answered without reading: the rest is dropped
            }
            let size = data.as_bytes().len() as u64;
            x._body_size += size;
            x._received += size;
            (
                x._body.as_ref().map(|b| b.clone_ref(py)),
                x._waiter.as_ref().map(|w| w.clone_ref(py)),
            )
        };
        let body = match body {
            Some(b) => b,
            None => {
                let b = DEQUE
                    .get_or_try_init(py, || {
                        Ok::<_, PyErr>(py.import("collections")?.getattr("deque")?.unbind())
                    })?
                    .call0(py)?;
                slf.borrow_mut()._body = Some(b.clone_ref(py));
                b
            }
        };
        body.call_method1(py, intern!(py, "append"), (data,))?;
        if let Some(w) = waiter {
            Self::wake_waiter(w.bind(py))?;
        }
        Ok(())
    }

    fn wake_waiter(w: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = w.py();
        if !w.call_method0(intern!(py, "done"))?.is_truthy()? {
            w.call_method1(intern!(py, "set_result"), (py.None(),))?;
        }
        Ok(())
    }

    fn fail_started() -> PyErr {
        PyRuntimeError::new_err("response already started")
    }
}

#[pymethods]
impl ExchangeCore {
    #[new]
    #[pyo3(signature = (protocol, head, *_args, **_kwargs))]
    fn new(
        protocol: &Bound<'_, PyAny>,
        head: Py<RequestHead>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let py = protocol.py();
        // (respond() needs the protocol's core too: an exchange belongs to one)
        let flow = protocol
            .cast::<ProtocolCore>()?
            .borrow()
            .flow
            .as_ref()
            .map(|f| f.clone_ref(py).into_any())
            .ok_or_else(cleared)?;
        Ok(ExchangeCore {
            protocol: Some(protocol.clone().unbind()),
            flow: Some(flow),
            head: Some(head),
            phase: RECEIVED,
            keep_alive: true,
            _ended: true,
            _expect: false,
            upgrade: false,
            _body: None,
            _body_size: 0,
            _received: 0,
            _waiter: None,
            _error: None,
            status: 0,
            fields: Some(PyTuple::empty(py).into_any().unbind()),
            sent: 0,
            task: None,
            handler_deadline: 0.0,
            t0: 0.0,
        })
    }

    /// Sends a whole response with Content-Length and finishes the exchange.
    #[pyo3(signature = (status, headers, body, reason=None))]
    pub fn respond(
        slf: &Bound<'_, Self>,
        status: u16,
        headers: &Bound<'_, PyAny>,
        body: &Bound<'_, PyBytes>,
        reason: Option<&[u8]>,
    ) -> PyResult<()> {
        let py = slf.py();
        let (protocol, head, mut keep, unread, expect, ended) = {
            let x = slf.borrow();
            if x.phase != RECEIVED {
                return Err(Self::fail_started());
            }
            let (Some(p), Some(h)) = (&x.protocol, &x.head) else {
                return Err(cleared());
            };
            // a body not read to its end, or that failed
            let unread = !x.read_to_end(py)?;
            (
                p.clone_ref(py),
                h.clone_ref(py),
                x.keep_alive,
                unread,
                x._expect,
                x._ended,
            )
        };
        let protocol = protocol.bind(py).cast::<ProtocolCore>()?.clone();
        let (state, flow) = {
            let p = protocol.borrow();
            let (Some(s), Some(f)) = (&p.state, &p.flow) else {
                return Err(cleared());
            };
            (s.clone_ref(py), f.clone_ref(py))
        };
        let state = state.bind(py);
        if unread {
            // a client never told to send its announced body may still send it: the
            // connection cannot be reused safely (nor, by the adapter's rule, after
            // a body left unread)
            let close_unread = state.borrow().close_unread;
            if close_unread || (!ended && expect) {
                keep = false;
            }
        }
        let data = body.as_bytes();
        let head_only = head.get().is_head();
        if data.len() >= COPY_LIMIT && !head_only {
            // a large body is not copied next to the head: both go out in one writev
            return slf
                .call_method1(
                    intern!(py, "_respond_writev"),
                    (status, headers, body, reason, keep),
                )
                .map(|_| ());
        }
        let (date, server, access, counted) = {
            let s = state.borrow();
            (
                s.date.clone_ref(py),
                s.server_name.clone_ref(py),
                s.access.as_ref().map(|a| a.clone_ref(py)),
                s.counters.is_some(),
            )
        };
        // encoded before anything changes: a refused header leaves room for a 500
        let (out, keep) = head.get().respond(
            py,
            status,
            headers,
            data,
            keep,
            date.bind(py).as_bytes(),
            server.bind(py).as_bytes(),
            reason,
        )?;
        let body_items = {
            let mut x = slf.borrow_mut();
            x.status = status;
            x.fields = Some(headers.clone().unbind());
            // (a HEAD response's is put right when it is logged)
            x.sent = data.len() as u64;
            x.keep_alive = keep;
            x.phase = DONE;
            x._body.as_ref().map(|b| b.clone_ref(py))
        };
        FlowCore::write(flow.bind(py), &out)?;
        if let Some(b) = body_items {
            // what was read into the body and not consumed is dropped
            if b.bind(py).is_truthy()? {
                b.bind(py).call_method0(intern!(py, "clear"))?;
                slf.setattr(intern!(py, "_body_size"), 0)?;
            }
        }
        if counted {
            slf.call_method1(intern!(py, "_account"), (state,))?;
        } else if let Some(access) = access {
            // the usual case logged here, with no Python frame (see access.rs)
            let logged = match access.bind(py).cast::<AccessLogCore>() {
                Ok(log) => AccessLogCore::log_exchange(log, slf),
                Err(_) => access
                    .bind(py)
                    .call_method1(intern!(py, "log"), (slf,))
                    .map(|_| ()),
            };
            if let Err(err) = logged {
                // what is logged never costs the connection its next request
                state.getattr(intern!(py, "logger"))?.call_method(
                    intern!(py, "error"),
                    ("logging or counting a request failed",),
                    Some(&[("exc_info", err.into_value(py))].into_py_dict(py)?),
                )?;
            }
        }
        ProtocolCore::exchange_finished(&protocol, slf)
    }

    #[pyo3(name = "_feed")]
    fn py_feed(slf: &Bound<'_, Self>, data: &Bound<'_, PyBytes>) -> PyResult<()> {
        Self::feed(slf, data)
    }

    /// Wakes a handler waiting for the body (its piece, its end or its error came).
    fn _wake(&self, py: Python<'_>) -> PyResult<()> {
        match &self._waiter {
            Some(w) => Self::wake_waiter(w.bind(py)),
            None => Ok(()),
        }
    }

    /// The body's pieces queued now, up to `most` bytes (a first piece however
    /// long), without waiting: what receive() would give one by one.
    fn take_body<'py>(slf: &Bound<'py, Self>, most: u64) -> PyResult<Bound<'py, PyList>> {
        let py = slf.py();
        let out = PyList::empty(py);
        let body = slf.borrow()._body.as_ref().map(|b| b.clone_ref(py));
        let Some(body) = body else {
            return Ok(out);
        };
        let body = body.bind(py);
        let mut taken = 0u64;
        while taken < most.max(1) && body.is_truthy()? {
            let piece = body.call_method0(intern!(py, "popleft"))?;
            taken += piece.len()? as u64;
            out.append(piece)?;
        }
        if taken > 0 {
            let protocol = {
                let mut x = slf.borrow_mut();
                x._body_size = x._body_size.saturating_sub(taken);
                x.protocol.as_ref().map(|p| p.clone_ref(py))
            };
            if let Some(p) = protocol {
                let p = p.bind(py);
                let held = match p.cast::<ProtocolCore>()?.borrow().flow.as_ref() {
                    Some(f) => f.bind(py).getattr(intern!(py, "held"))?.is_truthy()?,
                    None => false,
                };
                if held {
                    // less waiting can only let a paused read go on
                    p.call_method0(intern!(py, "update_reading"))?;
                }
            }
        }
        Ok(out)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.protocol)?;
        visit.call(&self.flow)?;
        visit.call(&self.head)?;
        visit.call(&self._body)?;
        visit.call(&self._waiter)?;
        visit.call(&self._error)?;
        visit.call(&self.fields)?;
        visit.call(&self.task)?;
        Ok(())
    }

    fn __clear__(&mut self) {
        self.protocol = None;
        self.flow = None;
        self.head = None;
        self._body = None;
        self._waiter = None;
        self._error = None;
        self.fields = None;
        self.task = None;
    }
}
