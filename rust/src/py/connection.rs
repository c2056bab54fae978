//! The hot state of a worker, a connection and its flow control, as Rust fields, and
//! the usual request's path through them: a read that is one whole request, its
//! exchange and task, its response and the connection's return to idle.
//!
//! The Python classes build on these (`ServerState(StateCore)`, `Flow(FlowCore)`,
//! `HTTPProtocol(ProtocolCore)`, `Exchange(ExchangeCore)`) and keep everything else:
//! other phases (PROXY, TLS, lingering), pipelining, bodies, clocks, takeover. Python
//! reads and writes these fields through descriptors of the same names; the usual
//! request's path reads them here without a lookup, which is what made it cost less
//! than a Python one.

use super::exchange::ExchangeCore;
use super::parser::{RequestHead, RequestParser};
use super::task::{self, RequestTask};
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyTuple};
use pyo3::PyTraverseError;

/// What every connection of one worker's listener shares and reads per request.
#[pyclass(module = "tremolo._core", subclass)]
pub struct StateCore {
    /// the Date field's value, refreshed every second
    #[pyo3(get, set)]
    pub date: Py<PyBytes>,
    #[pyo3(get, set)]
    pub server_name: Py<PyBytes>,
    /// requests started, and after how many the worker asks to be replaced (0: never)
    #[pyo3(get, set)]
    pub requests: u64,
    #[pyo3(get, set)]
    pub max_requests: u64,
    #[pyo3(get, set)]
    pub recycle: Option<Py<PyAny>>,
    /// a graceful stop is under way
    #[pyo3(get, set)]
    pub stopping: bool,
    /// keepalive_timeout > 0
    #[pyo3(get, set)]
    pub keepalive: bool,
    /// close the connection after a response sent before its request's body was all
    /// read (the Tremolo framework's rule)
    #[pyo3(get, set)]
    pub close_unread: bool,
    /// the access log and the metrics counters, when they are on
    #[pyo3(get, set)]
    pub access: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    pub counters: Option<Py<PyAny>>,
    /// app_handler_timeout
    #[pyo3(get, set)]
    pub handler_timeout: f64,
}

#[pymethods]
impl StateCore {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(py: Python<'_>, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyAny>>) -> Self {
        StateCore {
            date: PyBytes::new(py, b"").unbind(),
            server_name: PyBytes::new(py, b"").unbind(),
            requests: 0,
            max_requests: 0,
            recycle: None,
            stopping: false,
            keepalive: true,
            close_unread: false,
            access: None,
            counters: None,
            handler_timeout: 0.0,
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.recycle)?;
        visit.call(&self.access)?;
        visit.call(&self.counters)?;
        Ok(())
    }

    fn __clear__(&mut self) {
        self.recycle = None;
        self.access = None;
        self.counters = None;
    }
}

/// The transport of one connection and what its flow control reads per request.
#[pyclass(module = "tremolo._core", subclass)]
pub struct FlowCore {
    #[pyo3(get, set)]
    pub transport: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    pub closed: bool,
    #[pyo3(get, set)]
    pub read_paused: bool,
    #[pyo3(get, set)]
    pub write_paused: bool,
    /// the worker's metrics counters (bytes out), when they are on
    #[pyo3(get, set)]
    pub counters: Option<Py<PyAny>>,
    /// the buffer_size option: what a write may hold at once
    #[pyo3(get, set)]
    pub buffer_size: usize,
}

impl FlowCore {
    /// Writes `data` unless the connection is closed, and counts it. No borrow is
    /// held across the write: the transport may call back into the flow
    /// (pause_writing).
    pub fn write(flow: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = flow.py();
        let (transport, counters) = {
            let f = flow.borrow();
            if f.closed {
                return Ok(());
            }
            (
                f.transport.as_ref().map(|t| t.clone_ref(py)),
                f.counters.as_ref().map(|c| c.clone_ref(py)),
            )
        };
        let Some(transport) = transport else {
            return Ok(());
        };
        transport
            .bind(py)
            .call_method1(intern!(py, "write"), (data,))?;
        if let Some(c) = counters {
            let c = c.bind(py);
            let size = match data.cast::<PyBytes>() {
                Ok(b) => b.as_bytes().len(),
                Err(_) => data.len()?,
            };
            let sent = c.getattr(intern!(py, "bytes_out"))?;
            c.setattr(intern!(py, "bytes_out"), sent.add(size)?)?;
        }
        Ok(())
    }
}

