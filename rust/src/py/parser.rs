//! RequestParser and RequestHead for Python.

use super::encode;
use super::errors::parse_error;
use super::forwarded::{self, Proxies};
use super::wsgi;
use crate::forwarded::Said;
use crate::h1::{self, target, BodyKind, Limits, Parser, Sink, Version};
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

/// Builds the Python event list while the core parser runs. The core cannot fail
/// mid-feed, so a Python error (out of memory) is kept and raised afterwards. The
/// usual read, one whole request without a body, is held as its head alone until
/// something else comes: no list is made for it (see `feed_request`).
struct ListSink<'py> {
    py: Python<'py>,
    events: Option<Bound<'py, PyList>>,
    /// the read's first event, a head, kept out of the list so far
    first: Option<h1::RequestHead>,
    /// the request of `first` ended (without trailers) right after it
    first_ended: bool,
    failed: Option<PyErr>,
    /// the read being parsed: a body piece that is all of it is given as it is
    read: Bound<'py, PyBytes>,
}

impl<'py> ListSink<'py> {
    fn new(read: &Bound<'py, PyBytes>) -> Self {
        ListSink {
            py: read.py(),
            events: None,
            first: None,
            first_ended: false,
            failed: None,
            read: read.clone(),
        }
    }

    /// The list, with the held head (and its end) first.
    fn list(&mut self) -> PyResult<Bound<'py, PyList>> {
        if let Some(list) = &self.events {
            return Ok(list.clone());
        }
        let list = PyList::empty(self.py);
        if let Some(head) = self.first.take() {
            list.append(Bound::new(self.py, RequestHead { inner: head })?)?;
            if self.first_ended {
                list.append(self.py.None())?;
            }
        }
        self.events = Some(list.clone());
        Ok(list)
    }

    fn push(&mut self, item: PyResult<Bound<'_, PyAny>>) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = item.and_then(|i| self.list()?.append(i)) {
            self.failed = Some(e);
        }
    }

    /// What was read: the head alone for one whole request without a body or an
    /// upgrade (`alone`), else the event list.
    fn finish(mut self, alone: bool) -> PyResult<Bound<'py, PyAny>> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if alone && self.events.is_none() && self.first_ended {
            if let Some(head) = self.first.take() {
                if !head.upgrade {
                    return Ok(Bound::new(self.py, RequestHead { inner: head })?.into_any());
                }
                self.first = Some(head);
            }
        }
        Ok(self.list()?.into_any())
    }
}

impl Sink for ListSink<'_> {
    fn head(&mut self, head: h1::RequestHead) {
        if self.events.is_none() && self.first.is_none() {
            self.first = Some(head);
            return;
        }
        let obj = Bound::new(self.py, RequestHead { inner: head }).map(Bound::into_any);
        self.push(obj);
    }
    fn data(&mut self, data: &[u8]) {
        // (a read that is all body, the usual one of a large upload, is not copied:
        // it is one object, not two, while it waits to be read)
        let read = self.read.as_bytes();
        let obj = if std::ptr::eq(data, read) {
            self.read.clone().into_any()
        } else {
            PyBytes::new(self.py, data).into_any()
        };
        self.push(Ok(obj));
    }
    fn end(&mut self, trailers: Vec<(Vec<u8>, Vec<u8>)>) {
        if self.events.is_none() && self.first.is_some() && !self.first_ended && trailers.is_empty()
        {
            self.first_ended = true;
            return;
        }
        let obj = if trailers.is_empty() {
            Ok(self.py.None().into_bound(self.py))
        } else {
            pairs(self.py, &trailers)
        };
        self.push(obj);
    }
    fn error(&mut self, error: h1::Error) {
        let obj = parse_error(self.py, error);
        self.push(obj);
    }
}

fn pairs<'py>(py: Python<'py>, items: &[(Vec<u8>, Vec<u8>)]) -> PyResult<Bound<'py, PyAny>> {
    let list = PyList::empty(py);
    for (n, v) in items {
        list.append(PyTuple::new(
            py,
            [PyBytes::new(py, n), PyBytes::new(py, v)],
        )?)?;
    }
    Ok(list.into_any())
}

/// A sans-IO HTTP/1.1 request parser for one connection.
///
/// `feed(data)` returns every complete event in `data`, in order: a `RequestHead`,
/// `bytes` of decoded body, then the end of the request: `None`, or a list of
/// `(name, value)` trailer fields. A refused request ends the list with an
/// `HTTPParseError` instance (not raised) whose `status` is the answer to send;
/// after it, and after a request that closes the connection, input is ignored.
#[pyclass(module = "tremolo._core")]
pub struct RequestParser {
    parser: Parser,
}

