//! permessage-deflate (RFC 7692): negotiation, and the two directions' streams.
//!
//! The server always answers with `server_no_context_takeover` (RFC 7692 §7.1.1.1
//! lets it): each message it sends is compressed on its own, by one compressor per
//! thread that every connection shares ([`compress_message`]). A zlib-rs compressor
//! holds about 160 KiB whatever its window and memory level (its hash table has a
//! fixed size), so one per connection would cost 160 MiB for a thousand connections;
//! shared, it costs 160 KiB per worker. The client's messages are inflated with a
//! stream per connection (about 18 KiB at a 15-bit window), made on the first
//! compressed message and dropped after each one when the client keeps no context.

use super::Error;
use std::cell::RefCell;
use zlib_rs::{Deflate, DeflateConfig, DeflateFlush, Inflate, InflateFlush, Status};

/// The window the server compresses with unless the client asks for less: each
/// message is compressed on its own, so a larger window buys little.
pub const WINDOW_BITS: u8 = 12;
pub const MEM_LEVEL: i32 = 5;
/// Messages shorter than this go out uncompressed (RSV1 clear): deflate cannot
/// shrink them enough to pay for itself.
pub const MIN_SIZE: usize = 64;
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The agreed parameters, seen from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// the window the server compresses with (9 to 15)
    pub server_max_window_bits: u8,
    /// the window the client compresses with (8 to 15)
    pub client_max_window_bits: u8,
}

/// Splits a field value on `sep`, outside quoted strings.
fn split(value: &[u8], sep: u8) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in value.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            parts.push(value[start..i].trim_ascii());
            start = i + 1;
        }
    }
    parts.push(value[start..].trim_ascii());
    parts
}

fn window_bits(value: Option<&[u8]>) -> Option<u8> {
    let v = value?;
    let v = v
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(v);
    match v {
        [d] if d.is_ascii_digit() && *d >= b'8' => Some(d - b'0'),
        [b'1', d] if (b'0'..=b'5').contains(d) => Some(10 + d - b'0'),
        _ => None,
    }
}

/// One offer's parameters, or None when it has an unknown, repeated or invalid one
/// (such an offer must be declined), or asks for a server window zlib cannot keep to
/// (8 bits: zlib's raw deflate uses 9 for 8).
fn accept(params: &[&[u8]], max_bits: u8) -> Option<(String, Params)> {
    let mut p = Params {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: max_bits,
        client_max_window_bits: 15,
    };
    let mut seen = [false; 4];
    for param in params {
        let mut kv = param.splitn(2, |&b| b == b'=');
        let name = kv.next().unwrap_or_default().trim_ascii();
        let value = kv.next().map(<[u8]>::trim_ascii);
        let slot = match name.to_ascii_lowercase().as_slice() {
            b"server_no_context_takeover" if value.is_none() => 0,
            b"client_no_context_takeover" if value.is_none() => {
                p.client_no_context_takeover = true;
                1
            }
            b"server_max_window_bits" => {
                let bits = window_bits(value)?;
                if bits < 9 {
                    return None;
                }
                p.server_max_window_bits = bits.min(max_bits);
                2
            }
            b"client_max_window_bits" => {
                if value.is_some() {
                    p.client_max_window_bits = window_bits(value)?;
                }
                3
            }
            _ => return None,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
    }
    // the server never keeps context (see the module's docs), whatever was offered
    p.server_no_context_takeover = true;
    let mut answer = String::from("permessage-deflate; server_no_context_takeover");
    if p.client_no_context_takeover {
        answer.push_str("; client_no_context_takeover");
    }
    if seen[2] {
        answer.push_str(&format!(
            "; server_max_window_bits={}",
            p.server_max_window_bits
        ));
    }
    if seen[3] && p.client_max_window_bits < 15 {
        // the client said how large its window is: confirm it
        answer.push_str(&format!(
            "; client_max_window_bits={}",
            p.client_max_window_bits
        ));
    }
    Some((answer, p))
}

thread_local! {
    /// The compressors every connection of this thread shares, one per window size.
    static SHARED: RefCell<Vec<(u8, Deflate)>> = const { RefCell::new(Vec::new()) };
}

fn new_deflate(bits: u8) -> Deflate {
    Deflate::new_with_config(DeflateConfig {
        level: 6,
        window_bits: -i32::from(bits),
        mem_level: MEM_LEVEL,
        ..DeflateConfig::default()
    })
}

/// One whole message compressed on its own (no context from earlier messages),
/// appended to `out` without the flush's tail, by this thread's shared compressor.
pub fn compress_message(window_bits: u8, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    SHARED.with(|cell| {
        let Ok(mut shared) = cell.try_borrow_mut() else {
            // only re-entry could get here, and nothing re-enters: a compressor of its own
            return deflate_into(&mut new_deflate(window_bits), data, out);
        };
        let i = match shared.iter().position(|(b, _)| *b == window_bits) {
            Some(i) => i,
            None => {
                shared.push((window_bits, new_deflate(window_bits)));
                shared.len() - 1
            }
        };
        let stream = &mut shared[i].1;
        stream.reset();
        deflate_into(stream, data, out)
    })
}

/// Compresses `data` with a sync flush onto `out`, then drops the flush's tail (RFC
/// 7692 §7.2.1), or leaves the stored block header that the tail completes when the
/// flush wrote nothing.
fn deflate_into(stream: &mut Deflate, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let start = out.len();
    let mut input = data;
    loop {
        let len = out.len();
        out.resize(len + input.len() + input.len() / 8 + 64, 0);
        let (in0, out0) = (stream.total_in(), stream.total_out());
        let status = stream.compress(input, &mut out[len..], DeflateFlush::SyncFlush);
        let used = (stream.total_in() - in0) as usize;
        let made = (stream.total_out() - out0) as usize;
        let room = out.len() - len;
        out.truncate(len + made);
        input = &input[used..];
        match status {
            Ok(_) if input.is_empty() && made < room => break,
            Ok(_) => {}
            Err(_) => return Err(Error::InvalidData("compression failed")),
        }
    }
    if out[start..].ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    } else if out.len() == start {
        out.push(0x00);
    }
    Ok(())
}

