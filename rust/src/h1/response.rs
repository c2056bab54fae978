//! Response heads and chunk framing. Nothing an application gives is written
//! unchecked: a name must be a token, a value must hold no CR, LF, NUL or other
//! control byte, so no application can split a response. Framing and connection
//! management are the server's: an application's Content-Length is checked and
//! written once, as the server's own, and hop-by-hop fields are never copied, so
//! no application can make a response ambiguous.

use super::chars::{is_field_value, is_token, list_items, trim_ows};
use super::status::{reason, status_line};
use std::fmt;
use std::io::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    InvalidStatus,
    NotInterim,
    InvalidReason,
    InvalidHeaderName,
    InvalidHeaderValue,
    InvalidContentLength,
    LengthMismatch,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::InvalidStatus => "status code must be 100-999",
            EncodeError::NotInterim => "an interim response's status is 1xx, and not 101",
            EncodeError::InvalidReason => "reason phrase holds a control character",
            EncodeError::InvalidHeaderName => "header name is not a token",
            EncodeError::InvalidHeaderValue => {
                "header value holds CR, LF, NUL or another control character"
            }
            EncodeError::InvalidContentLength => {
                "Content-Length is not a decimal number, or names two different lengths"
            }
            EncodeError::LengthMismatch => "Content-Length differs from the length of the body",
        })
    }
}

impl std::error::Error for EncodeError {}

/// How the body after a head is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// No framing field: a response without body, or one delimited by closing.
    Unframed,
}

/// Whether a status forbids framing fields altogether (RFC 9110 §8.6, RFC 9112 §6.1).
pub fn forbids_framing(status: u16) -> bool {
    (100..200).contains(&status) || status == 204
}

/// Whether a response with this status never has a body (RFC 9112 §6.3).
pub fn has_no_body(status: u16) -> bool {
    forbids_framing(status) || status == 304
}

/// What a field an application gives is to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldRole {
    /// Written as given.
    Plain,
    /// Checked, and written once by the server as the body's framing.
    ContentLength,
    /// Read for `close`, then left out: the server writes its own.
    Connection,
    /// Left out: these describe this hop's connection, which is the server's.
    HopByHop,
    /// Written as given, instead of the server's own (one Date, one Server).
    Replaces,
    /// Upgrade on a 426: written as given, and the server's Connection names it
    /// (RFC 9110 §7.8, §15.5.22).
    Upgrade,
}

/// The role of a field named `name` in a response with `status`. On a 101 the
/// Upgrade and Connection fields are the point of the response and pass as given.
pub fn field_role(name: &[u8], status: u16) -> FieldRole {
    let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
    match name.len() {
        14 if is(b"content-length") => FieldRole::ContentLength,
        10 if is(b"connection") => {
            if status == 101 {
                FieldRole::Plain
            } else {
                FieldRole::Connection
            }
        }
        7 if is(b"upgrade") && status == 426 => FieldRole::Upgrade,
        7 if is(b"upgrade") && status != 101 => FieldRole::HopByHop,
        17 if is(b"transfer-encoding") => FieldRole::HopByHop,
        10 if is(b"keep-alive") => FieldRole::HopByHop,
        16 if is(b"proxy-connection") => FieldRole::HopByHop,
        2 if is(b"te") => FieldRole::HopByHop,
        4 if is(b"date") => FieldRole::Replaces,
        6 if is(b"server") => FieldRole::Replaces,
        _ => FieldRole::Plain,
    }
}

/// A Content-Length value: decimal digits only (surrounding whitespace allowed).
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    let digits = trim_ows(value);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The least room a head starts with: a hello world's is about 140 bytes, and a
/// head that outgrows its buffer is copied.
const HEAD_ROOM: usize = 256;

/// Writes a response head field by field.
#[derive(Debug)]
pub struct HeadWriter {
    out: Vec<u8>,
    status: u16,
    app_length: Option<u64>,
    close: bool,
    upgrade: bool,
    app_date: bool,
    app_server: bool,
}

