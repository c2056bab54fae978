//! Response encoding for Python: heads, chunks, dates.

use super::errors::encode_error;
use crate::h1::date;
use crate::h1::response::{
    interim as core_interim, last_chunk as core_last_chunk, push_chunk, push_chunk_head,
    EncodeError, Framing, HeadWriter,
};
use crate::h1::status;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyTuple};
use std::borrow::Cow;

/// A field name or value: bytes, or a bytearray.
fn field_bytes<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Cow::Owned(b.to_vec()));
    }
    Err(PyTypeError::new_err(
        "header names and values must be bytes",
    ))
}

/// Takes each `(name, value)` pair of `headers` (an iterable of 2-tuples or
/// 2-lists, as ASGI allows) as application fields (`HeadWriter::app_header`).
fn write_headers(w: &mut HeadWriter, headers: &Bound<'_, PyAny>) -> PyResult<()> {
    // lists and tuples (nearly every caller) are walked without the iterator protocol
    if let Ok(list) = headers.cast::<PyList>() {
        return list.iter().try_for_each(|item| write_field(w, &item));
    }
    if let Ok(tuple) = headers.cast::<PyTuple>() {
        return tuple.iter().try_for_each(|item| write_field(w, &item));
    }
    for item in headers.try_iter()? {
        write_field(w, &item?)?;
    }
    Ok(())
}

/// The two items of a header given as a 2-tuple or a 2-list; `bad` is the error
/// for anything else.
pub fn pair<'py>(
    item: &Bound<'py, PyAny>,
    bad: &str,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    if let Ok(t) = item.cast::<PyTuple>() {
        if t.len() == 2 {
            return Ok((t.get_item(0)?, t.get_item(1)?));
        }
    } else if let Ok(l) = item.cast::<PyList>() {
        if l.len() == 2 {
            return Ok((l.get_item(0)?, l.get_item(1)?));
        }
    }
    Err(PyTypeError::new_err(bad.to_owned()))
}

fn write_field(w: &mut HeadWriter, item: &Bound<'_, PyAny>) -> PyResult<()> {
    let (name, value) = pair(item, "a header must be a (name, value) pair of bytes")?;
    w.app_header(&field_bytes(&name)?, &field_bytes(&value)?)
        .map_err(encode_error)
}

/// A complete response with a Content-Length body: head and body in one bytes object,
/// ready for a single write, and whether the connection stays open (an application's
/// `Connection: close` closes it). With `head_only` (HEAD requests) the body is left
/// out but Content-Length still gives its size. A Content-Length among `headers` must
/// match the body, except on HEAD and 304, where it gives the size a GET would have.
#[pyfunction]
#[pyo3(signature = (status, headers, body, keep_alive, http10, date, server, reason=None, head_only=false))]
#[allow(clippy::too_many_arguments)]
pub fn encode_response<'py>(
    py: Python<'py>,
    status: u16,
    headers: &Bound<'_, PyAny>,
    body: &[u8],
    keep_alive: bool,
    http10: bool,
    date: &[u8],
    server: &[u8],
    reason: Option<&[u8]>,
    head_only: bool,
) -> PyResult<(Bound<'py, PyBytes>, bool)> {
    let request = Request {
        keep_alive,
        http10,
        head_only,
    };
    response(py, request, status, headers, body, date, server, reason)
}

/// What a response's encoding needs to know of its request.
pub struct Request {
    /// the connection may stay open after this response (the client's wish and the
    /// server's)
    pub keep_alive: bool,
    pub http10: bool,
    /// a HEAD request: the body is left out, its length kept
    pub head_only: bool,
}

/// `encode_response` for a request described by `request`.
#[allow(clippy::too_many_arguments)]
pub fn response<'py>(
    py: Python<'py>,
    request: Request,
    status: u16,
    headers: &Bound<'_, PyAny>,
    body: &[u8],
    date: &[u8],
    server: &[u8],
    reason: Option<&[u8]>,
) -> PyResult<(Bound<'py, PyBytes>, bool)> {
    let head_only = request.head_only;
    let mut w = HeadWriter::new(status, reason, 128).map_err(encode_error)?;
    write_headers(&mut w, headers)?;
    let framing = match w.app_length() {
        Some(n) if head_only || status == 304 => Framing::Length(n),
        Some(n) if n != body.len() as u64 => return Err(encode_error(EncodeError::LengthMismatch)),
        // a 304 describes a body it does not carry: no length unless one was given
        None if status == 304 => Framing::Unframed,
        _ => Framing::Length(body.len() as u64),
    };
    let keep_alive = request.keep_alive && !w.close_requested();
    let head = w
        .finish(framing, keep_alive, request.http10, date, server)
        .map_err(encode_error)?;
    let body = if head_only || crate::h1::response::has_no_body(status) {
        &[][..]
    } else {
        body
    };
    let data = PyBytes::new_with(py, head.len() + body.len(), |buf| {
        buf[..head.len()].copy_from_slice(&head);
        buf[head.len()..].copy_from_slice(body);
        Ok(())
    })?;
    Ok((data, keep_alive))
}

