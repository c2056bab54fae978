//! Sans-IO WebSocket (RFC 6455) with permessage-deflate (RFC 7692), server side.
//!
//! [`Session`] is one connection: `feed` turns a read into [`Event`]s plus the bytes
//! to write back, `send` and `close` turn messages into frames. [`handshake`] makes
//! the accept key, [`deflate::negotiate`] picks the compression parameters.

pub mod close;
mod decoder;
pub mod deflate;
mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
mod session;
mod utf8;

pub use decoder::{Decoder, Event};
pub use error::Error;
pub use session::{Outgoing, SendError, Session};

#[cfg(test)]
mod tests;
