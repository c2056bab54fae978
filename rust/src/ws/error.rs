//! Why a WebSocket connection is failed, with the close code that says so.

use std::fmt;

/// A protocol violation by the peer (or a limit it passed). After one, the
/// connection is closed with [`Error::close_code`] and nothing more is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 1002: a frame RFC 6455 does not allow (the message says which rule).
    Protocol(&'static str),
    /// 1007: text or a close reason that is not UTF-8, or a bad compressed stream.
    InvalidData(&'static str),
    /// 1009: a frame or message larger than the limit.
    TooBig(u64),
}

impl Error {
    pub fn close_code(&self) -> u16 {
        match self {
            Error::Protocol(_) => 1002,
            Error::InvalidData(_) => 1007,
            Error::TooBig(_) => 1009,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(why) | Error::InvalidData(why) => f.write_str(why),
            Error::TooBig(limit) => write!(f, "message larger than {limit} bytes"),
        }
    }
}