/// A response head alone, and whether the connection stays open. `content_length`
/// None and `chunked` False mean no framing field (a body delimited by closing, or
/// no body). A Content-Length among `headers` must be the one passed as
/// `content_length`: the caller frames the body, so it has to know.
#[pyfunction]
#[pyo3(signature = (status, headers, content_length, chunked, keep_alive, http10, date, server, reason=None))]
#[allow(clippy::too_many_arguments)]
pub fn encode_head<'py>(
    py: Python<'py>,
    status: u16,
    headers: &Bound<'_, PyAny>,
    content_length: Option<u64>,
    chunked: bool,
    keep_alive: bool,
    http10: bool,
    date: &[u8],
    server: &[u8],
    reason: Option<&[u8]>,
) -> PyResult<(Bound<'py, PyBytes>, bool)> {
    let framing = match (chunked, content_length) {
        (true, Some(_)) => {
            return Err(PyValueError::new_err(
                "a response is either chunked or has a Content-Length",
            ))
        }
        (true, None) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::Unframed,
    };
    let mut w = HeadWriter::new(status, reason, 128).map_err(encode_error)?;
    write_headers(&mut w, headers)?;
    if w.app_length().is_some() && w.app_length() != content_length {
        return Err(encode_error(EncodeError::LengthMismatch));
    }
    let keep_alive = keep_alive && !w.close_requested();
    let head = w
        .finish(framing, keep_alive, http10, date, server)
        .map_err(encode_error)?;
    Ok((PyBytes::new(py, &head), keep_alive))
}

/// One chunk of a chunked body; empty data gives empty bytes (an empty chunk
/// would end the body).
#[pyfunction]
pub fn encode_chunk<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(data.len() + 20);
    push_chunk(&mut out, data);
    PyBytes::new(py, &out)
}

/// A chunk's size line, for `size` bytes of data written after it (with CHUNK_END
/// after the data): a large piece goes out beside its framing, not copied into it.
#[pyfunction]
pub fn chunk_head(py: Python<'_>, size: usize) -> Bound<'_, PyBytes> {
    let mut out = Vec::with_capacity(18);
    push_chunk_head(&mut out, size);
    PyBytes::new(py, &out)
}

/// An interim response (100 Continue, 103 Early Hints) with its fields: no Date,
/// no framing. ResponseEncodeError for a status that is not 1xx (or is 101) or a
/// field that cannot be written.
#[pyfunction]
#[pyo3(signature = (status, fields=None))]
pub fn interim<'py>(
    py: Python<'py>,
    status: u16,
    fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let fields = fields.unwrap_or_default();
    let refs: Vec<(&[u8], &[u8])> = fields
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let out = core_interim(status, &refs).map_err(encode_error)?;
    Ok(PyBytes::new(py, &out))
}

/// The end of a chunked body, with optional trailer fields.
#[pyfunction]
#[pyo3(signature = (trailers=None))]
pub fn last_chunk<'py>(
    py: Python<'py>,
    trailers: Option<Vec<(Vec<u8>, Vec<u8>)>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let trailers = trailers.unwrap_or_default();
    let refs: Vec<(&[u8], &[u8])> = trailers
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let out = core_last_chunk(&refs).map_err(encode_error)?;
    Ok(PyBytes::new(py, &out))
}

/// An IMF-fixdate for a Unix time in seconds (fractions dropped, negatives as 0).
#[pyfunction]
pub fn http_date<'py>(py: Python<'py>, unix_time: f64) -> Bound<'py, PyBytes> {
    let secs = if unix_time.is_finite() && unix_time > 0.0 {
        unix_time as u64
    } else {
        0
    };
    PyBytes::new(py, &date::http_date(secs))
}

/// The standard reason phrase of a status code, or "".
#[pyfunction]
pub fn reason_phrase(code: u16) -> &'static str {
    status::reason(code)
}
