//! The extension module `tremolo._core`: the only place that uses pyo3.
//!
//! Conversions happen here and nowhere else; the core types know nothing of Python.

mod access;
mod asgi;
mod call;
mod connection;
mod cycle;
mod encode;
mod errors;
mod exchange;
mod forwarded;
mod native;
mod parser;
mod plain;
mod proxy;
mod ratelimit;
mod signal;
mod task;
mod ws;
mod wsgi;
mod wsgi_call;
mod wsgi_cycle;
mod wsgi_pool;

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("HTTPParseError", py.get_type::<errors::HTTPParseError>())?;
    m.add(
        "ResponseEncodeError",
        py.get_type::<errors::ResponseEncodeError>(),
    )?;
    m.add_class::<parser::RequestParser>()?;
    m.add_class::<parser::RequestHead>()?;
    m.add_class::<ratelimit::TokenBucket>()?;
    m.add_class::<task::RequestTask>()?;
    m.add_class::<signal::Signal>()?;
    m.add_function(wrap_pyfunction!(signal::signal, m)?)?;
    m.add_class::<exchange::ExchangeCore>()?;
    m.add_class::<connection::StateCore>()?;
    m.add_class::<connection::FlowCore>()?;
    m.add_class::<connection::ProtocolCore>()?;
    m.add_class::<cycle::CycleCore>()?;
    m.add_class::<native::RequestCore>()?;
    m.add_class::<native::ResponseCore>()?;
    m.add_class::<plain::PlainRoutes>()?;
    m.add_class::<call::RequestCall>()?;
    m.add_class::<asgi::AsgiHandle>()?;
    m.add_class::<wsgi_call::WsgiHandle>()?;
    m.add_class::<wsgi_cycle::WsgiCycleCore>()?;
    m.add_class::<wsgi_pool::WsgiPool>()?;
    m.add("RUNNING", task::running(py)?)?;
    m.add("WebSocketError", py.get_type::<errors::WebSocketError>())?;
    m.add_class::<ws::WebSocketCodec>()?;
    m.add_class::<ws::Frame>()?;
    m.add_function(wrap_pyfunction!(ws::ws_accept, m)?)?;
    m.add_function(wrap_pyfunction!(ws::ws_negotiate, m)?)?;
    m.add_function(wrap_pyfunction!(ws::ws_frame, m)?)?;
    m.add_function(wrap_pyfunction!(encode::encode_response, m)?)?;
    m.add_function(wrap_pyfunction!(wsgi::wsgi_head, m)?)?;
    m.add_function(wrap_pyfunction!(encode::encode_head, m)?)?;
    m.add_function(wrap_pyfunction!(encode::encode_chunk, m)?)?;
    m.add_function(wrap_pyfunction!(encode::last_chunk, m)?)?;
    m.add_function(wrap_pyfunction!(encode::chunk_head, m)?)?;
    m.add_function(wrap_pyfunction!(encode::interim, m)?)?;
    m.add(
        "CHUNK_END",
        pyo3::types::PyBytes::new(py, crate::h1::response::CHUNK_END),
    )?;
    m.add_function(wrap_pyfunction!(encode::http_date, m)?)?;
    m.add_function(wrap_pyfunction!(encode::reason_phrase, m)?)?;
    m.add_function(wrap_pyfunction!(proxy::proxy_header, m)?)?;
    m.add_class::<forwarded::Proxies>()?;
    m.add_class::<access::AccessLogCore>()?;
    m.add_function(wrap_pyfunction!(access::access_format, m)?)?;
    Ok(())
}
