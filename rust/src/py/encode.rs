//! Response encoding for Python: heads, chunks, dates.

use super::errors::encode_error;
use crate::h1::date;
use crate::h1::response::{last_chunk as core_last_chunk, push_chunk, Framing, HeadWriter};
use crate::h1::status;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

/// Writes each `(name, value)` pair of `headers` (any iterable of 2-tuples of bytes).
fn write_headers(w: &mut HeadWriter, headers: &Bound<'_, PyAny>) -> PyResult<()> {
    for item in headers.try_iter()? {
        let item = item?;
        let pair = item
            .cast::<PyTuple>()
            .map_err(|_| PyTypeError::new_err("a header must be a (name, value) tuple of bytes"))?;
        if pair.len() != 2 {
            return Err(PyTypeError::new_err(
                "a header must be a (name, value) tuple of bytes",
            ));
        }
        let name = pair.get_item(0)?;
        let value = pair.get_item(1)?;
        let name = name
            .cast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err("header names must be bytes"))?;
        let value = value
            .cast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err("header values must be bytes"))?;
        w.header(name.as_bytes(), value.as_bytes())
            .map_err(encode_error)?;
    }
    Ok(())
}

/// A complete response with a Content-Length body: head and body in one bytes object,
/// ready for a single write. With `head_only` (HEAD requests) the body is left out
/// but Content-Length still gives its size.
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
) -> PyResult<Bound<'py, PyBytes>> {
    let mut w = HeadWriter::new(status, reason, 128).map_err(encode_error)?;
    write_headers(&mut w, headers)?;
    let head = w
        .finish(
            Framing::Length(body.len() as u64),
            keep_alive,
            http10,
            date,
            server,
        )
        .map_err(encode_error)?;
    let body = if head_only || crate::h1::response::has_no_body(status) {
        &[][..]
    } else {
        body
    };
    PyBytes::new_with(py, head.len() + body.len(), |buf| {
        buf[..head.len()].copy_from_slice(&head);
        buf[head.len()..].copy_from_slice(body);
        Ok(())
    })
}

/// A response head alone. `content_length` None and `chunked` False mean no framing
/// field (a body delimited by closing, or no body).
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
) -> PyResult<Bound<'py, PyBytes>> {
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
    let head = w
        .finish(framing, keep_alive, http10, date, server)
        .map_err(encode_error)?;
    Ok(PyBytes::new(py, &head))
}

/// One chunk of a chunked body; empty data gives empty bytes (an empty chunk
/// would end the body).
#[pyfunction]
pub fn encode_chunk<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(data.len() + 20);
    push_chunk(&mut out, data);
    PyBytes::new(py, &out)
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
