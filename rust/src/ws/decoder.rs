//! Frames in, events out (RFC 6455 §5), as bytes arrive in reads of any size.
//!
//! Every rule is checked as soon as the bytes that break it are in: a frame header as
//! soon as its first two bytes are, sizes before anything is allocated for the
//! payload, text UTF-8 piece by piece (across frames and reads), a compressed
//! message's inflated size as it inflates. A payload is unmasked straight into the
//! message's buffer.
//!
//! What a feed hands out is bounded by the caller's `room` (the bytes its queue can
//! still take), not by what the read holds: a few KiB of compressed frames can
//! inflate to a thousand times as much. Once the payload handed out reaches `room`
//! the decoder stops before the next frame and keeps the rest of the input, which a
//! later feed (with room again) decodes first. So the caller holds at most its room
//! plus one message, and the decoder at most one read.

use super::deflate::{Decompressor, Params};
use super::frame::{self, CLOSE, CONTINUATION, PING, PONG, TEXT};
use super::utf8::Utf8Stream;
use super::{close, mask, Error};

/// What a client sent. A message in one frame comes whole (`Text`, `Binary`); a
/// message in several frames comes frame by frame (`Fragment`), checked as a whole.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Text(String),
    Binary(Vec<u8>),
    /// A frame of a fragmented message: `opcode` is TEXT or BINARY for the first,
    /// CONTINUATION after; `data` is inflated when the message is compressed.
    Fragment {
        opcode: u8,
        data: Vec<u8>,
        fin: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The client's Close: its code (None when it sent none) and reason.
    Close {
        code: Option<u16>,
        reason: String,
    },
}

