//! What the WSGI adapter needs of the core (PEP 3333): a request's environ, made in
//! one call from the request head and what the connection's requests share (the
//! `base` dict the adapter makes once per connection), and start_response's
//! arguments as the response encoder takes them (`wsgi_head`).
//!
//! Built in Python, the environ was the largest part of a WSGI hello world's cost
//! on the loop (a dict of twenty keys, a key and a decode per field, the proxy's
//! fields read apart), and start_response the largest in the application's thread.
//! Strings are bytes read as latin-1, and written as latin-1, as PEP 3333 says.

use super::encode;
use crate::forwarded::{Client, Said};
use crate::h1::{self, response::parse_content_length, target, Version};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

/// Bytes read as latin-1 (each byte the code point of its value).
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// `HTTP_` and the field name upper-cased with `-` as `_`; None for a name with
/// `_` (X_User and X-User would both be HTTP_X_USER: a client could pass one off
/// as the other, set by a proxy; dropped, as gunicorn and nginx do).
fn cgi_key(name: &[u8]) -> Option<String> {
    if name.contains(&b'_') {
        return None;
    }
    let mut key = String::with_capacity(name.len() + 5);
    key.push_str("HTTP_");
    key.extend(name.iter().map(|&b| match b {
        b'-' => '_',
        _ => char::from(b.to_ascii_uppercase()),
    }));
    Some(key)
}

/// The environ's fields from the head: (key, value), a field sent more than once
/// joined with ", " ("; " for Cookie), as CGI has it.
fn fields(h: &h1::RequestHead, host: Option<&[u8]>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(h.headers.len());
    for f in &h.headers {
        let name = h.bytes(f.name);
        let value = latin1(h.bytes(f.value));
        let key = match name {
            b"content-type" => "CONTENT_TYPE".to_owned(),
            b"content-length" => "CONTENT_LENGTH".to_owned(),
            _ => match cgi_key(name) {
                Some(key) => key,
                None => continue,
            },
        };
        if key == "HTTP_HOST" && host.is_some() {
            continue; // what the trusted proxy says stands (below)
        }
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, joined)) => {
                joined.push_str(if key == "HTTP_COOKIE" { "; " } else { ", " });
                joined.push_str(&value);
            }
            None => out.push((key, value)),
        }
    }
    if let Some(host) = host {
        out.push(("HTTP_HOST".to_owned(), latin1(host)));
    }
    out
}

/// A copy of `base` with the request's own keys: REQUEST_METHOD, PATH_INFO
/// (percent-decoded, `root` taken off its start), QUERY_STRING, SERVER_PROTOCOL,
/// CONTENT_TYPE, CONTENT_LENGTH and HTTP_*; and where a trusted proxy (`said`)
/// names them, REMOTE_ADDR, REMOTE_PORT, wsgi.url_scheme and HTTP_HOST.
pub fn environ<'py>(
    py: Python<'py>,
    h: &h1::RequestHead,
    said: Option<Said<'_>>,
    base: &Bound<'py, PyDict>,
    root: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let env = base.copy()?;
    let mut host = None;
    if let Some(said) = said {
        if let Client::Address(ip, port) = said.client {
            env.set_item(intern!(py, "REMOTE_ADDR"), ip.to_string())?;
            env.set_item(intern!(py, "REMOTE_PORT"), port.to_string())?;
        }
        if let Some(scheme) = said.scheme {
            let scheme = match scheme {
                "https" => intern!(py, "https"),
                _ => intern!(py, "http"),
            };
            env.set_item(intern!(py, "wsgi.url_scheme"), scheme)?;
        }
        host = said.host;
    }
    let method = String::from_utf8_lossy(h.method());
    env.set_item(intern!(py, "REQUEST_METHOD"), PyString::new(py, &method))?;
    let (raw_path, query) = target::split(h.target());
    let path = latin1(&target::percent_decode(raw_path));
    let path = match path.strip_prefix(root) {
        Some(rest) if !root.is_empty() && (rest.is_empty() || rest.starts_with('/')) => rest,
        _ => &path,
    };
    env.set_item(intern!(py, "PATH_INFO"), path)?;
    env.set_item(intern!(py, "QUERY_STRING"), latin1(query))?;
    let version = match h.version {
        Version::Http10 => intern!(py, "HTTP/1.0"),
        Version::Http11 => intern!(py, "HTTP/1.1"),
    };
    env.set_item(intern!(py, "SERVER_PROTOCOL"), version)?;
    for (key, value) in fields(h, host) {
        env.set_item(key, value)?;
    }
    Ok(env)
}

/// A str as latin-1 bytes; `what` names it in the error.
fn to_latin1<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Bound<'py, PyBytes>> {
    let py = obj.py();
    let text = obj
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("a WSGI {what} must be str")))?
        .to_str()?;
    if text.is_ascii() {
        return Ok(PyBytes::new(py, text.as_bytes()));
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let Ok(b) = u8::try_from(u32::from(c)) else {
            return Err(PyValueError::new_err(format!(
                "a WSGI {what} must be latin-1: {text:?}"
            )));
        };
        out.push(b);
    }
    Ok(PyBytes::new(py, &out))
}

/// start_response(status, headers) as the encoder takes it: the status code, the
/// reason phrase (None when empty), the fields as (bytes, bytes) pairs without
/// Content-Length, and the Content-Length (ASCII digits only: int() would take
/// "+5", "5_0" and "٥" too). The encoder checks the fields themselves.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn wsgi_head<'py>(
    status: &Bound<'py, PyAny>,
    headers: &Bound<'py, PyAny>,
) -> PyResult<(
    u16,
    Option<Bound<'py, PyBytes>>,
    Bound<'py, PyList>,
    Option<u64>,
)> {
    let py = status.py();
    let text = status
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("a WSGI status must be str"))?
        .to_str()?;
    let (code, reason) = text.split_once(' ').unwrap_or((text, ""));
    let code = match code.as_bytes() {
        [a, b, c] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => {
            return Err(PyValueError::new_err(format!(
                "invalid WSGI status {text:?}"
            )))
        }
    };
    let reason = if reason.is_empty() {
        None
    } else {
        Some(to_latin1(&PyString::new(py, reason).into_any(), "status")?)
    };
    let fields = PyList::empty(py);
    let mut length = None;
    for item in headers.try_iter()? {
        let item = item?;
        let (name, value) = encode::pair(&item, "a WSGI header must be a (name, value) tuple")?;
        let name = to_latin1(&name, "header name")?;
        let value = to_latin1(&value, "header value")?;
        if name.as_bytes().eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(value.as_bytes())
                .ok_or_else(|| PyValueError::new_err(format!("invalid Content-Length {value}")))?;
            length = Some(n);
        } else {
            // (hop-by-hop fields are dropped by the encoder)
            fields.append(PyTuple::new(py, [name, value])?)?;
        }
    }
    Ok((code, reason, fields, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_as_cgi_has_them() {
        assert_eq!(
            cgi_key(b"x-custom-field").as_deref(),
            Some("HTTP_X_CUSTOM_FIELD")
        );
        assert_eq!(cgi_key(b"x_user"), None);
        assert_eq!(latin1(b"caf\xe9"), "café");
    }
}