/// Picks the first permessage-deflate offer that can be honoured from the values of
/// the request's Sec-WebSocket-Extensions fields. Returns the response's field value
/// and the parameters, or None (no compression) when there is none.
pub fn negotiate(values: &[&[u8]], max_window_bits: u8) -> Option<(String, Params)> {
    let max_bits = max_window_bits.clamp(9, 15);
    values
        .iter()
        .flat_map(|v| split(v, b','))
        .filter_map(|ext| {
            let parts = split(ext, b';');
            let (name, params) = parts.split_first()?;
            name.eq_ignore_ascii_case(b"permessage-deflate")
                .then_some(params.to_vec())
        })
        .find_map(|params| accept(&params, max_bits))
}

/// A compressing stream that keeps its context from message to message (what a
/// client does; the tests use it to make compressed client frames).
pub struct Compressor {
    stream: Deflate,
}

impl Compressor {
    pub fn new(window_bits: u8) -> Self {
        Compressor {
            stream: new_deflate(window_bits),
        }
    }

    /// Appends one whole message compressed to `out` (without the flush's tail).
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        deflate_into(&mut self.stream, data, out)
    }
}

/// The client's compressed stream, inflated with a cap on the output.
pub struct Decompressor {
    stream: Option<Inflate>,
    window_bits: u8,
    reset_each_message: bool,
}

impl Decompressor {
    pub fn new(params: &Params) -> Self {
        Decompressor {
            stream: None,
            // zlib writes windows of 8 bits as 9; inflating with more is always safe
            window_bits: params.client_max_window_bits.max(9),
            reset_each_message: params.client_no_context_takeover,
        }
    }

    /// Inflates a piece of a message onto `out`; 1009 as soon as `out` would grow
    /// past `limit`, so a small frame cannot expand without bound.
    pub fn inflate(&mut self, data: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), Error> {
        let bits = self.window_bits;
        let stream = self.stream.get_or_insert_with(|| Inflate::new(false, bits));
        let mut input = data;
        loop {
            let len = out.len();
            let step = (input.len().saturating_mul(4)).clamp(1024, 1 << 16);
            let room = step.min(limit.saturating_sub(len) + 1);
            out.resize(len + room, 0);
            let (in0, out0) = (stream.total_in(), stream.total_out());
            let status = stream.decompress(input, &mut out[len..], InflateFlush::SyncFlush);
            let used = (stream.total_in() - in0) as usize;
            let made = (stream.total_out() - out0) as usize;
            out.truncate(len + made);
            input = &input[used..];
            if out.len() > limit {
                return Err(Error::TooBig(limit as u64));
            }
            match status {
                Ok(Status::StreamEnd) => {
                    // a final block (BFINAL): whatever follows starts a new stream
                    stream.reset(false);
                    if input.is_empty() {
                        break;
                    }
                }
                Ok(_) if input.is_empty() && made < room => break,
                Ok(Status::BufError) if used == 0 && made == 0 => {
                    return Err(Error::InvalidData("a compressed message that does not end"))
                }
                Ok(_) => {}
                Err(_) => return Err(Error::InvalidData("invalid compressed data")),
            }
        }
        Ok(())
    }