impl Event {
    /// The bytes of payload it carries (what it adds to the caller's queue; 0 for
    /// a Close).
    pub fn payload_len(&self) -> usize {
        match self {
            Event::Text(s) => s.len(),
            Event::Binary(d)
            | Event::Ping(d)
            | Event::Pong(d)
            | Event::Fragment { data: d, .. } => d.len(),
            Event::Close { .. } => 0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    fin: bool,
    opcode: u8,
    compressed: bool,
    key: [u8; 4],
    len: u64,
    done: u64,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    Payload(Frame),
    /// After a Close or an error: nothing more is read.
    Done,
}

pub struct Decoder {
    max_message: usize,
    state: State,
    head: [u8; 14],
    head_len: usize,
    /// the opcode of the message in progress (TEXT or BINARY), 0 between messages
    message: u8,
    compressed: bool,
    fragmented: bool,
    /// bytes of the message in progress handed out in earlier fragments
    size: usize,
    /// whether this frame's text is checked piece by piece (else once at its end)
    stream_check: bool,
    data: Vec<u8>,
    /// a control frame's payload
    raw: Vec<u8>,
    utf8: Utf8Stream,
    inflate: Option<Decompressor>,
    /// input not decoded yet because the room ran out, from `held_from` on
    held: Vec<u8>,
    held_from: usize,
}

/// Compressed payload is unmasked through a buffer of this size on the stack before
/// it is inflated, so no buffer grows with the size of a read.
const PIECE: usize = 4096;

impl Decoder {
    /// `max_message` bounds a frame and a whole message (inflated); `deflate` is the
    /// agreed permessage-deflate, if any.
    pub fn new(max_message: usize, deflate: Option<&Params>) -> Self {
        Decoder {
            max_message,
            state: State::Header,
            head: [0; 14],
            head_len: 0,
            message: 0,
            compressed: false,
            fragmented: false,
            size: 0,
            stream_check: false,
            data: Vec::new(),
            raw: Vec::new(),
            utf8: Utf8Stream::default(),
            inflate: deflate.map(Decompressor::new),
            held: Vec::new(),
            held_from: 0,
        }
    }

    /// Bytes of input kept because the room ran out: decoded by the next feed.
    pub fn held(&self) -> usize {
        self.held.len() - self.held_from
    }

    /// Whether a Close or an error ended reading.
    pub fn done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Decodes what earlier feeds held and then `input`, appending every event it
    /// completes, until the payload of the events appended reaches `room` bytes: the
    /// rest is held (a room of 0 decodes nothing). After an error (or a Close) the
    /// rest of the input and every later feed are ignored.
    pub fn feed(
        &mut self,
        input: &[u8],
        room: usize,
        events: &mut Vec<Event>,
    ) -> Result<(), Error> {
        let result = if self.held() == 0 {
            self.decode(input, room, events).map(|used| {
                if used < input.len() {
                    self.held = input[used..].to_vec();
                    self.held_from = 0;
                }
            })
        } else {
            let mut held = std::mem::take(&mut self.held);
            if !input.is_empty() {
                held.drain(..self.held_from);
                self.held_from = 0;
                held.extend_from_slice(input);
            }
            let from = self.held_from;
            self.decode(&held[from..], room, events).map(|used| {
                if from + used < held.len() {
                    self.held = held;
                    self.held_from = from + used;
                } else {
                    self.held_from = 0; // all decoded: the buffer goes
                }
            })
        };
        if matches!(self.state, State::Done) {
            // nothing more will be read: what a message in progress held goes now
            self.data = Vec::new();
            self.raw = Vec::new();
            self.inflate = None;
            self.held = Vec::new();
            self.held_from = 0;
        }
        result
    }

    /// Decodes from `input` until it runs out or the room does; the bytes used.
    fn decode(
        &mut self,
        input: &[u8],
        room: usize,
        events: &mut Vec<Event>,
    ) -> Result<usize, Error> {
        let mut rest = input;
        // the payload of the events appended so far, counted up to `counted`
        let (mut given, mut counted) = (0, events.len());
        loop {
            match self.state {
                State::Done => return Ok(input.len() - rest.len()),
                State::Header => {
                    given += events[counted..]
                        .iter()
                        .map(Event::payload_len)
                        .sum::<usize>();
                    counted = events.len();
                    if given >= room {
                        return Ok(input.len() - rest.len());
                    }
                    let Some(f) = self
                        .header(&mut rest)
                        .inspect_err(|_| self.state = State::Done)?
                    else {
                        return Ok(input.len() - rest.len());
                    };
                    self.state = State::Payload(f);
                }
                State::Payload(mut f) => {
                    let want = f.len - f.done;
                    let n = want.min(rest.len() as u64) as usize;
                    let (chunk, after) = rest.split_at(n);
                    rest = after;
                    let result = self.payload(&mut f, chunk).and_then(|()| {
                        if f.done == f.len {
                            self.state = State::Header;
                            self.end_frame(&f, events)
                        } else {
                            self.state = State::Payload(f);
                            Ok(())
                        }
                    });
                    if result.is_err() {
                        self.state = State::Done;
                    }
                    result?;
                    if f.done < f.len {
                        return Ok(input.len() - rest.len()); // inside the payload
                    }
                }
            }
        }
    }

    /// Reads a header from `input` (keeping a partial one); None until it is whole.
    fn header(&mut self, input: &mut &[u8]) -> Result<Option<Frame>, Error> {
        while self.head_len < 2 {
            let Some((&b, rest)) = input.split_first() else {
                return Ok(None);
            };
            self.head[self.head_len] = b;
            self.head_len += 1;
            *input = rest;
            if self.head_len == 2 {
                self.check_start()?;
            }
        }
        let ext = match self.head[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let need = 2 + ext + 4;
        let take = (need - self.head_len).min(input.len());
        self.head[self.head_len..self.head_len + take].copy_from_slice(&input[..take]);
        self.head_len += take;
        *input = &input[take..];
        if self.head_len < need {
            return Ok(None);
        }
        self.head_len = 0;
        let h = &self.head;
        let len = match ext {
            2 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            8 => {
                let len = u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]);
                if len >> 63 != 0 {
                    return Err(Error::Protocol("a frame length with its top bit set"));
                }
                len
            }
            _ => u64::from(h[1] & 0x7f),
        };
        let opcode = h[0] & 0x0f;
        let f = Frame {
            fin: h[0] & 0x80 != 0,
            opcode,
            compressed: h[0] & 0x40 != 0 || (opcode == CONTINUATION && self.compressed),
            key: [h[2 + ext], h[3 + ext], h[4 + ext], h[5 + ext]],
            len,
            done: 0,
        };
        if !frame::is_control(opcode) {
            let total = self.size as u64 + self.data.len() as u64 + len;
            if len > self.max_message as u64 || (!f.compressed && total > self.max_message as u64) {
                return Err(Error::TooBig(self.max_message as u64));
            }
            if !f.compressed {
                // the payload's size is known and within the limit: one allocation
                // for the usual message; a large one still grows as its bytes come,
                // so announcing a frame costs nothing until it is sent
                self.data.reserve_exact((len as usize).min(1 << 16));
            }
            if opcode != CONTINUATION {
                self.message = opcode;
                self.compressed = f.compressed;
            }
        }
        Ok(Some(f))
    }

    /// The rules that the first two bytes of a header decide.
    fn check_start(&self) -> Result<(), Error> {
        let (b0, b1) = (self.head[0], self.head[1]);
        let (fin, rsv1, opcode) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x0f);
        if b0 & 0x30 != 0 {
            return Err(Error::Protocol("RSV2 or RSV3 set"));
        }
        if !frame::known(opcode) {
            return Err(Error::Protocol("an unknown opcode"));
        }
        if b1 & 0x80 == 0 {
            return Err(Error::Protocol("an unmasked frame from a client"));
        }
        if frame::is_control(opcode) {
            if !fin {
                return Err(Error::Protocol("a fragmented control frame"));
            }
            if b1 & 0x7f > 125 {
                return Err(Error::Protocol("a control frame longer than 125 bytes"));
            }
            if rsv1 {
                return Err(Error::Protocol("RSV1 set on a control frame"));
            }
        } else if opcode == CONTINUATION {
            if self.message == 0 {
                return Err(Error::Protocol("a continuation frame outside a message"));
            }
            if rsv1 {
                return Err(Error::Protocol("RSV1 set on a continuation frame"));
            }
        } else {
            if self.message != 0 {
                return Err(Error::Protocol("a new message inside a fragmented one"));
            }
            if rsv1 && self.inflate.is_none() {
                return Err(Error::Protocol("RSV1 set without permessage-deflate"));
            }
        }
        Ok(())
    }

