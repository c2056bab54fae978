//! TokenBucket for Python.

use crate::ratelimit;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// A token bucket: `rate` bytes per second, at most `burst` at once. Times are
/// seconds from any monotonic clock (`loop.time()`), passed in by the caller.
#[pyclass(module = "tremolo._core")]
pub struct TokenBucket {
    inner: ratelimit::TokenBucket,
}

#[pymethods]
impl TokenBucket {
    #[new]
    fn new(rate: f64, burst: f64, now: f64) -> PyResult<Self> {
        ratelimit::TokenBucket::new(rate, burst, now)
            .map(|inner| TokenBucket { inner })
            .ok_or_else(|| PyValueError::new_err("rate and burst must be finite and positive"))
    }

    /// Takes up to `want` bytes; returns `(allowed_now, seconds_to_wait_for_more)`.
    fn take(&mut self, want: u64, now: f64) -> (u64, f64) {
        let g = self.inner.take(want, now);
        (g.allowed, g.wait)
    }

    /// Whole bytes available at `now`.
    fn available(&mut self, now: f64) -> u64 {
        self.inner.available(now)
    }

    #[getter]
    fn rate(&self) -> f64 {
        self.inner.rate()
    }

    #[getter]
    fn burst(&self) -> f64 {
        self.inner.burst()
    }
}
