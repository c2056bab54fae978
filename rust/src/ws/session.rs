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
use super::deflate::{self, Params, MIN_SIZE};
use super::frame::{self, CLOSE, CONTINUATION, PONG};
use super::{close, Error};
use std::borrow::Cow;

/// A frame to send: its header and its payload (borrowed when it goes as it is), so
/// that the caller can write both into one buffer of its own with one copy.
pub struct Outgoing<'a> {
    head: [u8; 10],
    head_len: usize,
    pub payload: Cow<'a, [u8]>,
}

impl Outgoing<'_> {
    fn new(opcode: u8, fin: bool, rsv1: bool, payload: Cow<'_, [u8]>) -> Outgoing<'_> {
        let (head, head_len) = frame::header(opcode, fin, rsv1, payload.len());
        Outgoing {
            head,
            head_len,
            payload,
        }
    }

    pub fn head(&self) -> &[u8] {
        &self.head[..self.head_len]
    }

    pub fn len(&self) -> usize {
        self.head_len + self.payload.len()
    }

    pub fn is_empty(&self) -> bool {
        false // a frame always has a header
    }

    /// Writes the frame into `out`, which is exactly `len()` bytes.
    pub fn write_to(&self, out: &mut [u8]) {
        out[..self.head_len].copy_from_slice(self.head());
        out[self.head_len..].copy_from_slice(&self.payload);
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        self.write_to(&mut v);
        v
    }
}

pub struct Session {
    decoder: Decoder,
    /// the window the server compresses with, when permessage-deflate was agreed
    compress_bits: Option<u8>,
    /// the server is inside a fragmented message it sends
    fragmenting: bool,
    close_sent: bool,
    close_received: bool,
}

/// Why a message cannot be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// the server's Close went out: nothing may follow it
    Closed,
    /// a ping or pong longer than 125 bytes (RFC 6455 §5.5): refused, not cut short
    ControlTooLong,
    /// compressing the message failed
    Compress,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SendError::Closed => "the WebSocket is closing: nothing more may be sent",
            SendError::ControlTooLong => "a ping or pong carries at most 125 bytes",
            SendError::Compress => "the message could not be compressed",
        })
    }
}

impl Session {
    pub fn new(max_message: usize, deflate: Option<Params>) -> Self {
        Session {
            decoder: Decoder::new(max_message, deflate.as_ref()),
            compress_bits: deflate.as_ref().map(|p| p.server_max_window_bits),
            fragmenting: false,
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

    /// Bytes read but held back until the caller has room again (see `feed`).
    pub fn held(&self) -> usize {
        self.decoder.held()
    }

    /// Decodes a read: appends its events, and the Pongs to send back to `out`,
    /// stopping before the next frame once the events' payload reaches `room` bytes
    /// (the rest of `data` is held for the next feed; `usize::MAX`: no bound). An
    /// error is returned after the events before it; nothing more is read then.
    pub fn feed(
        &mut self,
        data: &[u8],
        room: usize,
        events: &mut Vec<Event>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let start = events.len();
        let result = self.decoder.feed(data, room, events);
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
    /// frames). A whole message of MIN_SIZE bytes or more is compressed when
    /// permessage-deflate was agreed; a fragmented one goes uncompressed (RFC 7692
    /// lets a sender choose per message), since each message is compressed on its own.
    pub fn send<'a>(
        &mut self,
        opcode: u8,
        data: &'a [u8],
        fin: bool,
    ) -> Result<Outgoing<'a>, SendError> {
        if self.close_sent {
            return Err(SendError::Closed);
        }
        if frame::is_control(opcode) {
            if data.len() > 125 {
                return Err(SendError::ControlTooLong);
            }
            return Ok(Outgoing::new(opcode, true, false, Cow::Borrowed(data)));
        }
        let opcode = if self.fragmenting {
            CONTINUATION
        } else {
            opcode
        };
        let whole = fin && !self.fragmenting;
        self.fragmenting = !fin;
        match self
            .compress_bits
            .filter(|_| whole && data.len() >= MIN_SIZE)
        {
            Some(bits) => {
                let mut z = Vec::with_capacity(data.len() / 2 + 16);
                if deflate::compress_message(bits, data, &mut z).is_err() {
                    return Err(SendError::Compress);
                }
                Ok(Outgoing::new(opcode, true, true, Cow::Owned(z)))
            }
            None => Ok(Outgoing::new(opcode, fin, false, Cow::Borrowed(data))),
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