#[pymethods]
impl FlowCore {
    /// Writes `data` (bytes-like) unless the connection is closed, and counts it.
    #[pyo3(name = "write")]
    fn py_write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        Self::write(slf, data)
    }

    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyAny>>) -> Self {
        FlowCore {
            transport: None,
            closed: false,
            read_paused: false,
            write_paused: false,
            counters: None,
            buffer_size: 0,
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.transport)?;
        visit.call(&self.counters)?;
        Ok(())
    }

    fn __clear__(&mut self) {
        self.transport = None;
        self.counters = None;
    }
}

/// One HTTP connection's hot state. See the module docs.
#[pyclass(module = "tremolo._core", subclass)]
pub struct ProtocolCore {
    /// the connection's phase (lifecycle.py's strings); the usual path needs HTTP
    #[pyo3(get, set)]
    pub phase: Py<PyAny>,
    #[pyo3(get, set)]
    pub state: Option<Py<StateCore>>,
    #[pyo3(get, set)]
    pub flow: Option<Py<FlowCore>>,
    #[pyo3(get, set, name = "loop")]
    pub loop_: Option<Py<PyAny>>,
    /// the adapter's handle(exchange) -> coroutine, and whether its first step runs
    /// at once
    #[pyo3(get, set)]
    pub handler: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    pub eager: bool,
    #[pyo3(get, set)]
    pub parser: Option<Py<RequestParser>>,
    /// the exchange being answered, the one receiving body events, the events
    /// behind a request being answered (a deque), the task started last
    #[pyo3(get, set)]
    pub current: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    pub reading: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    pub pending: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    pub task: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    pub eof: bool,
    /// whether it served a request already, and since when it is idle
    #[pyo3(get, set)]
    pub reused: bool,
    #[pyo3(get, set)]
    pub idle_since: f64,
    /// bytes per second a request body is read at (0: no limit)
    #[pyo3(get, set)]
    pub upload_rate: u64,
    /// the Exchange class (Python, built on ExchangeCore) this protocol makes
    #[pyo3(get, set)]
    pub exchange_class: Option<Py<PyAny>>,
    /// what a task tells when its handler ends (the protocol's handler_done, bound
    /// once rather than per request)
    #[pyo3(get, set)]
    pub on_done: Option<Py<PyAny>>,
}

static PERF_COUNTER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// time.perf_counter(), for the access log's and the metrics' durations.
pub(super) fn perf_counter(py: Python<'_>) -> PyResult<f64> {
    PERF_COUNTER
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("time")?.getattr("perf_counter")?.unbind())
        })?
        .call0(py)?
        .extract(py)
}

fn cleared() -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err("the connection was cleared")
}

impl ProtocolCore {
    /// The usual read of a body being streamed: its pieces go straight to the
    /// request reading it (more body waiting can only pause reading). False when
    /// the read is anything else.
    fn feed_body(slf: &Bound<'_, Self>, events: &Bound<'_, PyAny>) -> PyResult<bool> {
        let py = slf.py();
        let Ok(events) = events.cast::<PyList>() else {
            return Ok(false);
        };
        let reading = {
            let p = slf.borrow();
            let queued = match &p.pending {
                Some(q) => q.bind(py).len()? > 0,
                None => true,
            };
            match &p.reading {
                Some(r) if !queued => r.clone_ref(py),
                _ => return Ok(false),
            }
        };
        if events.is_empty()
            || !events.iter().all(|ev| ev.is_exact_instance_of::<PyBytes>())
            || slf.getattr(intern!(py, "processing"))?.is_truthy()?
        {
            return Ok(false);
        }
        let Ok(ex) = reading.bind(py).cast::<ExchangeCore>() else {
            return Ok(false);
        };
        for ev in events.iter() {
            ExchangeCore::feed(ex, ev.cast::<PyBytes>()?)?;
        }
        let size = ex.borrow()._body_size;
        let most: u64 = slf.getattr(intern!(py, "_max_buffered"))?.extract()?;
        if size > most {
            slf.call_method0(intern!(py, "update_reading"))?;
        }
        Ok(true)
    }