impl HeadWriter {
    /// Starts with the status line; `reason` None means the standard phrase.
    pub fn new(
        status: u16,
        reason_phrase: Option<&[u8]>,
        capacity: usize,
    ) -> Result<Self, EncodeError> {
        if !(100..=999).contains(&status) {
            return Err(EncodeError::InvalidStatus);
        }
        let mut out;
        if let (None, Some(line)) = (reason_phrase, status_line(status)) {
            out = Vec::with_capacity(capacity.max(HEAD_ROOM));
            out.extend_from_slice(line);
        } else {
            let phrase = reason_phrase.unwrap_or(reason(status).as_bytes());
            if !is_field_value(phrase) {
                return Err(EncodeError::InvalidReason);
            }
            out = Vec::with_capacity(capacity.max(HEAD_ROOM + phrase.len()));
            out.extend_from_slice(b"HTTP/1.1 ");
            push_u64(&mut out, u64::from(status));
            out.push(b' ');
            out.extend_from_slice(phrase);
            out.extend_from_slice(b"\r\n");
        }
        Ok(HeadWriter {
            out,
            status,
            app_length: None,
            close: false,
            upgrade: false,
            app_date: false,
            app_server: false,
        })
    }

    /// Writes a field the server makes.
    pub fn header(&mut self, name: &[u8], value: &[u8]) -> Result<(), EncodeError> {
        push_field(&mut self.out, name, value)
    }

    /// Takes a field an application gives, by its `field_role`. A repeated
    /// Content-Length is accepted only with the same value (RFC 9110 §8.6).
    pub fn app_header(&mut self, name: &[u8], value: &[u8]) -> Result<(), EncodeError> {
        let role = field_role(name, self.status);
        if role == FieldRole::Plain {
            return push_field(&mut self.out, name, value);
        }
        check_field(name, value)?;
        match role {
            FieldRole::ContentLength => {
                let n = parse_content_length(value).ok_or(EncodeError::InvalidContentLength)?;
                if self.app_length.is_some_and(|m| m != n) {
                    return Err(EncodeError::InvalidContentLength);
                }
                self.app_length = Some(n);
            }
            FieldRole::Connection => {
                self.close |= list_items(value).any(|t| t.eq_ignore_ascii_case(b"close"));
            }
            FieldRole::Replaces => {
                if name.len() == 4 {
                    self.app_date = true;
                } else {
                    self.app_server = true;
                }
                push_field(&mut self.out, name, value)?;
            }
            FieldRole::Upgrade => {
                self.upgrade = true;
                push_field(&mut self.out, name, value)?;
            }
            FieldRole::HopByHop | FieldRole::Plain => {}
        }
        Ok(())
    }

    /// The Content-Length the application gave, if any.
    pub fn app_length(&self) -> Option<u64> {
        self.app_length
    }

    /// Whether the application asked for the connection to close.
    pub fn close_requested(&self) -> bool {
        self.close
    }

