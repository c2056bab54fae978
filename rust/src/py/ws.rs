//! WebSocket for Python: the codec of one connection, the handshake helpers, and
//! the error that fails a connection.

use super::errors::websocket_error;
use crate::ws::{deflate, frame, handshake, Event, Outgoing, SendError, Session};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use std::borrow::Cow;

/// A frame that is not a whole message: a fragment (`opcode` 1 or 2 for the first,
/// 0 after; `fin` on the last), a ping (9), a pong (10), or the client's close (8,
/// with `code`, None when it sent none, and `reason`).
#[pyclass(module = "tremolo._core", frozen, get_all)]
pub struct Frame {
    opcode: u8,
    data: Py<PyBytes>,
    fin: bool,
    code: Option<u16>,
    reason: String,
}

#[pymethods]
impl Frame {
    fn __repr__(&self) -> String {
        let code = self
            .code
            .map_or_else(|| "None".to_owned(), |c| c.to_string());
        let fin = if self.fin { "True" } else { "False" };
        format!("Frame(opcode={}, fin={fin}, code={code})", self.opcode)
    }
}

/// An event as the application gets it, and what the protocol's queue counts of it.
struct Queued<'py> {
    object: Bound<'py, PyAny>,
    /// len() of a message, of a frame's data
    size: usize,
    /// a whole message, or a fragmented one's last piece
    ends_message: bool,
    is_close: bool,
}

fn event_object(py: Python<'_>, ev: Event) -> PyResult<Queued<'_>> {
    let queued = |object, size, ends_message| Queued {
        object,
        size,
        ends_message,
        is_close: false,
    };
    Ok(match ev {
        Event::Text(s) => queued(PyString::new(py, &s).into_any(), s.chars().count(), true),
        Event::Binary(b) => queued(PyBytes::new(py, &b).into_any(), b.len(), true),
        Event::Fragment { opcode, data, fin } => queued(
            frame(py, opcode, &data, fin)?,
            data.len(),
            opcode == frame::CONTINUATION && fin,
        ),
        Event::Ping(d) => queued(frame(py, frame::PING, &d, true)?, d.len(), false),
        Event::Pong(d) => queued(frame(py, frame::PONG, &d, true)?, d.len(), false),
        Event::Close { code, reason } => {
            let f = Frame {
                opcode: frame::CLOSE,
                data: PyBytes::new(py, b"").unbind(),
                fin: true,
                code,
                reason,
            };
            Queued {
                object: Bound::new(py, f)?.into_any(),
                size: 0,
                ends_message: false,
                is_close: true,
            }
        }
    })
}

fn frame<'py>(py: Python<'py>, opcode: u8, data: &[u8], fin: bool) -> PyResult<Bound<'py, PyAny>> {
    let f = Frame {
        opcode,
        data: PyBytes::new(py, data).unbind(),
        fin,
        code: None,
        reason: String::new(),
    };
    Ok(Bound::new(py, f)?.into_any())
}

/// Bytes of `data` (bytes, bytearray, memoryview, any buffer), or its UTF-8 if a str;
/// borrowed from bytes and str, copied from the others.
fn bytes_of<'a>(data: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(s) = data.cast::<PyString>() {
        return Ok(Cow::Borrowed(s.to_str()?.as_bytes()));
    }
    Ok(Cow::Owned(PyBuffer::<u8>::get(data)?.to_vec(data.py())?))
}

/// A frame as one new bytes object, written in place (one copy of the payload).
fn frame_bytes<'py>(py: Python<'py>, out: &Outgoing<'_>) -> PyResult<Bound<'py, PyBytes>> {
    PyBytes::new_with(py, out.len(), |buf| {
        out.write_to(buf);
        Ok(())
    })
}

/// The WebSocket codec of one connection (server side).
///
/// `feed(data, room=None)` returns `(events, reply)`: events are `str` (a text
/// message), `bytes` (a binary message) or `Frame`, and a `WebSocketError` instance
/// (not raised) at the end when the client broke the protocol; `reply` is what to
/// write back now (pongs), or None. With `room`, decoding stops before the next frame
/// once the events' payload reaches `room` bytes: the rest of the input is kept
/// (`held` bytes) and decoded first by the next feed, `feed(b"", room)` once the
/// caller has room again. The answer to the client's close or the close that fails
/// the connection is the caller's to send, with `close()`, when it is done with what
/// came before.
#[pyclass(module = "tremolo._core")]
pub struct WebSocketCodec {
    session: Session,
}

#[pymethods]
impl WebSocketCodec {
    #[new]
    #[pyo3(signature = (max_message_size, deflate=None))]
    fn new(max_message_size: usize, deflate: Option<(bool, bool, u8, u8)>) -> PyResult<Self> {
        let params = match deflate {
            None => None,
            Some((s_ctx, c_ctx, s_bits, c_bits)) => {
                if !(9..=15).contains(&s_bits) || !(8..=15).contains(&c_bits) {
                    return Err(PyValueError::new_err("window bits out of range"));
                }
                Some(deflate::Params {
                    server_no_context_takeover: s_ctx,
                    client_no_context_takeover: c_ctx,
                    server_max_window_bits: s_bits,
                    client_max_window_bits: c_bits,
                })
            }
        };
        Ok(WebSocketCodec {
            session: Session::new(max_message_size, params),
        })
    }

