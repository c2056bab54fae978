//! `proxy_header()`: the PROXY protocol parser for Python.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::proxy::{parse, Accept, Header};

type Address = (String, u16);

/// Parses the PROXY header (`accept`: "v1", "v2" or "auto") at the start of
/// `data`: None while it is incomplete; else (bytes it took, None for a LOCAL or
/// UNKNOWN header, or ((client ip, port), (destination ip, port))). ValueError says
/// why a header is refused.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn proxy_header(
    data: &[u8],
    accept: &str,
) -> PyResult<Option<(usize, Option<(Address, Address)>)>> {
    let accept = match accept {
        "v1" => Accept::V1,
        "v2" => Accept::V2,
        "auto" => Accept::Any,
        other => {
            return Err(PyValueError::new_err(format!(
                "accept must be v1, v2 or auto, not {other:?}"
            )))
        }
    };
    match parse(data, accept) {
        Ok(None) => Ok(None),
        Ok(Some((Header::Local, used))) => Ok(Some((used, None))),
        Ok(Some((
            Header::Proxied {
                source,
                destination,
            },
            used,
        ))) => Ok(Some((
            used,
            Some((
                (source.0.to_string(), source.1),
                (destination.0.to_string(), destination.1),
            )),
        ))),
        Err(err) => Err(PyValueError::new_err(err.reason())),
    }
}