    /// Adds Date and Server (unless the application gave its own; Server is
    /// omitted when empty), the framing field and Connection,
    /// then the empty line. Framing is left out for statuses that forbid it.
    /// `http10` says the client spoke HTTP/1.0, which keeps a connection open only
    /// when told `Connection: keep-alive`.
    pub fn finish(
        mut self,
        framing: Framing,
        keep_alive: bool,
        http10: bool,
        date: &[u8],
        server: &[u8],
    ) -> Result<Vec<u8>, EncodeError> {
        if !self.app_date {
            push_server_field(&mut self.out, b"Date: ", date)?;
        }
        if !server.is_empty() && !self.app_server {
            push_server_field(&mut self.out, b"Server: ", server)?;
        }
        if !forbids_framing(self.status) {
            match framing {
                Framing::Length(n) => {
                    self.out.extend_from_slice(b"Content-Length: ");
                    push_u64(&mut self.out, n);
                    self.out.extend_from_slice(b"\r\n");
                }
                Framing::Chunked => self
                    .out
                    .extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
                Framing::Unframed => {}
            }
        }
        // a 426's Upgrade is named in Connection, so that proxies do not pass it on
        let upgrade: &[u8] = if self.upgrade { b"upgrade, " } else { b"" };
        if !keep_alive {
            self.out.extend_from_slice(b"Connection: ");
            self.out.extend_from_slice(upgrade);
            self.out.extend_from_slice(b"close\r\n");
        } else if http10 {
            self.out.extend_from_slice(b"Connection: ");
            self.out.extend_from_slice(upgrade);
            self.out.extend_from_slice(b"keep-alive\r\n");
        } else if self.upgrade {
            self.out.extend_from_slice(b"Connection: upgrade\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        Ok(self.out)
    }
}

/// Decimal digits of `n`, without the formatting machinery (this runs for every
/// response's status and length).
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends one chunk (size line, data, CRLF) to `out`. Empty data writes nothing:
/// an empty chunk would end the body.
pub fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    push_chunk_head(out, data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(CHUNK_END);
}

/// What ends a chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";

/// Appends a chunk's size line, for `size` bytes of data written after it (a large
/// piece goes out beside its framing, not copied into it). A size of 0 would end
/// the body: [`last_chunk`] does that.
pub fn push_chunk_head(out: &mut Vec<u8>, size: usize) {
    let _ = write!(out, "{size:x}\r\n");
}

/// An interim response (RFC 9110 §15.2): `100 Continue`, `103 Early Hints` with its
/// fields. No Date and no framing: it has no body, and the final response follows.
/// 101 is not one here: switching protocols is the final answer of its request.
pub fn interim(status: u16, fields: &[(&[u8], &[u8])]) -> Result<Vec<u8>, EncodeError> {
    if !(100..200).contains(&status) || status == 101 {
        return Err(EncodeError::NotInterim);
    }
    let mut out = match status_line(status) {
        Some(line) => line.to_vec(),
        None => format!("HTTP/1.1 {status} \r\n").into_bytes(),
    };
    for (name, value) in fields {
        push_field(&mut out, name, value)?;
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// Appends `name: value` CRLF after checking both: a field is written whole and
/// valid, or not at all.
fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) -> Result<(), EncodeError> {
    check_field(name, value)?;
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Appends a field of the server's own, whose name and colon are `prefix`: only
/// the value is checked.
fn push_server_field(
    out: &mut Vec<u8>,
    prefix: &'static [u8],
    value: &[u8],
) -> Result<(), EncodeError> {
    if !is_field_value(value) {
        return Err(EncodeError::InvalidHeaderValue);
    }
    out.extend_from_slice(prefix);
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// A field name must be a token; a value must hold no CR, LF, NUL or other control.
fn check_field(name: &[u8], value: &[u8]) -> Result<(), EncodeError> {
    if !is_token(name) {
        return Err(EncodeError::InvalidHeaderName);
    }
    if !is_field_value(value) {
        return Err(EncodeError::InvalidHeaderValue);
    }
    Ok(())
}

/// The last chunk, trailer fields and the final CRLF.
pub fn last_chunk(trailers: &[(&[u8], &[u8])]) -> Result<Vec<u8>, EncodeError> {
    let mut out = b"0\r\n".to_vec();
    for (name, value) in trailers {
        push_field(&mut out, name, value)?;
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn interim_responses_carry_their_fields_only() {
        assert_eq!(interim(100, &[]).unwrap(), b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(
            interim(103, &[(b"Link", b"</a.css>; rel=preload")]).unwrap(),
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        );
        assert_eq!(interim(199, &[]).unwrap(), b"HTTP/1.1 199 \r\n\r\n");
        for status in [99, 101, 200, 404] {
            assert_eq!(interim(status, &[]), Err(EncodeError::NotInterim));
        }
        assert_eq!(
            interim(103, &[(b"Link", b"a\r\nX: y")]),
            Err(EncodeError::InvalidHeaderValue)
        );
        let mut head = Vec::new();
        push_chunk_head(&mut head, 16384);
        assert_eq!(head, b"4000\r\n");
    }

    #[test]
    fn simple_head() {
        let mut w = HeadWriter::new(200, None, 0).unwrap();
        w.header(b"Content-Type", b"text/plain").unwrap();
        let head = w
            .finish(Framing::Length(5), true, false, DATE, b"tremolo")
            .unwrap();
        assert_eq!(
            head,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
              Server: tremolo\r\nContent-Length: 5\r\n\r\n"
        );
    }

    #[test]
    fn a_426_keeps_its_upgrade_and_names_it_in_connection() {
        let head = |status: u16, keep: bool, http10: bool| {
            let mut w = HeadWriter::new(status, None, 0).unwrap();
            w.app_header(b"Upgrade", b"websocket").unwrap();
            let out = w
                .finish(Framing::Length(0), keep, http10, DATE, b"")
                .unwrap();
            String::from_utf8(out).unwrap()
        };
        let kept = head(426, true, false);
        assert!(kept.contains("Upgrade: websocket\r\nDate"), "{kept}");
        assert!(kept.contains("Connection: upgrade\r\n"), "{kept}");
        assert!(head(426, false, false).contains("Connection: upgrade, close\r\n"));
        assert!(head(426, true, true).contains("Connection: upgrade, keep-alive\r\n"));
        // elsewhere (but on a 101) Upgrade is this hop's business: left out
        let plain = head(200, true, false);
        assert!(
            !plain.contains("Upgrade") && !plain.contains("Connection"),
            "{plain}"
        );
    }

    #[test]
    fn connection_and_framing_rules() {
        let head = HeadWriter::new(204, None, 0)
            .unwrap()
            .finish(Framing::Length(3), false, false, DATE, b"")
            .unwrap();
        let text = String::from_utf8(head).unwrap();
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"));
        assert!(!text.contains("Content-Length"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(!text.contains("Server"));
        let head = HeadWriter::new(599, Some(b"Custom"), 0)
            .unwrap()
            .finish(Framing::Chunked, true, true, DATE, b"x")
            .unwrap();
        let text = String::from_utf8(head).unwrap();
        assert!(text.starts_with("HTTP/1.1 599 Custom\r\n"));
        assert!(text.contains("Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"));
        let head = HeadWriter::new(599, None, 0)
            .unwrap()
            .finish(Framing::Unframed, true, false, DATE, b"")
            .unwrap();
        assert!(head.starts_with(b"HTTP/1.1 599 \r\n"));
    }

    #[test]
    fn an_application_date_or_server_replaces_the_servers() {
        let mut w = HeadWriter::new(200, None, 0).unwrap();
        w.app_header(b"date", b"Mon, 01 Jan 2024 00:00:00 GMT")
            .unwrap();
        w.app_header(b"SERVER", b"app/1").unwrap();
        let head = w
            .finish(Framing::Length(0), true, false, DATE, b"tremolo")
            .unwrap();
        let text = String::from_utf8(head).unwrap();
        assert_eq!(text.matches("ate: ").count(), 1, "{text}");
        assert!(text.contains("date: Mon, 01 Jan 2024"));
        assert_eq!(text.to_ascii_lowercase().matches("server: ").count(), 1);
        assert!(text.contains("SERVER: app/1"));
    }

    #[test]
    fn refuses_injection() {
        assert_eq!(
            HeadWriter::new(99, None, 0).unwrap_err(),
            EncodeError::InvalidStatus
        );
        assert_eq!(
            HeadWriter::new(1000, None, 0).unwrap_err(),
            EncodeError::InvalidStatus
        );
        assert_eq!(
            HeadWriter::new(200, Some(b"OK\r\nX: y"), 0).unwrap_err(),
            EncodeError::InvalidReason
        );
        let mut w = HeadWriter::new(200, None, 0).unwrap();
        assert_eq!(
            w.header(b"X", b"a\r\nSet-Cookie: x"),
            Err(EncodeError::InvalidHeaderValue)
        );
        assert_eq!(
            w.header(b"X", b"a\nb"),
            Err(EncodeError::InvalidHeaderValue)
        );
        assert_eq!(
            w.header(b"X", b"a\0b"),
            Err(EncodeError::InvalidHeaderValue)
        );
        assert_eq!(
            w.header(b"X\r\nY", b"v"),
            Err(EncodeError::InvalidHeaderName)
        );
        assert_eq!(w.header(b"", b"v"), Err(EncodeError::InvalidHeaderName));
        assert_eq!(w.header(b"X Y", b"v"), Err(EncodeError::InvalidHeaderName));
        assert_eq!(
            last_chunk(&[(b"x", b"\n")]).unwrap_err(),
            EncodeError::InvalidHeaderValue
        );
    }

    #[test]
    fn decimal_numbers() {
        for n in [0, 7, 9, 10, 99, 100, 65536, 1 << 40, u64::MAX] {
            let mut out = b"x".to_vec();
            push_u64(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn chunks() {
        let mut out = Vec::new();
        push_chunk(&mut out, b"hello world, 26 bytes long");
        push_chunk(&mut out, b"");
        assert_eq!(out, b"1a\r\nhello world, 26 bytes long\r\n");
        assert_eq!(last_chunk(&[]).unwrap(), b"0\r\n\r\n");
        assert_eq!(
            last_chunk(&[(b"Digest", b"x")]).unwrap(),
            b"0\r\nDigest: x\r\n\r\n"
        );
    }
}
