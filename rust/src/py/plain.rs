//! PlainRoutes: the native framework's handle(exchange) for an application whose
//! routes need nothing of the request cycle but the handler (see Route.plain and
//! NativeAdapter._learn), and PlainCall, the coroutine it returns for such a route.
//!
//! A hello-world request through the Python cycle cost as much as the rest of the
//! server: the adapter's handle(), a coroutine of its own around the handler's, and
//! the answer. Here the route is found by its path, the handler's coroutine is
//! driven by a PlainCall (the task sends into it as into any coroutine), and a
//! handler returning bytes that fit in one write is answered by Exchange.respond()
//! without a Python frame. Everything else goes to the adapter's Python methods by
//! name: `_handle` (any other request), `_learn` (the routes, when the router
//! changed), `_plain_rest` (any other result) and `_fail` (a handler that raised).

use super::exchange::{ExchangeCore, RECEIVED};
use super::native::ResponseCore;
use super::task::{self, Step};
use pyo3::exceptions::{PyAttributeError, PyException, PyStopIteration, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString};
use pyo3::PyTraverseError;

/// What a PlainCall needs of Python, looked up once.
struct Known {
    coroutine_type: Py<PyAny>,
    client_disconnected: Py<PyAny>,
}

static KNOWN: PyOnceLock<Known> = PyOnceLock::new();

