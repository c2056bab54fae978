//! AccessLogCore: the access log's lines written from an exchange's own fields, for
//! the Python class `tremolo.logs.AccessLog` to build on.
//!
//! A finished request is logged from here without a Python frame (exchange.rs calls
//! [`AccessLogCore::log_exchange`]); the lines are gathered and the Python side
//! writes them once per turn of the loop (`_flush`), or hands each to its logger
//! (`_emit`) when logging is the user's own. The format and the line are
//! crate::access's; what Python knows (the client a proxy names, the time zone) is
//! read here.

use super::connection::perf_counter;
use super::exchange::ExchangeCore;
use super::forwarded::Proxies;
use super::parser::RequestHead;
use crate::access::{clock, Entry, Format, Time};
use crate::forwarded::Client;
use pyo3::exceptions::PyValueError;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyTuple};
use pyo3::PyTraverseError;

static TIME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// time.time()
fn wall_clock(py: Python<'_>) -> PyResult<f64> {
    TIME.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("time")?.getattr("time")?.unbind())
    })?
    .call0(py)?
    .extract(py)
}

/// The local time zone's offset from UTC at `unix` (seconds east), as Python's
/// time.localtime sees it (TZ, DST).
fn utc_offset(py: Python<'_>, unix: i64) -> PyResult<i32> {
    py.import("time")?
        .call_method1(intern!(py, "localtime"), (unix,))?
        .getattr(intern!(py, "tm_gmtoff"))?
        .extract()
}

/// The resolved text of an access log format (a preset's name, or a format of
/// atoms); ValueError says what is wrong with it.
#[pyfunction]
pub fn access_format(fmt: &str) -> PyResult<String> {
    Format::parse(fmt)
        .map(|f| f.text().to_string())
        .map_err(PyValueError::new_err)
}

/// The access log's formats and the lines written, waiting for the next flush.
#[pyclass(module = "tremolo._core", subclass)]
pub struct AccessLogCore {
    format: Format,
    /// a WebSocket's line when it closes
    closing: Format,
    pid: u32,
    /// the second the common time was made for, and it (a line made each time cost a
    /// third of the line)
    second: i64,
    common: String,
    pending: String,
    /// lines are gathered for `_flush` (logging is the server's own), else each
    /// goes to `_emit`
    #[pyo3(get, set)]
    gather: bool,
    /// the loop whose next turn writes what is pending
    #[pyo3(get, set, name = "loop")]
    loop_: Option<Py<PyAny>>,
}

/// What one line is of, besides the exchange's head.
struct Facts<'a> {
    status: u16,
    sent: u64,
    received: Option<u64>,
    seconds: f64,
    /// the response's fields (a list of (name, value) pairs), for `%({name}o)s`
    fields: Option<&'a Bound<'a, PyAny>>,
}

impl AccessLogCore {
    /// Logs a finished exchange (exchange.rs, without a Python frame).
    pub fn log_exchange(slf: &Bound<'_, Self>, ex: &Bound<'_, ExchangeCore>) -> PyResult<()> {
        let now = perf_counter(slf.py())?;
        let (head, fields, protocol) = parts(ex);
        // a HEAD response's body is left out: none was sent
        let is_head = head.as_ref().is_some_and(|h| h.get().is_head());
        let x = ex.borrow();
        let facts = Facts {
            status: x.status,
            sent: if is_head { 0 } else { x.sent },
            received: None,
            seconds: now - x.t0,
            fields: fields.as_ref(),
        };
        drop(x);
        Self::line(slf, false, protocol.as_ref(), head.as_ref(), &facts)
    }