    fn payload(&mut self, f: &mut Frame, chunk: &[u8]) -> Result<(), Error> {
        if f.done == 0 {
            // a text frame that is whole in one read is checked once, at its end
            let whole = chunk.len() as u64 == f.len;
            self.stream_check = !(whole && f.fin && f.opcode != CONTINUATION);
        }
        let offset = f.done as usize;
        f.done += chunk.len() as u64;
        if frame::is_control(f.opcode) {
            let start = self.raw.len();
            self.raw.extend_from_slice(chunk);
            mask::apply(&mut self.raw[start..], f.key, offset);
            Ok(())
        } else if f.compressed {
            let start = self.data.len();
            let limit = self.max_message - self.size;
            let inflate = self.inflate.as_mut().ok_or(Error::Protocol("no deflate"))?;
            let mut piece = [0u8; PIECE];
            for (i, part) in chunk.chunks(PIECE).enumerate() {
                let piece = &mut piece[..part.len()];
                piece.copy_from_slice(part);
                mask::apply(piece, f.key, offset + i * PIECE);
                inflate.inflate(piece, &mut self.data, limit)?;
            }
            self.check_text(start)
        } else {
            let start = self.data.len();
            self.data.extend_from_slice(chunk);
            mask::apply(&mut self.data[start..], f.key, offset);
            self.check_text(start)
        }
    }

    fn check_text(&mut self, from: usize) -> Result<(), Error> {
        if self.message == TEXT && self.stream_check {
            self.utf8
                .push(&self.data[from..])
                .map_err(|()| not_utf8())?;
        }
        Ok(())
    }

    fn end_frame(&mut self, f: &Frame, events: &mut Vec<Event>) -> Result<(), Error> {
        match f.opcode {
            CLOSE => {
                let (code, reason) = close::parse(&self.raw)?;
                self.raw.clear();
                self.state = State::Done;
                events.push(Event::Close { code, reason });
                return Ok(());
            }
            PING => events.push(Event::Ping(std::mem::take(&mut self.raw))),
            PONG => events.push(Event::Pong(std::mem::take(&mut self.raw))),
            _ => return self.end_data_frame(f, events),
        }
        Ok(())
    }

    fn end_data_frame(&mut self, f: &Frame, events: &mut Vec<Event>) -> Result<(), Error> {
        if f.fin && self.compressed {
            let start = self.data.len();
            let limit = self.max_message - self.size;
            let inflate = self.inflate.as_mut().ok_or(Error::Protocol("no deflate"))?;
            inflate.finish(&mut self.data, limit)?;
            self.check_text(start)?;
        }
        let data = std::mem::take(&mut self.data);
        if f.fin && !self.fragmented {
            events.push(if self.message == TEXT {
                Event::Text(String::from_utf8(data).map_err(|_| not_utf8())?)
            } else {
                Event::Binary(data)
            });
        } else {
            if f.fin && self.message == TEXT && !self.utf8.complete() {
                return Err(not_utf8());
            }
            self.size += data.len();
            events.push(Event::Fragment {
                opcode: f.opcode,
                data,
                fin: f.fin,
            });
        }
        if f.fin {
            self.message = 0;
            self.compressed = false;
            self.fragmented = false;
            self.size = 0;
            self.utf8.reset();
        } else {
            self.fragmented = true;
        }
        Ok(())
    }
}

fn not_utf8() -> Error {
    Error::InvalidData("text that is not UTF-8")
}
