//! Core errors as Python exceptions: the one place that maps them.

use crate::h1::response::EncodeError;
use crate::h1::Error;
use crate::ws;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

create_exception!(
    _core,
    HTTPParseError,
    PyException,
    "A request the parser refused. `status` is the response status to send before \
     closing the connection; `reason` says what was wrong; `answer` is the body to \
     send (worded as the original Tremolo words it)."
);
create_exception!(
    _core,
    ResponseEncodeError,
    PyValueError,
    "A response the encoder refused to write (bad status, or a control character \
     such as CR or LF in a header)."
);

/// An HTTPParseError instance (not raised) carrying `status`, `reason` and `answer`.
pub fn parse_error(py: Python<'_>, error: Error) -> PyResult<Bound<'_, PyAny>> {
    let err = HTTPParseError::new_err(error.description());
    let value = err.into_value(py).into_bound(py).into_any();
    value.setattr("status", error.status())?;
    value.setattr("reason", error.description())?;
    value.setattr("answer", error.answer())?;
    Ok(value)
}

create_exception!(
    _core,
    WebSocketError,
    PyException,
    "A client broke the WebSocket protocol or passed a limit. `close_code` is the code \
     the connection is closed with; `reason` says what was wrong."
);

/// A WebSocketError instance (not raised) carrying `close_code` and `reason`.
pub fn websocket_error<'py>(py: Python<'py>, error: &ws::Error) -> PyResult<Bound<'py, PyAny>> {
    let err = WebSocketError::new_err(error.to_string());
    let value = err.into_value(py).into_bound(py).into_any();
    value.setattr("close_code", error.close_code())?;
    value.setattr("reason", error.to_string())?;
    Ok(value)
}

pub fn encode_error(error: EncodeError) -> PyErr {
    ResponseEncodeError::new_err(error.to_string())
}