    /// Writes the line (the closing format's with `closing`) and sees it written.
    fn line(
        slf: &Bound<'_, Self>,
        closing: bool,
        protocol: Option<&Bound<'_, PyAny>>,
        head: Option<&Bound<'_, RequestHead>>,
        facts: &Facts,
    ) -> PyResult<()> {
        let py = slf.py();
        let (time, needs_client) = {
            let this = slf.borrow();
            let format = if closing { &this.closing } else { &this.format };
            (format.time(), format.needs_client())
        };
        let client = match protocol {
            Some(p) if needs_client => client(p, head)?,
            Some(_) => String::new(),
            None => "-".to_string(),
        };
        let iso = match time {
            Time::Iso => {
                let now = wall_clock(py)?;
                let ms = (now * 1000.0).floor() as i64;
                clock::iso(ms, utc_offset(py, ms.div_euclid(1000))?)
            }
            _ => String::new(),
        };
        if time == Time::Common {
            let second = wall_clock(py)?.floor() as i64;
            let mut this = slf.borrow_mut();
            if second != this.second {
                this.common = clock::clf(second, utc_offset(py, second)?);
                this.second = second;
            }
        }
        let response = response_values(slf, closing, facts.fields)?;
        let response: Vec<Option<&[u8]>> = response.iter().map(Option::as_deref).collect();
        let head_ref = head.map(|h| h.get());
        let written = {
            let mut guard = slf.borrow_mut();
            let this = &mut *guard;
            let entry = Entry {
                head: head_ref.map(RequestHead::inner),
                client: &client,
                time: if time == Time::Common {
                    &this.common
                } else {
                    &iso
                },
                status: facts.status,
                sent: facts.sent,
                received: facts.received,
                seconds: facts.seconds,
                pid: this.pid,
                response: &response,
            };
            let format = if closing { &this.closing } else { &this.format };
            if !this.gather {
                let mut line = String::new();
                format.write(&mut line, &entry);
                Written::Alone(line)
            } else {
                let first = this.pending.is_empty();
                format.write(&mut this.pending, &entry);
                this.pending.push('\n');
                match (first, &this.loop_) {
                    (false, _) => Written::Pending,
                    (true, Some(l)) => Written::First(Some(l.clone_ref(py))),
                    (true, None) => Written::First(None),
                }
            }
        };
        // (Python is called with no borrow held: it may read this object)
        match written {
            Written::Alone(line) => {
                slf.call_method1(intern!(py, "_emit"), (line,))?;
            }
            Written::Pending => {}
            Written::First(event_loop) => {
                let flush = slf.getattr(intern!(py, "_flush"))?;
                match event_loop {
                    Some(l) => l
                        .bind(py)
                        .call_method1(intern!(py, "call_soon"), (flush,))?,
                    None => flush.call0()?,
                };
            }
        }
        Ok(())
    }
}

/// An exchange's head, response fields and protocol: what its line reads.
type Parts<'py> = (
    Option<Bound<'py, RequestHead>>,
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
);

fn parts<'py>(ex: &Bound<'py, ExchangeCore>) -> Parts<'py> {
    let py = ex.py();
    let x = ex.borrow();
    (
        x.head_ref().map(|h| h.bind(py).clone()),
        x.fields.as_ref().map(|f| f.bind(py).clone()),
        x.protocol_ref(py),
    )
}

/// What became of a line: handed on alone (the user's logging), or pending, the
/// first since the last flush (one is to be asked for) or not.
enum Written {
    Alone(String),
    First(Option<Py<PyAny>>),
    Pending,
}

/// The client as the line names it: the address a trusted proxy gives, else the
/// peer's ("unix" on a UNIX socket; "-" before the connection knows it).
fn client(protocol: &Bound<'_, PyAny>, head: Option<&Bound<'_, RequestHead>>) -> PyResult<String> {
    let py = protocol.py();
    let info = protocol.getattr(intern!(py, "info"))?;
    if info.is_none() {
        return Ok("-".to_string());
    }
    if let Some(head) = head {
        let proxies = info.getattr(intern!(py, "proxies"))?;
        if let Ok(proxies) = proxies.cast::<Proxies>() {
            if let Client::Address(ip, _) = head.get().said(proxies.get()).client {
                return Ok(ip.to_string());
            }
        }
    }
    let peer = info.getattr(intern!(py, "peer"))?;
    if peer.is_none() {
        return Ok("unix".to_string());
    }
    peer.get_item(0)?.extract()
}