    /// Starts answering a request read whole (no body, no upgrade), nothing queued.
    fn start_whole(slf: &Bound<'_, Self>, head: Bound<'_, RequestHead>) -> PyResult<()> {
        let py = slf.py();
        let (state, class, handler, loop_, eager) = {
            let p = slf.borrow();
            let (Some(s), Some(c), Some(h), Some(l)) =
                (&p.state, &p.exchange_class, &p.handler, &p.loop_)
            else {
                return Err(cleared());
            };
            (
                s.clone_ref(py),
                c.clone_ref(py),
                h.clone_ref(py),
                l.clone_ref(py),
                p.eager,
            )
        };
        let state = state.bind(py);
        let (recycle, keep, timed) = {
            let mut s = state.borrow_mut();
            s.requests += 1;
            let recycle = if s.requests == s.max_requests {
                s.recycle.as_ref().map(|r| r.clone_ref(py))
            } else {
                None
            };
            (
                recycle,
                s.keepalive && !s.stopping,
                s.access.is_some() || s.counters.is_some(),
            )
        };
        if let Some(recycle) = recycle {
            let max = state.borrow().max_requests;
            recycle.call1(py, (format!("served max_requests ({max})"),))?;
        }
        let ex = class.bind(py).call1((slf, &head))?;
        {
            let core = ex.cast::<ExchangeCore>()?;
            let mut x = core.borrow_mut();
            if !keep {
                x.keep_alive = false;
            }
            if timed {
                x.t0 = perf_counter(py)?;
            }
        }
        slf.borrow_mut().current = Some(ex.clone().unbind());
        if !eager {
            // the adapter's handler starts from the loop: Python does that
            slf.call_method1(intern!(py, "_start_task"), (&ex,))?;
            return Ok(());
        }
        let coro = handler.bind(py).call1((&ex,))?;
        let done = match &slf.borrow().on_done {
            Some(d) => d.clone_ref(py).into_bound(py),
            None => return Err(cleared()),
        };
        let task = Bound::new(
            py,
            RequestTask::new(
                py,
                loop_,
                coro.unbind(),
                done.clone().unbind(),
                ex.clone().unbind(),
            )?,
        )?;
        let outcome = RequestTask::run_first(&task)?;
        let outcome = outcome.bind(py);
        if outcome.is_none() {
            // ended at once: no clock needed
            if ex.cast::<ExchangeCore>()?.borrow().phase != super::exchange::DONE {
                done.call1((&ex, py.None()))?;
            }
            return Ok(());
        }
        if outcome.is(&task::running(py)?) {
            Self::_waiting(slf, ex.cast::<ExchangeCore>()?, task.as_any())?;
        } else {
            done.call1((&ex, outcome))?;
        }
        Ok(())
    }
}

#[pymethods]
impl ProtocolCore {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(py: Python<'_>, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyAny>>) -> Self {
        ProtocolCore {
            phase: intern!(py, "http").clone().into_any().unbind(),
            state: None,
            flow: None,
            loop_: None,
            handler: None,
            eager: true,
            parser: None,
            current: None,
            reading: None,
            pending: None,
            task: None,
            eof: false,
            reused: false,
            idle_since: 0.0,
            upload_rate: 0,
            exchange_class: None,
            on_done: None,
        }
    }

    /// The handler of `ex` goes on after its first step: its task is kept, and its
    /// app_handler_timeout clock starts (the sweeper checks it: check_clocks).
    pub fn _waiting(
        slf: &Bound<'_, Self>,
        ex: &Bound<'_, ExchangeCore>,
        task: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let (loop_, timeout) = {
            let p = slf.borrow();
            let (Some(l), Some(s)) = (&p.loop_, &p.state) else {
                return Err(cleared());
            };
            let timeout = s.borrow(py).handler_timeout;
            (l.clone_ref(py), timeout)
        };
        let now: f64 = loop_
            .bind(py)
            .call_method0(intern!(py, "time"))?
            .extract()?;
        {
            let mut x = ex.borrow_mut();
            x.task = Some(task.clone().unbind());
            x.handler_deadline = now + timeout;
        }
        slf.borrow_mut().task = Some(task.clone().unbind());
        Ok(())
    }

