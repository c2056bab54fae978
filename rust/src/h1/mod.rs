//! Sans-IO HTTP/1.1 (RFC 9110, RFC 9112).
//!
//! [`Parser`] turns request bytes into [`Event`]s through a [`Sink`]; [`response`] writes
//! response heads and chunk framing. Parsing is strict: anything that two
//! implementations could read differently is rejected with the status a client should get.

mod body;
pub mod chars;
pub mod date;
mod error;
mod head;
mod limits;
mod line;
mod parser;
pub mod response;
mod runs;
pub mod status;
pub mod target;
mod whole;

pub use error::Error;
pub use head::{BodyKind, Header, RequestHead, Span, Version};
pub use limits::Limits;
pub use parser::{Collect, Event, Parser, Sink};