/// A field's name or value as an application gave it: bytes or a bytearray (ASGI
/// allows both; what else is not a field).
fn field_bytes(value: &Bound<'_, PyAny>) -> Option<Vec<u8>> {
    if let Ok(b) = value.cast::<PyBytes>() {
        return Some(b.as_bytes().to_vec());
    }
    value.cast::<PyByteArray>().ok().map(|b| b.to_vec())
}

/// The values of the response fields the format names, in its order (the first of
/// each name), None where the response has none.
fn response_values<'py>(
    slf: &Bound<'py, AccessLogCore>,
    closing: bool,
    fields: Option<&Bound<'py, PyAny>>,
) -> PyResult<Vec<Option<Vec<u8>>>> {
    let this = slf.borrow();
    let format = if closing { &this.closing } else { &this.format };
    let names = format.response_fields();
    let mut values = vec![None; names.len()];
    let Some(fields) = fields.filter(|_| !names.is_empty()) else {
        return Ok(values);
    };
    for pair in fields.try_iter()? {
        let pair = pair?;
        let (Ok(name), Ok(value)) = (pair.get_item(0), pair.get_item(1)) else {
            continue;
        };
        let (Some(name), Some(value)) = (field_bytes(&name), field_bytes(&value)) else {
            continue;
        };
        for (slot, wanted) in values.iter_mut().zip(names) {
            if slot.is_none() && name.eq_ignore_ascii_case(wanted) {
                *slot = Some(value.clone());
            }
        }
    }
    Ok(values)
}

#[pymethods]
impl AccessLogCore {
    /// `fmt`: a preset's name (default, common, combined, json) or a format of
    /// atoms; ValueError says what is wrong with it.
    #[new]
    #[pyo3(signature = (fmt, *_args, **_kwargs))]
    fn new(
        fmt: &str,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let format = Format::parse(fmt).map_err(PyValueError::new_err)?;
        Ok(AccessLogCore {
            closing: format.closing(),
            format,
            pid: std::process::id(),
            second: i64::MIN,
            common: String::new(),
            pending: String::new(),
            gather: false,
            loop_: None,
        })
    }

    /// The format's text (a preset's name resolved).
    #[getter]
    fn fmt(&self) -> &str {
        self.format.text()
    }

    /// Logs a finished request: its exchange (an ExchangeCore).
    fn log(slf: &Bound<'_, Self>, ex: &Bound<'_, PyAny>) -> PyResult<()> {
        Self::log_exchange(slf, ex.cast::<ExchangeCore>()?)
    }

    /// A WebSocket's line when it closes: `ex` its handshake, `code` the close code
    /// (in the status's place: 1000-4999 are never HTTP's), bytes each way (those
    /// sent in the body's place) and how long it lasted.
    fn closed(
        slf: &Bound<'_, Self>,
        ex: &Bound<'_, PyAny>,
        code: u16,
        received: u64,
        sent: u64,
        seconds: f64,
    ) -> PyResult<()> {
        let (head, fields, protocol) = parts(ex.cast::<ExchangeCore>()?);
        let facts = Facts {
            status: code,
            sent,
            received: Some(received),
            seconds,
            fields: fields.as_ref(),
        };
        Self::line(slf, true, protocol.as_ref(), head.as_ref(), &facts)
    }

    /// A request the server refused before any handler saw it (the parser, a
    /// limit, a clock): its connection's protocol, the status and the bytes of the
    /// answer; no request line (there was none, or none that could be trusted).
    fn refused(
        slf: &Bound<'_, Self>,
        protocol: &Bound<'_, PyAny>,
        status: u16,
        sent: u64,
    ) -> PyResult<()> {
        let facts = Facts {
            status,
            sent,
            received: None,
            seconds: 0.0,
            fields: None,
        };
        Self::line(slf, false, Some(protocol), None, &facts)
    }

    /// The lines written since the last take, each ended by a newline.
    fn take(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.loop_)?;
        Ok(())
    }

    fn __clear__(&mut self) {
        self.loop_ = None;
    }
}