    /// Ends a message: the flush tail the sender left out, then a reset if the
    /// client does not keep its context.
    pub fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), Error> {
        self.inflate(&TAIL, out, limit)?;
        if self.reset_each_message {
            self.stream = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(v: &str) -> Option<(String, Params)> {
        negotiate(&[v.as_bytes()], WINDOW_BITS)
    }

    #[test]
    fn negotiation() {
        // the server never keeps context: it says so whatever the offer
        let (answer, p) = offer("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(answer, "permessage-deflate; server_no_context_takeover");
        assert_eq!(p.server_max_window_bits, WINDOW_BITS);
        assert_eq!(p.client_max_window_bits, 15);
        assert!(p.server_no_context_takeover && !p.client_no_context_takeover);
        let (answer, p) = offer(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=\"9\"",
        )
        .unwrap();
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=9"
        );
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
        assert_eq!(
            (p.server_max_window_bits, p.client_max_window_bits),
            (10, 9)
        );
        // a larger window than ours is answered with ours
        let (answer, p) = offer("permessage-deflate; server_max_window_bits=15").unwrap();
        assert_eq!(p.server_max_window_bits, 12);
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12"
        );
    }

    #[test]
    fn offers_that_cannot_be_honoured_are_declined() {
        for bad in [
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(offer(bad), None, "{bad}");
        }
        // the first acceptable offer wins
        let (answer, _) = offer(
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_no_context_takeover",
        )
        .unwrap();
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    fn params(ctx: bool) -> Params {
        Params {
            server_no_context_takeover: !ctx,
            client_no_context_takeover: !ctx,
            server_max_window_bits: 12,
            client_max_window_bits: 15,
        }
    }

    #[test]
    fn round_trip_with_and_without_context() {
        for ctx in [true, false] {
            // with context: a client's stream; without: the server's shared one
            let mut c = Compressor::new(12);
            let mut d = Decompressor::new(&params(ctx));
            for msg in [
                &b"hello hello hello hello"[..],
                b"",
                &[7u8; 100_000],
                b"hello hello",
            ] {
                let mut z = Vec::new();
                if ctx {
                    c.compress(msg, &mut z).unwrap();
                } else {
                    compress_message(12, msg, &mut z).unwrap();
                }
                assert!(!z.ends_with(&TAIL) && !z.is_empty());
                let mut out = Vec::new();
                d.inflate(&z, &mut out, 1 << 20).unwrap();
                d.finish(&mut out, 1 << 20).unwrap();
                assert_eq!(out, msg);
            }
        }
    }

    #[test]
    fn rfc_7692_examples() {
        // §7.2.3.1: "Hello" compressed
        let p = params(true);
        let mut d = Decompressor::new(&p);
        let mut out = Vec::new();
        d.inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 100)
            .unwrap();
        d.finish(&mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.2: the same again, with the context of the first
        out.clear();
        d.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, 100)
            .unwrap();
        d.finish(&mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let p = params(true);
        let mut z = Vec::new();
        compress_message(12, &vec![0u8; 10 << 20], &mut z).unwrap();
        assert!(z.len() < 64 << 10);
        let mut d = Decompressor::new(&p);
        let mut out = Vec::new();
        assert_eq!(
            d.inflate(&z, &mut out, 1 << 20),
            Err(Error::TooBig(1 << 20))
        );
        assert!(out.capacity() < 2 << 20, "grew to {}", out.capacity());
    }

    #[test]
    fn the_shared_compressor_keeps_no_context() {
        // the same message twice compresses the same way twice
        let (mut a, mut b) = (Vec::new(), Vec::new());
        compress_message(12, b"hello hello hello", &mut a).unwrap();
        compress_message(12, b"hello hello hello", &mut b).unwrap();
        assert_eq!(a, b);
        let mut d = Decompressor::new(&params(false));
        let mut out = Vec::new();
        d.inflate(&b, &mut out, 100).unwrap();
        d.finish(&mut out, 100).unwrap();
        assert_eq!(out, b"hello hello hello");
    }

    #[test]
    fn garbage_is_invalid_data() {
        let mut d = Decompressor::new(&params(true));
        let mut out = Vec::new();
        assert!(matches!(
            d.inflate(&[0xff; 32], &mut out, 1000),
            Err(Error::InvalidData(_))
        ));
    }
}