    #[pyo3(signature = (data, room=None))]
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
        room: Option<usize>,
    ) -> PyResult<(Bound<'py, PyList>, Option<Bound<'py, PyBytes>>)> {
        let (mut events, mut out) = (Vec::new(), Vec::new());
        let room = room.unwrap_or(usize::MAX);
        let result = self.session.feed(data, room, &mut events, &mut out);
        let list = PyList::empty(py);
        for ev in events {
            list.append(event_object(py, ev)?.object)?;
        }
        if let Err(e) = result {
            list.append(websocket_error(py, &e)?)?;
        }
        let reply = (!out.is_empty()).then(|| PyBytes::new(py, &out));
        Ok((list, reply))
    }

    /// feed() for a connection's queue, without a list to go through: messages,
    /// fragments, pings and pongs are appended to `queue` (a deque). Returns the
    /// reply to write (pongs), the size they add to the queue (len() of each
    /// message, of the data of each frame), how many messages they end, and the
    /// Close or the error that ended the read, if one did.
    #[allow(clippy::type_complexity)]
    fn feed_into<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
        room: usize,
        queue: &Bound<'py, PyAny>,
    ) -> PyResult<(
        Option<Bound<'py, PyBytes>>,
        usize,
        usize,
        Option<Bound<'py, PyAny>>,
    )> {
        let (mut events, mut out) = (Vec::new(), Vec::new());
        let result = self.session.feed(data, room, &mut events, &mut out);
        let (mut size, mut messages, mut end) = (0, 0, None);
        for ev in events {
            let queued = event_object(py, ev)?;
            if queued.is_close {
                end = Some(queued.object);
                continue;
            }
            size += queued.size;
            messages += usize::from(queued.ends_message);
            queue.call_method1(pyo3::intern!(py, "append"), (queued.object,))?;
        }
        if let Err(e) = result {
            end = Some(websocket_error(py, &e)?);
        }
        let reply = (!out.is_empty()).then(|| PyBytes::new(py, &out));
        Ok((reply, size, messages, end))
    }

    /// A message as a frame (or, with `fin` False, its first or next piece): a str
    /// as text, anything else as binary, unless `opcode` says otherwise.
    #[pyo3(signature = (data, opcode=None, fin=true))]
    fn send<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        opcode: Option<u8>,
        fin: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let opcode = opcode.unwrap_or(if data.is_instance_of::<PyString>() {
            frame::TEXT
        } else {
            frame::BINARY
        });
        if !frame::known(opcode) || opcode == frame::CONTINUATION || opcode == frame::CLOSE {
            return Err(PyValueError::new_err(format!(
                "cannot send opcode {opcode} this way"
            )));
        }
        let payload = bytes_of(data)?;
        match self.session.send(opcode, &payload, fin) {
            Ok(out) => frame_bytes(py, &out),
            Err(e @ SendError::ControlTooLong) => Err(PyValueError::new_err(e.to_string())),
            Err(e) => Err(PyRuntimeError::new_err(e.to_string())),
        }
    }

    /// The server's Close frame; b"" if one was sent already. A code that may not go
    /// on the wire (1005, 1006, 1015...) or None sends a close without a code.
    #[pyo3(signature = (code=Some(1000), reason=""))]
    fn close<'py>(
        &mut self,
        py: Python<'py>,
        code: Option<u16>,
        reason: &str,
    ) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.session.close(code, reason))
    }

    /// Bytes read but not decoded yet: the room given to `feed` ran out first.
    #[getter]
    fn held(&self) -> usize {
        self.session.held()
    }

    #[getter]
    fn close_sent(&self) -> bool {
        self.session.close_sent()
    }

    /// The client's Close came in, or it broke the protocol: nothing more is read.
    #[getter]
    fn close_received(&self) -> bool {
        self.session.close_received()
    }
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`; None when the key is not the
/// base64 of 16 bytes.
#[pyfunction]
pub fn ws_accept(key: &[u8]) -> Option<String> {
    handshake::accept_key(key)
}

/// The permessage-deflate answer to the values of Sec-WebSocket-Extensions: the
/// response's field value and the parameters for WebSocketCodec, or None.
#[pyfunction]
#[pyo3(signature = (values, window_bits=deflate::WINDOW_BITS))]
pub fn ws_negotiate(
    values: Vec<Vec<u8>>,
    window_bits: u8,
) -> Option<(String, (bool, bool, u8, u8))> {
    let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    deflate::negotiate(&values, window_bits).map(|(answer, p)| {
        (
            answer,
            (
                p.server_no_context_takeover,
                p.client_no_context_takeover,
                p.server_max_window_bits,
                p.client_max_window_bits,
            ),
        )
    })
}

/// One frame with any opcode; masked with `mask` (4 bytes) when given.
#[pyfunction]
#[pyo3(signature = (payload, opcode, fin=true, mask=None))]
pub fn ws_frame<'py>(
    py: Python<'py>,
    payload: &Bound<'py, PyAny>,
    opcode: u8,
    fin: bool,
    mask: Option<&[u8]>,
) -> PyResult<Bound<'py, PyBytes>> {
    let key = match mask {
        None => None,
        Some(m) => {
            Some(<[u8; 4]>::try_from(m).map_err(|_| PyValueError::new_err("a mask is 4 bytes"))?)
        }
    };
    if opcode > 0x0f {
        return Err(PyValueError::new_err("an opcode is 0 to 15"));
    }
    Ok(PyBytes::new(
        py,
        &frame::encode(opcode, fin, false, &bytes_of(payload)?, key),
    ))
}