fn known(py: Python<'_>) -> PyResult<&'static Known> {
    KNOWN.get_or_try_init(py, || {
        Ok(Known {
            coroutine_type: py.import("types")?.getattr("CoroutineType")?.unbind(),
            client_disconnected: py
                .import("tremolo.protocols")?
                .getattr("ClientDisconnected")?
                .unbind(),
        })
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
        let call = PlainCall {
            routes: slf.clone().unbind(),
            ex: ex.clone().unbind(),
            handler: handler.unbind(),
            server: None,
            response: None,
            inner: None,
            stage: Stage::Start,
            running: false,
        };
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

#[derive(Clone, Copy, PartialEq)]
enum Stage {
    /// not sent into yet
    Start,
    /// the handler's coroutine runs
    Handler,
    /// a Python coroutine of the adapter finishes the request
    Rest,
    Done,
}

/// A plain route's request cycle, as a coroutine: see the module docs.
#[pyclass(module = "tremolo._core")]
pub struct PlainCall {
    routes: Py<PlainRoutes>,
    ex: Py<ExchangeCore>,
    handler: Py<PyAny>,
    server: Option<Py<PyDict>>,
    response: Option<Py<PyAny>>,
    /// the coroutine being driven
    inner: Option<Py<PyAny>>,
    stage: Stage,
    /// being stepped now
    running: bool,
}

/// How a send into the driven coroutine ended.
enum Sent<'py> {
    Yielded(Bound<'py, PyAny>),
    Returned(Bound<'py, PyAny>),
    Raised(PyErr),
}

impl PlainCall {
    /// Makes the request, the response and the handler's arguments, and calls it:
    /// what it returns is to be awaited.
    fn begin<'py>(slf: &Bound<'py, Self>) -> PyResult<Result<Bound<'py, PyAny>, PyErr>> {
        let py = slf.py();
        let (routes, ex, handler) = {
            let c = slf.borrow();
            (
                c.routes.clone_ref(py),
                c.ex.clone_ref(py),
                c.handler.clone_ref(py),
            )
        };
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
        {
            let mut c = slf.borrow_mut();
            c.server = Some(server.clone().unbind());
            c.response = Some(response.unbind());
            c.stage = Stage::Handler;
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

    /// Sends None (or throws `exc`) into the driven coroutine, in `context` if
    /// given.
    fn send_inner<'py>(
        inner: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
        exc: Option<&Bound<'py, PyAny>>,
    ) -> Sent<'py> {
        let py = inner.py();
        match task::resume(inner, context, exc) {
            Ok(v) => Sent::Yielded(v),
            Err(e) if e.is_instance_of::<PyStopIteration>(py) => {
                match e.value(py).getattr(intern!(py, "value")) {
                    Ok(v) => Sent::Returned(v),
                    Err(e) => Sent::Raised(e),
                }
            }
            Err(e) => Sent::Raised(e),
        }
    }

    /// Answers a handler's result the short way; false when it is not bytes that
    /// fit in one write for a response that may be kept alive.
    fn answer(slf: &Bound<'_, Self>, result: &Bound<'_, PyAny>) -> PyResult<bool> {
        let py = slf.py();
        let Ok(body) = result.cast_exact::<PyBytes>() else {
            return Ok(false);
        };
        let (routes, ex, response) = {
            let c = slf.borrow();
            let Some(r) = &c.response else {
                return Ok(false);
            };
            (c.routes.clone_ref(py), c.ex.clone_ref(py), r.clone_ref(py))
        };
        if body.as_bytes().len() > routes.borrow(py).buffer_size || ex.borrow(py).phase != RECEIVED
        {
            return Ok(false);
        }
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

    /// What the handler's end (its result, or what it raised) leads to: None when
    /// the request is answered, else the adapter's coroutine that finishes it.
    fn after_handler<'py>(
        slf: &Bound<'py, Self>,
        outcome: Result<Bound<'py, PyAny>, PyErr>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        let failed = match outcome {
            Ok(result) => match Self::answer(slf, &result) {
                Ok(true) => return Ok(None),
                Ok(false) => {
                    let (adapter, handler, response, server) = Self::rest_args(slf)?;
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
        // as `except Exception` around the handler: a disconnect, a cancellation
        // or an exit goes on up
        if !failed.is_instance_of::<PyException>(py)
            || failed.is_instance(py, known(py)?.client_disconnected.bind(py))
        {
            return Err(failed);
        }
        let (adapter, _, _, server) = Self::rest_args(slf)?;
        adapter
            .call_method1(intern!(py, "_fail"), (failed.into_value(py), server))
            .map(Some)
    }

    #[allow(clippy::type_complexity)]
    fn rest_args<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(
        Bound<'py, PyAny>,
        Bound<'py, PyAny>,
        Bound<'py, PyAny>,
        Bound<'py, PyDict>,
    )> {
        let py = slf.py();
        let c = slf.borrow();
        let (Some(response), Some(server)) = (&c.response, &c.server) else {
            return Err(cleared());
        };
        let adapter = c.routes.borrow(py).adapter.bind(py).clone();
        Ok((
            adapter,
            c.handler.bind(py).clone(),
            response.bind(py).clone(),
            server.bind(py).clone(),
        ))
    }

    /// One step, sending None (or throwing `exc`) into the driven coroutine, in
    /// `context` if given: what it yields, or how the request's cycle ended. The
    /// task calls this directly (a PlainCall is its coroutine's stand-in).
    pub fn advance<'py>(
        slf: &Bound<'py, Self>,
        context: Option<&Bound<'py, PyAny>>,
        exc: Option<&Bound<'py, PyAny>>,
    ) -> Step<'py> {
        {
            let mut c = slf.borrow_mut();
            if c.running {
                // (stepped from inside its own handler: as a running coroutine says)
                return Step::Raised(PyValueError::new_err(
                    "the request's cycle is already running",
                ));
            }
            c.running = true;
        }
        let step = match Self::advance_or_err(slf, context, exc) {
            Ok(step) => step,
            Err(e) => {
                Self::close_up(slf);
                Step::Raised(e)
            }
        };
        slf.borrow_mut().running = false;
        step
    }

    fn advance_or_err<'py>(
        slf: &Bound<'py, Self>,
        context: Option<&Bound<'py, PyAny>>,
        exc: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Step<'py>> {
        let py = slf.py();
        let mut exc = exc.cloned();
        if slf.borrow().stage == Stage::Start {
            if let Some(e) = exc {
                return Err(PyErr::from_value(e));
            }
            let next = match Self::begin(slf)? {
                Ok(awaitable)
                    if awaitable.is_exact_instance(known(py)?.coroutine_type.bind(py)) =>
                {
                    awaitable
                }
                Ok(awaitable) => {
                    // not a coroutine: the adapter awaits it
                    let (adapter, handler, response, server) = Self::rest_args(slf)?;
                    slf.borrow_mut().stage = Stage::Rest;
                    adapter.call_method1(
                        intern!(py, "_plain_rest"),
                        (handler, response, server, awaitable, true),
                    )?
                }
                Err(e) => {
                    slf.borrow_mut().stage = Stage::Rest;
                    Self::after_handler(slf, Err(e))?.ok_or_else(cleared)?
                }
            };
            slf.borrow_mut().inner = Some(next.unbind());
        }
        loop {
            let (inner, stage) = {
                let c = slf.borrow();
                (c.inner.as_ref().map(|i| i.clone_ref(py)), c.stage)
            };
            let Some(inner) = inner.filter(|_| stage != Stage::Done) else {
                return Ok(Step::Returned);
            };
            let outcome = match Self::send_inner(inner.bind(py), context, exc.as_ref()) {
                Sent::Yielded(v) => return Ok(Step::Yielded(v)),
                Sent::Returned(v) if stage == Stage::Handler => Ok(v),
                Sent::Raised(e) if stage == Stage::Handler => Err(e),
                Sent::Returned(_) => {
                    Self::close_up(slf);
                    return Ok(Step::Returned);
                }
                Sent::Raised(e) => return Err(e),
            };
            let next = Self::after_handler(slf, outcome)?;
            let mut c = slf.borrow_mut();
            c.stage = Stage::Rest;
            match next {
                Some(next) => c.inner = Some(next.unbind()),
                None => {
                    drop(c);
                    Self::close_up(slf);
                    return Ok(Step::Returned);
                }
            }
            exc = None;
        }
    }

    /// Done: what it holds goes (the server dict refers to the request and back),
    /// but the coroutine it drove, for whoever looks at it (see __getattr__).
    fn close_up(slf: &Bound<'_, Self>) {
        let mut c = slf.borrow_mut();
        c.stage = Stage::Done;
        c.server = None;
        c.response = None;
    }
}

impl PlainCall {
    /// A step as a coroutine's send() tells it.
    fn outcome(step: Step<'_>) -> PyResult<Bound<'_, PyAny>> {
        match step {
            Step::Yielded(v) => Ok(v),
            Step::Returned => Err(PyStopIteration::new_err(())),
            Step::Raised(e) => Err(e),
        }
    }
}

fn cleared() -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err("the request cycle was cleared")
}

#[pymethods]
impl PlainCall {
    /// As a coroutine's send(None) (there is nothing to send into it).
    fn send<'py>(slf: &Bound<'py, Self>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if !value.is_none() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "a request's cycle is sent None only",
            ));
        }
        Self::outcome(Self::advance(slf, None, None))
    }

    #[pyo3(signature = (typ, val=None, _tb=None))]
    fn throw<'py>(
        slf: &Bound<'py, Self>,
        typ: &Bound<'py, PyAny>,
        val: Option<&Bound<'py, PyAny>>,
        _tb: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        // throw(exception) or the old throw(type, value)
        let exc = match val {
            Some(v) if !v.is_none() => typ.call1((v,))?,
            _ if typ.is_instance_of::<pyo3::types::PyType>() => typ.call0()?,
            _ => typ.clone(),
        };
        let _ = py;
        Self::outcome(Self::advance(slf, None, Some(&exc)))
    }

    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let inner = slf.borrow().inner.as_ref().map(|i| i.clone_ref(py));
        Self::close_up(slf);
        if let Some(inner) = inner {
            inner.call_method0(py, intern!(py, "close"))?;
        }
        Ok(())
    }

    /// What code that looks into a task's coroutine reads (anyio asks for
    /// cr_running and cr_frame through inspect.getcoroutinestate) is the driven
    /// coroutine's: the handler's, then the adapter's.
    fn __getattr__<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let inner = slf.borrow().inner.as_ref().map(|i| i.clone_ref(py));
        match inner {
            Some(inner) if name.to_str()?.starts_with("cr_") => inner.into_bound(py).getattr(name),
            _ => Err(PyAttributeError::new_err(name.clone().unbind())),
        }
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.routes)?;
        visit.call(&self.ex)?;
        visit.call(&self.handler)?;
        visit.call(&self.server)?;
        visit.call(&self.response)?;
        visit.call(&self.inner)?;
        Ok(())
    }

    fn __clear__(&mut self) {
        self.server = None;
        self.response = None;
        self.inner = None;
    }
}