#[pymethods]
impl RequestParser {
    #[new]
    #[pyo3(signature = (*, max_request_line=8192, max_header_size=8192, max_headers=100, max_body_size=2097152, max_chunk_line=1024))]
    fn new(
        max_request_line: usize,
        max_header_size: usize,
        max_headers: usize,
        max_body_size: u64,
        max_chunk_line: usize,
    ) -> PyResult<Self> {
        if max_request_line < 16 || max_header_size < 16 || max_chunk_line < 3 {
            return Err(PyValueError::new_err(
                "max_request_line and max_header_size must be at least 16, max_chunk_line at least 3",
            ));
        }
        Ok(RequestParser {
            parser: Parser::new(Limits {
                max_request_line,
                max_header_size,
                max_headers,
                max_body_size,
                max_chunk_line,
            }),
        })
    }

    fn feed<'py>(&mut self, data: &Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyList>> {
        let mut sink = ListSink::new(data);
        self.parser.feed(data.as_bytes(), &mut sink);
        Ok(sink.finish(false)?.cast_into::<PyList>()?)
    }

    /// As `feed()`, but a read that was exactly one whole request without a body
    /// and without an upgrade (the usual keep-alive read) gives its RequestHead
    /// alone, not a list.
    pub fn feed_request<'py>(&mut self, data: &Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyAny>> {
        let mut sink = ListSink::new(data);
        self.parser.feed(data.as_bytes(), &mut sink);
        sink.finish(true)
    }

    /// The bytes of a Content-Length body still to come, once all that was read of
    /// it is parsed; None when the body is chunked or none is being read.
    #[getter]
    fn body_left(&self) -> Option<u64> {
        self.parser.body_left()
    }

    /// Counts `n` bytes of the Content-Length body being read as read elsewhere (from
    /// the socket, by the WSGI application's thread): the events that makes (the
    /// body's end when they were its last bytes). ValueError if more than is left.
    fn skip_body<'py>(&mut self, py: Python<'py>, n: u64) -> PyResult<Bound<'py, PyList>> {
        let mut sink = ListSink::new(&PyBytes::new(py, b""));
        if !self.parser.skip_body(n, &mut sink) {
            return Err(PyValueError::new_err(
                "skip_body: more than the body has left",
            ));
        }
        Ok(sink.finish(false)?.cast_into::<PyList>()?)
    }

    /// The largest body accepted from the next request head or chunk on.
    #[getter]
    fn max_body_size(&self) -> u64 {
        self.parser.limits().max_body_size
    }

    #[setter]
    fn set_max_body_size(&mut self, value: u64) {
        let mut limits = *self.parser.limits();
        limits.max_body_size = value;
        self.parser.set_limits(limits);
    }

    /// True after a request that asked for an upgrade (or CONNECT) has ended; bytes
    /// received since are held until `resume()` or `take_buffered()`.
    #[getter]
    pub fn paused(&self) -> bool {
        self.parser.is_paused()
    }

    /// True once no further request can come on this connection.
    #[getter]
    fn closed(&self) -> bool {
        self.parser.is_closed()
    }

    /// True between requests, with nothing of the next one received.
    #[getter]
    fn idle(&self) -> bool {
        self.parser.is_idle()
    }

    /// The upgrade was declined: parses the held bytes as HTTP again.
    fn resume<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        // (what is parsed is the parser's own: every piece is copied)
        let mut sink = ListSink::new(&PyBytes::new(py, b""));
        self.parser.resume(&mut sink);
        Ok(sink.finish(false)?.cast_into::<PyList>()?)
    }

    /// The upgrade was accepted: returns the held bytes; the parser is closed.
    fn take_buffered<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.parser.take_buffered())
    }
}

