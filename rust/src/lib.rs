//! Protocol core of tremolo.
//!
//! Everything here is sans-IO: it turns bytes into events and events into bytes, and
//! never touches a socket, a file or a clock (time is always a parameter). The Python
//! extension module lives in [`py`] behind the `python` cargo feature, so the core builds
//! and tests with a plain `cargo test`.
//!
//! - [`h1`]: HTTP/1.1 request parser, response head encoder, chunk framing, dates.
//! - [`ws`]: WebSocket codec: frames, masking, UTF-8, close handshake, permessage-deflate.
//! - [`ratelimit`]: token buckets for download and upload speed limits.
//! - [`proxy`]: the PROXY protocol header (v1 and v2) a load balancer sends first.
//! - [`forwarded`]: what a trusted proxy's X-Forwarded-* or Forwarded fields say.
//! - [`access`]: the access log's formats and lines.
#![forbid(unsafe_code)]

pub mod access;
pub mod forwarded;
pub mod h1;
pub mod proxy;
pub mod ratelimit;
pub mod ws;

#[cfg(feature = "python")]
mod py;