    /// A handler ended (what its task calls): its task and clock go; an exchange it
    /// did not finish, or an error it raised, is the Python side's
    /// (`_handler_ended`).
    fn handler_done(
        slf: &Bound<'_, Self>,
        ex: &Bound<'_, ExchangeCore>,
        exc: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        // a body clock still running (a handler that stopped reading a body)
        let clock = !ex.getattr(intern!(py, "_clock"))?.is_none();
        let task = {
            let mut x = ex.borrow_mut();
            x.handler_deadline = 0.0;
            x.task.take()
        };
        if let Some(task) = task {
            let mut p = slf.borrow_mut();
            if p.task.as_ref().is_some_and(|t| t.is(&task)) {
                p.task = None;
            }
        }
        if clock || !exc.is_none() || ex.borrow().phase != super::exchange::DONE {
            slf.call_method1(intern!(py, "_handler_ended"), (ex, exc))?;
        }
        Ok(())
    }

    fn data_received(slf: &Bound<'_, Self>, data: &Bound<'_, PyBytes>) -> PyResult<()> {
        let py = slf.py();
        let usual = {
            let p = slf.borrow();
            p.phase.bind(py).is(intern!(py, "http")) && (p.reading.is_none() || p.upload_rate == 0)
        };
        if !usual {
            return slf
                .call_method1(intern!(py, "_data_received"), (data,))
                .map(|_| ());
        }
        let (parser, pending) = {
            let p = slf.borrow();
            let (Some(parser), Some(pending)) = (&p.parser, &p.pending) else {
                return Err(cleared());
            };
            (parser.clone_ref(py), pending.clone_ref(py))
        };
        let events = parser.bind(py).borrow_mut().feed_request(data)?;
        if let Ok(head) = events.cast::<RequestHead>() {
            let idle = slf.borrow().current.is_none() && pending.bind(py).len()? == 0;
            if idle {
                // the usual read: one whole request without a body or an upgrade,
                // and nothing queued
                return Self::start_whole(slf, head.clone());
            }
        }
        if Self::feed_body(slf, &events)? {
            return Ok(());
        }
        slf.call_method1(intern!(py, "_queue_events"), (events,))?;
        Ok(())
    }

    /// The exchange being answered is over: the connection goes on to what follows.
    pub fn exchange_finished(slf: &Bound<'_, Self>, ex: &Bound<'_, ExchangeCore>) -> PyResult<()> {
        let py = slf.py();
        let (keep, upgrade) = {
            let x = ex.borrow();
            (x.keep_alive, x.upgrade)
        };
        let (loop_, parser, pending, flow, eof) = {
            let mut p = slf.borrow_mut();
            match &p.current {
                Some(c) if c.bind(py).is(ex) => {}
                _ => return Ok(()),
            }
            p.current = None;
            let (Some(l), Some(parser), Some(pending), Some(flow)) =
                (&p.loop_, &p.parser, &p.pending, &p.flow)
            else {
                return Err(cleared());
            };
            (
                l.clone_ref(py),
                parser.clone_ref(py),
                pending.clone_ref(py),
                flow.clone_ref(py),
                p.eof,
            )
        };
        if !keep {
            slf.call_method1(intern!(py, "_close_behind"), (ex,))?;
            return Ok(());
        }
        let now: f64 = loop_
            .bind(py)
            .call_method0(intern!(py, "time"))?
            .extract()?;
        {
            let mut p = slf.borrow_mut();
            p.idle_since = now;
            p.reused = true;
        }
        if pending.bind(py).len()? > 0 || (upgrade && parser.bind(py).borrow().paused()) {
            slf.call_method0(intern!(py, "process"))?;
        } else if eof {
            slf.call_method0(intern!(py, "close"))?;
        } else if flow.bind(py).borrow().read_paused {
            slf.call_method0(intern!(py, "update_reading"))?;
        }
        Ok(())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.phase)?;
        visit.call(&self.state)?;
        visit.call(&self.flow)?;
        visit.call(&self.loop_)?;
        visit.call(&self.handler)?;
        visit.call(&self.parser)?;
        visit.call(&self.current)?;
        visit.call(&self.reading)?;
        visit.call(&self.pending)?;
        visit.call(&self.task)?;
        visit.call(&self.exchange_class)?;
        visit.call(&self.on_done)?;
        Ok(())
    }

    fn __clear__(&mut self) {
        self.state = None;
        self.flow = None;
        self.loop_ = None;
        self.handler = None;
        self.parser = None;
        self.current = None;
        self.reading = None;
        self.pending = None;
        self.task = None;
        self.exchange_class = None;
        self.on_done = None;
    }
}