impl RequestHead {
    /// Every field as a `(name, value)` pair; `host`, when given, is the Host
    /// field's value (a trusted proxy's X-Forwarded-Host).
    fn headers_with_host<'py>(
        &self,
        py: Python<'py>,
        host: Option<&[u8]>,
    ) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for h in &self.inner.headers {
            let name = self.inner.bytes(h.name);
            let value = match host {
                Some(host) if name == b"host" => host,
                _ => self.inner.bytes(h.value),
            };
            let pair = [PyBytes::new(py, name), PyBytes::new(py, value)];
            list.append(PyTuple::new(py, pair)?)?;
        }
        Ok(list)
    }

    /// The parsed head, for the core's readers of it.
    pub fn inner(&self) -> &h1::RequestHead {
        &self.inner
    }

    /// A HEAD request: its response's body is left out.
    pub fn is_head(&self) -> bool {
        self.inner.method() == b"HEAD"
    }

    /// The target up to its first `?`.
    pub fn path_bytes(&self) -> &[u8] {
        target::split(self.inner.target()).0
    }

    /// What a trusted proxy's fields in it say, with `proxies` the trusted ones.
    pub fn said<'h>(&'h self, proxies: &Proxies) -> Said<'h> {
        proxies.said(&self.inner)
    }
}

/// A parsed request head. Field names are lowercase; values are as received,
/// without surrounding whitespace. Attributes are built when first read.
#[pyclass(module = "tremolo._core", frozen)]
pub struct RequestHead {
    inner: h1::RequestHead,
}

