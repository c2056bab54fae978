//! PlainRoutes: the native framework's handle(exchange) for an application whose
//! routes need nothing of the request cycle but the handler (see Route.plain and
//! NativeAdapter._learn), and the parts of the RequestCall (call.rs) it returns for
//! such a route.
//!
//! A hello-world request through the Python cycle cost as much as the rest of the
//! server: the adapter's handle(), a coroutine of its own around the handler's, and
//! the answer. Here the route is found by its path, the handler's coroutine is
//! driven by a RequestCall (the task steps it as it would a coroutine), and a
//! handler returning bytes that fit in one write is answered by Exchange.respond()
//! without a Python frame. Everything else goes to the adapter's Python methods by
//! name: `_handle` (any other request), `_learn` (the routes, when the router
//! changed), `_plain_rest` (any other result) and `_fail` (a handler that raised).

use super::call::{cleared, Parts, RequestCall};
use super::exchange::{ExchangeCore, RECEIVED};
use super::native::ResponseCore;
use pyo3::exceptions::PyException;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict};
use pyo3::PyTraverseError;

static CLIENT_DISCONNECTED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

pub fn client_disconnected(py: Python<'_>) -> PyResult<&Py<PyAny>> {
    CLIENT_DISCONNECTED.get_or_try_init(py, || {
        Ok(py
            .import("tremolo.protocols")?
            .getattr("ClientDisconnected")?
            .unbind())
    })
}

/// The native adapter's handle(): see the module docs.
#[pyclass(module = "tremolo._core")]
pub struct PlainRoutes {
    adapter: Py<PyAny>,
    router: Py<PyAny>,
    request_class: Py<PyAny>,
    response_class: Py<PyAny>,
    /// what every handler gets besides request, response and context
    shared: Py<PyDict>,
    /// path -> Handler, as of the router's `version`
    #[pyo3(get, set)]
    routes: Py<PyDict>,
    #[pyo3(get, set)]
    version: i64,
    /// the largest body answered in one write
    buffer_size: usize,
}

#[pymethods]
impl PlainRoutes {
    #[new]
    fn new(
        py: Python<'_>,
        adapter: Py<PyAny>,
        router: Py<PyAny>,
        request_class: Py<PyAny>,
        response_class: Py<PyAny>,
        shared: Py<PyDict>,
        buffer_size: usize,
    ) -> Self {
        PlainRoutes {
            adapter,
            router,
            request_class,
            response_class,
            shared,
            routes: PyDict::new(py).unbind(),
            version: -1,
            buffer_size,
        }
    }

    /// The request's coroutine: a PlainCall for a plain route, else the adapter's.
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        ex: &Bound<'py, ExchangeCore>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let (version, router, adapter) = {
            let r = slf.borrow();
            (r.version, r.router.clone_ref(py), r.adapter.clone_ref(py))
        };
        let now: i64 = router.bind(py).getattr(intern!(py, "version"))?.extract()?;
        if now != version {
            // (_learn sets routes and version)
            adapter.call_method0(py, intern!(py, "_learn"))?;
        }
        let handler = {
            let x = ex.borrow();
            match x.head_ref() {
                Some(head) => {
                    let path = PyBytes::new(py, head.get().path_bytes());
                    slf.borrow().routes.bind(py).get_item(path)?
                }
                None => None,
            }
        };
        let Some(handler) = handler else {
            return adapter.bind(py).call_method1(intern!(py, "_handle"), (ex,));
        };
        let call = RequestCall::new(Parts::Plain(PlainParts {
            routes: slf.clone().unbind(),
            ex: ex.clone().unbind(),
            handler: handler.unbind(),
            server: None,
            response: None,
        }));
        Ok(Bound::new(py, call)?.into_any())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.adapter)?;
        visit.call(&self.router)?;
        visit.call(&self.request_class)?;
        visit.call(&self.response_class)?;
        visit.call(&self.shared)?;
        visit.call(&self.routes)?;
        Ok(())
    }
}

/// What a plain route's RequestCall holds.
pub struct PlainParts {
    routes: Py<PlainRoutes>,
    ex: Py<ExchangeCore>,
    handler: Py<PyAny>,
    server: Option<Py<PyDict>>,
    response: Option<Py<PyAny>>,
}

impl PlainParts {
    pub fn release(&mut self) {
        self.server = None;
        self.response = None;
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.routes)?;
        visit.call(&self.ex)?;
        visit.call(&self.handler)?;
        visit.call(&self.server)?;
        visit.call(&self.response)
    }
}

/// A plain call's parts, as references of their own.
#[allow(clippy::type_complexity)]
fn parts(
    slf: &Bound<'_, RequestCall>,
) -> PyResult<(
    Py<PlainRoutes>,
    Py<ExchangeCore>,
    Py<PyAny>,
    Option<Py<PyDict>>,
    Option<Py<PyAny>>,
)> {
    let py = slf.py();
    match &slf.borrow().parts {
        Parts::Plain(p) => Ok((
            p.routes.clone_ref(py),
            p.ex.clone_ref(py),
            p.handler.clone_ref(py),
            p.server.as_ref().map(|s| s.clone_ref(py)),
            p.response.as_ref().map(|r| r.clone_ref(py)),
        )),
        _ => Err(cleared()),
    }
}

