//! One WebSocket connection, server side: the decoder, the encoder and the close
//! handshake (RFC 6455 §5.5, §7), without I/O.
//!
//! `feed` gives the events of a read and the bytes to write back at once (a Pong for
//! each Ping). The answer to the client's Close, or the Close that fails a connection
//! after a protocol error, is the caller's to send with `close` (see
//! [`Session::answer`]): it may first let the application finish with the messages
//! that came before, as a strict endpoint does. Once the server's Close is out nothing
//! more is sent; once the client's is in (or an error), nothing more is read.

use super::decoder::{Decoder, Event};
use super::deflate::{Compressor, Params, MIN_SIZE};
use super::frame::{self, CLOSE, CONTINUATION, PONG};
use super::{close, Error};

pub struct Session {
    decoder: Decoder,
    compressor: Option<Compressor>,
    /// the server is inside a fragmented message it sends
    sending: Option<bool>,
    close_sent: bool,
    close_received: bool,
}

/// Sending after the server's Close went out.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

impl Session {
    pub fn new(max_message: usize, deflate: Option<Params>) -> Self {
        Session {
            decoder: Decoder::new(max_message, deflate.as_ref()),
            compressor: deflate.as_ref().map(Compressor::new),
            sending: None,
            close_sent: false,
            close_received: false,
        }
    }

    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// The client's Close came in (or the connection failed): nothing more is read.
    pub fn close_received(&self) -> bool {
        self.close_received
    }

    /// Decodes a read: appends its events, and the Pongs to send back to `out`. An
    /// error is returned after the events before it; nothing more is read then.
    pub fn feed(
        &mut self,
        data: &[u8],
        events: &mut Vec<Event>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let start = events.len();
        let result = self.decoder.feed(data, events);
        for ev in &events[start..] {
            match ev {
                Event::Ping(payload) if !self.close_sent => {
                    out.extend(frame::encode(PONG, true, false, payload, None));
                }
                Event::Close { .. } => self.close_received = true,
                _ => {}
            }
        }
        if result.is_err() {
            self.close_received = true;
        }
        result
    }

    /// The Close that answers the client's (echoing its code, RFC 6455 §5.5.1; none
    /// when it sent none) or fails the connection after `error`.
    pub fn answer(&mut self, close: Option<&Event>, error: Option<&Error>) -> Vec<u8> {
        match (close, error) {
            (_, Some(e)) => self.close(Some(e.close_code()), &e.to_string()),
            (Some(Event::Close { code, .. }), None) => self.close(*code, ""),
            _ => Vec::new(),
        }
    }

    /// A message, or a piece of one (`fin` false: more follow, as continuation
    /// frames). Text and binary messages of MIN_SIZE bytes or more are compressed
    /// when permessage-deflate was agreed; a fragmented message is compressed if its
    /// first piece is.
    pub fn send(&mut self, opcode: u8, data: &[u8], fin: bool) -> Result<Vec<u8>, Closed> {
        if self.close_sent {
            return Err(Closed);
        }
        if frame::is_control(opcode) {
            return Ok(frame::encode(
                opcode,
                true,
                false,
                &data[..data.len().min(125)],
                None,
            ));
        }
        let (opcode, compress) = match self.sending {
            Some(compress) => (CONTINUATION, compress),
            None => (
                opcode,
                self.compressor.is_some() && (data.len() >= MIN_SIZE || !fin),
            ),
        };
        self.sending = if fin { None } else { Some(compress) };
        let rsv1 = compress && opcode != CONTINUATION;
        match self.compressor.as_mut().filter(|_| compress) {
            Some(c) => {
                let mut z = Vec::with_capacity(data.len() / 2 + 16);
                if c.compress(data, fin, &mut z).is_err() {
                    return Err(Closed);
                }
                Ok(frame::encode(opcode, fin, rsv1, &z, None))
            }
            None => Ok(frame::encode(opcode, fin, rsv1, data, None)),
        }
    }

    /// The server's Close (empty when it was sent already). `code` None sends an
    /// empty payload; so does a code that may not go on the wire.
    pub fn close(&mut self, code: Option<u16>, reason: &str) -> Vec<u8> {
        if std::mem::replace(&mut self.close_sent, true) {
            return Vec::new();
        }
        let code = code.filter(|c| close::valid_code(*c));
        frame::encode(CLOSE, true, false, &close::payload(code, reason), None)
    }
}