#[pymethods]
impl RequestHead {
    #[getter]
    fn method<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.method())
    }

    #[getter]
    fn target<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.target())
    }

    /// The target up to its first `?` (all of it when there is none).
    #[getter]
    fn path<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, target::split(self.inner.target()).0)
    }

    /// "1.0" or "1.1".
    #[getter]
    fn version(&self) -> &'static str {
        match self.inner.version {
            Version::Http10 => "1.0",
            Version::Http11 => "1.1",
        }
    }

    /// Every field as a `(name, value)` pair of bytes, in order received.
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.headers_with_host(py, None)
    }

    /// (client, scheme, host) by the word of the trusted `proxies` (this request
    /// came from one of them): the client as (address, port), else `peer`; the
    /// scheme, else `scheme`; the host, else None.
    fn forwarded<'py>(
        &self,
        py: Python<'py>,
        proxies: &Bound<'py, Proxies>,
        peer: Bound<'py, PyAny>,
        scheme: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let said = self.said(proxies.get());
        let host = match said.host {
            Some(host) => PyString::new(py, &String::from_utf8_lossy(host)).into_any(),
            None => py.None().into_bound(py),
        };
        let client = forwarded::client(py, &said)?.map_or(peer, Bound::into_any);
        let scheme = forwarded::scheme(py, &said).map_or(scheme, Bound::into_any);
        PyTuple::new(py, [client, scheme, host])
    }

    /// A WSGI environ: a copy of `base` (what the connection's requests share) with
    /// this request's keys, `root` taken off PATH_INFO's start; with `proxies` (the
    /// request came from a trusted proxy), the client, scheme and host they name
    /// (see wsgi.rs).
    #[pyo3(signature = (base, root, proxies=None))]
    pub fn environ<'py>(
        &self,
        py: Python<'py>,
        base: &Bound<'py, PyDict>,
        root: &str,
        proxies: Option<&Bound<'py, Proxies>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let said = proxies.map(|p| self.said(p.get()));
        wsgi::environ(py, &self.inner, said, base, root)
    }

    /// A copy of `base` with what this request adds to an ASGI http scope: `method`,
    /// `http_version`, `path` (percent-decoded, read as UTF-8 with replacement),
    /// `raw_path`, `query_string`, `headers` (lowercase names), and fresh copies of
    /// `asgi`, `state` and `extensions` (each request gets its own), in one call.
    /// With `proxies` (the request came from a trusted proxy), `client`, `scheme` and
    /// the `host` field are what the proxy's fields say, where they say it.
    #[pyo3(signature = (base, asgi, state, extensions, proxies=None))]
    pub fn scope<'py>(
        &self,
        py: Python<'py>,
        base: &Bound<'py, PyDict>,
        asgi: &Bound<'py, PyDict>,
        state: &Bound<'py, PyDict>,
        extensions: &Bound<'py, PyDict>,
        proxies: Option<&Bound<'py, Proxies>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let h = &self.inner;
        let scope = base.copy()?;
        let said = proxies.map(|p| self.said(p.get()));
        if let Some(said) = &said {
            // (most of a trusted peer's requests say nothing: base's stand)
            if let Some(client) = forwarded::client(py, said)? {
                scope.set_item(intern!(py, "client"), client)?;
            }
            if let Some(scheme) = forwarded::scheme(py, said) {
                scope.set_item(intern!(py, "scheme"), scheme)?;
            }
        }
        let (raw_path, query) = target::split(h.target());
        let method = String::from_utf8_lossy(h.method());
        scope.set_item(intern!(py, "method"), PyString::new(py, &method))?;
        let version = match h.version {
            Version::Http10 => intern!(py, "1.0"),
            Version::Http11 => intern!(py, "1.1"),
        };
        scope.set_item(intern!(py, "http_version"), version)?;
        let path = target::decoded_path(raw_path);
        scope.set_item(intern!(py, "path"), PyString::new(py, &path))?;
        scope.set_item(intern!(py, "raw_path"), PyBytes::new(py, raw_path))?;
        scope.set_item(intern!(py, "query_string"), PyBytes::new(py, query))?;
        let host = said.and_then(|s| s.host);
        scope.set_item(intern!(py, "headers"), self.headers_with_host(py, host)?)?;
        scope.set_item(intern!(py, "asgi"), asgi.copy()?)?;
        scope.set_item(intern!(py, "state"), state.copy()?)?;
        scope.set_item(intern!(py, "extensions"), extensions.copy()?)?;
        Ok(scope)
    }

    /// The first value of a field by lowercase name, or None.
    fn get<'py>(&self, py: Python<'py>, name: &[u8]) -> Option<Bound<'py, PyBytes>> {
        self.inner.get(name).map(|v| PyBytes::new(py, v))
    }

    /// Every value of a field by lowercase name.
    fn get_all<'py>(&self, py: Python<'py>, name: &[u8]) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for h in self
            .inner
            .headers
            .iter()
            .filter(|h| self.inner.bytes(h.name) == name)
        {
            list.append(PyBytes::new(py, self.inner.bytes(h.value)))?;
        }
        Ok(list)
    }

    /// The head as received (field names lowercased), request line to final CRLF.
    #[getter]
    fn raw<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.raw)
    }

    #[getter]
    fn keep_alive(&self) -> bool {
        self.inner.keep_alive
    }

    #[getter]
    fn expect_continue(&self) -> bool {
        self.inner.expect_continue
    }

    #[getter]
    fn upgrade(&self) -> bool {
        self.inner.upgrade
    }

    /// The declared body length: 0 without a body, None when chunked.
    #[getter]
    fn content_length(&self) -> Option<u64> {
        match self.inner.body {
            BodyKind::Empty => Some(0),
            BodyKind::Length(n) => Some(n),
            BodyKind::Chunked => None,
        }
    }

    #[getter]
    fn chunked(&self) -> bool {
        self.inner.body == BodyKind::Chunked
    }

    /// Whether body events follow this head.
    #[getter]
    fn has_body(&self) -> bool {
        self.inner.body != BodyKind::Empty
    }

    /// `(method, http10, keep_alive, has_body, expect_continue, upgrade)` in one call:
    /// what a server needs of every request, without six attribute lookups.
    fn info<'py>(&self, py: Python<'py>) -> (Bound<'py, PyBytes>, bool, bool, bool, bool, bool) {
        let h = &self.inner;
        (
            PyBytes::new(py, h.method()),
            h.version == Version::Http10,
            h.keep_alive,
            h.body != BodyKind::Empty,
            h.expect_continue,
            h.upgrade,
        )
    }

    /// `encode_response()` for this request: its version, its keep-alive (and
    /// `keep_alive`, the server's), and HEAD leaving the body out.
    #[pyo3(signature = (status, headers, body, keep_alive, date, server, reason=None))]
    #[allow(clippy::too_many_arguments)]
    pub fn respond<'py>(
        &self,
        py: Python<'py>,
        status: u16,
        headers: &Bound<'_, PyAny>,
        body: &[u8],
        keep_alive: bool,
        date: &[u8],
        server: &[u8],
        reason: Option<&[u8]>,
    ) -> PyResult<(Bound<'py, PyBytes>, bool)> {
        let h = &self.inner;
        let request = encode::Request {
            keep_alive: keep_alive && h.keep_alive,
            http10: h.version == Version::Http10,
            head_only: h.method() == b"HEAD",
        };
        encode::response(py, request, status, headers, body, date, server, reason)
    }

    fn __repr__(&self) -> String {
        format!(
            "<RequestHead {} {} HTTP/{}>",
            String::from_utf8_lossy(self.inner.method()),
            String::from_utf8_lossy(self.inner.target()),
            self.version()
        )
    }
}