/// Makes the request, the response and the handler's arguments, and calls it:
/// what it returns is to be awaited.
pub fn begin<'py>(slf: &Bound<'py, RequestCall>) -> PyResult<Result<Bound<'py, PyAny>, PyErr>> {
    let py = slf.py();
    let (routes, ex, handler, _, _) = parts(slf)?;
    let (request_class, response_class, shared) = {
        let r = routes.borrow(py);
        (
            r.request_class.clone_ref(py),
            r.response_class.clone_ref(py),
            r.shared.clone_ref(py),
        )
    };
    let ex = ex.bind(py);
    let request = request_class.bind(py).call1((ex,))?;
    let response = response_class.bind(py).call1((&request,))?;
    let protocol = ex.borrow().protocol_ref(py).ok_or_else(cleared)?;
    let context = protocol
        .getattr(intern!(py, "context"))?
        .get_item(intern!(py, "ctx"))?;
    let server = shared.bind(py).copy()?;
    server.set_item(intern!(py, "request"), &request)?;
    server.set_item(intern!(py, "response"), &response)?;
    server.set_item(intern!(py, "context"), context)?;
    if let Parts::Plain(p) = &mut slf.borrow_mut().parts {
        p.server = Some(server.clone().unbind());
        p.response = Some(response.unbind());
    }
    let handler = handler.bind(py);
    let func = handler.getattr(intern!(py, "func"))?;
    let takes_all = handler.getattr(intern!(py, "takes_all"))?.is_truthy()?;
    // (the handler's own errors are answered like the ones it raises later)
    Ok(if takes_all {
        func.call((), Some(&server))
    } else {
        handler
            .call_method1(intern!(py, "kwargs"), (&server, PyDict::new(py)))
            .and_then(|kwargs| func.call((), Some(kwargs.cast::<PyDict>()?)))
    })
}

/// The adapter's coroutine that awaits what a handler returned that is not a
/// coroutine, and answers its result.
pub fn rest<'py>(
    slf: &Bound<'py, RequestCall>,
    awaitable: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    let (adapter, handler, response, server) = rest_args(slf)?;
    adapter.call_method1(
        intern!(py, "_plain_rest"),
        (handler, response, server, awaitable, true),
    )
}

/// Answers a handler's result the short way; false when it is not bytes that fit
/// in one write for a response that may be kept alive.
fn answer(slf: &Bound<'_, RequestCall>, result: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = slf.py();
    let Ok(body) = result.cast_exact::<PyBytes>() else {
        return Ok(false);
    };
    // (read in place: this is every plain request's way out)
    let (ex, response) = {
        let c = slf.borrow();
        let Parts::Plain(p) = &c.parts else {
            return Err(cleared());
        };
        let Some(response) = &p.response else {
            return Ok(false);
        };
        if body.as_bytes().len() > p.routes.borrow(py).buffer_size
            || p.ex.borrow(py).phase != RECEIVED
        {
            return Ok(false);
        }
        (p.ex.clone_ref(py), response.clone_ref(py))
    };
    let (status, fields, reason) = {
        let r = response.bind(py).cast::<ResponseCore>()?.borrow();
        if !r.keepalive {
            return Ok(false);
        }
        (
            r.status,
            r.head(py)?,
            r.reason.as_ref().map(|r| r.bind(py).clone()),
        )
    };
    ExchangeCore::respond(
        ex.bind(py),
        status,
        &fields,
        body,
        reason.as_ref().map(|r| r.as_bytes()),
    )?;
    Ok(true)
}

/// What the handler's end (its result, or what it raised) leads to: None when the
/// request is answered, else the adapter's coroutine that finishes it.
pub fn after<'py>(
    slf: &Bound<'py, RequestCall>,
    outcome: Result<Bound<'py, PyAny>, PyErr>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = slf.py();
    let failed = match outcome {
        Ok(result) => match answer(slf, &result) {
            Ok(true) => return Ok(None),
            Ok(false) => {
                let (adapter, handler, response, server) = rest_args(slf)?;
                return adapter
                    .call_method1(
                        intern!(py, "_plain_rest"),
                        (handler, response, server, result),
                    )
                    .map(Some);
            }
            Err(e) => e,
        },
        Err(e) => e,
    };
    // as `except Exception` around the handler: a disconnect, a cancellation or an
    // exit goes on up
    if !failed.is_instance_of::<PyException>(py)
        || failed.is_instance(py, client_disconnected(py)?.bind(py))
    {
        return Err(failed);
    }
    let (adapter, _, _, server) = rest_args(slf)?;
    adapter
        .call_method1(intern!(py, "_fail"), (failed.into_value(py), server))
        .map(Some)
}

#[allow(clippy::type_complexity)]
fn rest_args<'py>(
    slf: &Bound<'py, RequestCall>,
) -> PyResult<(
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyDict>,
)> {
    let py = slf.py();
    let (routes, _, handler, server, response) = parts(slf)?;
    let (Some(response), Some(server)) = (response, server) else {
        return Err(cleared());
    };
    let adapter = routes.borrow(py).adapter.bind(py).clone();
    Ok((
        adapter,
        handler.into_bound(py),
        response.into_bound(py),
        server.into_bound(py),
    ))
}
