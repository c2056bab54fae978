//! RequestCore and ResponseCore: what every native handler's request and response
//! hold, for the Python classes `tremolo.framework.request.Request` and
//! `tremolo.framework.response.Response` to build on.
//!
//! Every native request makes both, and most handlers read neither: as Python
//! objects with an `__init__` they cost a tenth of a small request. Here they are
//! made without a Python frame, and the response's status and fields are Rust
//! fields that PlainCall (plain.rs) answers from without reading Python attributes.
//! Everything else about them is the Python subclasses'.

use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyTuple};
use pyo3::PyTraverseError;

/// The Content-Type a response has unless the handler sets another.
pub const DEFAULT_CONTENT_TYPE: &[u8] = b"text/html; charset=utf-8";

static DEFAULT_HEAD: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
static DEFAULT_TYPE: PyOnceLock<Py<PyBytes>> = PyOnceLock::new();

fn default_type(py: Python<'_>) -> &Py<PyBytes> {
    DEFAULT_TYPE.get_or_init(py, || PyBytes::new(py, DEFAULT_CONTENT_TYPE).unbind())
}

/// `((b"Content-Type", DEFAULT_CONTENT_TYPE),)`: the fields of the usual response.
fn default_head(py: Python<'_>) -> PyResult<&Py<PyTuple>> {
    DEFAULT_HEAD.get_or_try_init(py, || {
        let field = PyTuple::new(
            py,
            [
                PyBytes::new(py, b"Content-Type").into_any(),
                default_type(py).bind(py).clone().into_any(),
            ],
        )?;
        Ok(PyTuple::new(py, [field])?.unbind())
    })
}

/// The request's part every request has: its exchange.
#[pyclass(module = "tremolo._core", subclass)]
pub struct RequestCore {
    #[pyo3(get)]
    exchange: Option<Py<PyAny>>,
}

#[pymethods]
impl RequestCore {
    #[new]
    fn new(exchange: Py<PyAny>) -> Self {
        RequestCore {
            exchange: Some(exchange),
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.exchange)
    }

    fn __clear__(&mut self) {
        self.exchange = None;
    }
}

/// The response's status and fields until they are sent.
#[pyclass(module = "tremolo._core", subclass)]
pub struct ResponseCore {
    #[pyo3(get)]
    request: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    pub status: u16,
    /// the reason phrase the handler set (None: the status's own)
    #[pyo3(get, set)]
    pub reason: Option<Py<PyBytes>>,
    /// the fields set so far (a list), made when first read
    fields: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    pub content_type: Py<PyBytes>,
    /// False when the handler means to close the connection after it
    #[pyo3(get, set)]
    pub keepalive: bool,
}

impl ResponseCore {
    /// The fields of the head to send: Content-Type (but for a response without a
    /// body), then the handler's.
    pub fn head<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let fields = match &self.fields {
            Some(f) if f.bind(py).is_truthy()? => Some(f.bind(py)),
            _ => None,
        };
        let status = self.status;
        let content_type = self.content_type.bind(py);
        if fields.is_none() && status == 200 && content_type.as_bytes() == DEFAULT_CONTENT_TYPE {
            return Ok(default_head(py)?.bind(py).clone().into_any());
        }
        if status == 204 || status == 304 || status < 200 {
            return Ok(match fields {
                Some(f) => f.clone(),
                None => PyTuple::empty(py).into_any(),
            });
        }
        let first = PyTuple::new(
            py,
            [
                PyBytes::new(py, b"Content-Type").into_any(),
                content_type.clone().into_any(),
            ],
        )?;
        let out = PyList::new(py, [first])?;
        if let Some(f) = fields {
            for field in f.try_iter()? {
                out.append(field?)?;
            }
        }
        Ok(out.into_any())
    }
}

#[pymethods]
impl ResponseCore {
    #[new]
    fn new(py: Python<'_>, request: Py<PyAny>) -> Self {
        ResponseCore {
            request: Some(request),
            status: 200,
            reason: None,
            fields: None,
            content_type: default_type(py).clone_ref(py),
            keepalive: true,
        }
    }

    #[getter]
    fn fields(&mut self, py: Python<'_>) -> Py<PyAny> {
        self.fields
            .get_or_insert_with(|| PyList::empty(py).into_any().unbind())
            .clone_ref(py)
    }

    #[setter]
    fn set_fields(&mut self, value: Py<PyAny>) {
        self.fields = Some(value);
    }

    /// The fields of the head to send (see ResponseCore::head).
    fn head_fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.head(py)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.request)?;
        visit.call(&self.fields)
    }

    fn __clear__(&mut self) {
        self.request = None;
        self.fields = None;
    }
}
