//! `Proxies`: the trusted proxies and the header family they are believed in, and
//! what a request's proxy fields say, for Python (the rules are crate::forwarded's).

use crate::forwarded::{self, peer_address, Client, Family, Said};
use crate::h1;
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use std::net::IpAddr;

/// The trusted proxies (`networks` as (address, prefix length) pairs, or
/// `everyone`), and whether their word is RFC 7239 `Forwarded` (`rfc7239`) or
/// X-Forwarded-*. Calling it with a peer's address says whether that peer is one.
#[pyclass(module = "tremolo._core", frozen)]
pub struct Proxies {
    proxies: forwarded::Proxies,
    family: Family,
}

#[pymethods]
impl Proxies {
    #[new]
    #[pyo3(signature = (networks, *, everyone=false, rfc7239=false))]
    fn new(networks: Vec<(String, u8)>, everyone: bool, rfc7239: bool) -> PyResult<Proxies> {
        let networks = networks
            .into_iter()
            .map(|(address, prefix)| {
                let ip: IpAddr = address.parse().map_err(|_| {
                    PyValueError::new_err(format!("not an IP address: {address:?}"))
                })?;
                Ok((ip, prefix))
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Proxies {
            proxies: forwarded::Proxies::new(everyone, networks),
            family: if rfc7239 {
                Family::Forwarded
            } else {
                Family::XForwarded
            },
        })
    }

    /// Whether the peer at `peer` (an address as getpeername gives it) is trusted.
    fn __call__(&self, peer: Option<&str>) -> bool {
        peer.and_then(peer_address)
            .is_some_and(|ip| self.proxies.trusts(ip))
    }
}

impl Proxies {
    pub fn said<'h>(&self, head: &'h h1::RequestHead) -> Said<'h> {
        forwarded::resolve(head, self.family, &self.proxies)
    }
}

/// The client the proxies name, as an ASGI scope has it, `(host, port)`; None when
/// they name none (the connection's peer stands).
pub fn client<'py>(py: Python<'py>, said: &Said) -> PyResult<Option<Bound<'py, PyTuple>>> {
    match said.client {
        Client::Peer => Ok(None),
        Client::Address(ip, port) => {
            let host = PyString::new(py, &ip.to_string()).into_any();
            Ok(Some(PyTuple::new(
                py,
                [host, port.into_pyobject(py)?.into_any()],
            )?))
        }
    }
}

/// The scheme the proxies say, if they do.
pub fn scheme<'py>(py: Python<'py>, said: &Said) -> Option<Bound<'py, PyString>> {
    said.scheme.map(|scheme| match scheme {
        "https" => intern!(py, "https").clone(),
        _ => intern!(py, "http").clone(),
    })
}
