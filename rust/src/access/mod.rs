//! The access log's lines: a format of gunicorn's atoms (or `json`), parsed once,
//! and a line written from what one answered request was.
//!
//! The line is written here, not in Python, because it is written for every request
//! and the request's facts are already here: as Python, reading them back through
//! the exchange cost a fifth of a small request's time. What the core cannot know
//! (the client a proxy names, the time, the pid) is passed in: [`Entry`].
//!
//! Atoms: `%(h)s` client, `%(l)s` '-', `%(u)s` user (HTTP Basic), `%(t)s` time,
//! `%(r)s` request line, `%(m)s` method, `%(U)s` path, `%(q)s` query, `%(H)s`
//! protocol, `%(s)s` status, `%(b)s` body bytes ('-' for none), `%(B)s` body bytes,
//! `%(D)s` microseconds, `%(M)s` milliseconds, `%(L)s` seconds, `%(f)s` referer,
//! `%(a)s` user agent, `%(p)s` pid, `%({name}i)s` a request field, `%({name}o)s` a
//! response field, `%(I)s` bytes received (a WebSocket's); `%%` is a `%`. Text from
//! clients is escaped ([`escape`]).

pub mod clock;
pub mod escape;
mod json;
#[cfg(test)]
mod tests;

use crate::h1::{target, RequestHead, Version};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use std::fmt::Write;

/// The formats by name; any other text is a format of atoms.
pub const PRESETS: [(&str, &str); 4] = [
    ("default", "%(h)s %(t)s \"%(r)s\" %(s)s %(b)s %(M)sms"),
    ("common", "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s"),
    (
        "combined",
        "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"",
    ),
    ("json", "json"),
];
/// What the default format's line for a WebSocket adds when it closes (no preset
/// has an atom for the bytes received).
const CLOSED: &str = " (WebSocket closed, %(I)s bytes in)";
/// Basic credentials' base64, read as Python's b64decode reads them (and as the
/// applications that check them do): unused trailing bits need not be zero.
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);
/// The atoms that are one letter, for the message naming an unknown one.
const LETTERS: &str = "BDHILMUabfhlmpqrstu";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Atom {
    /// one of LETTERS
    Letter(u8),
    /// a request field (its name lowercased)
    Request(Vec<u8>),
    /// the nth response field the format names
    Response(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Atom(Atom),
}

/// A parsed format: its pieces, or None for `json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    text: String,
    pieces: Option<Vec<Piece>>,
    /// the response fields' names (lowercased) the format reads, in order
    response: Vec<Vec<u8>>,
    /// which time the line writes, and whether it writes the client: read for
    /// every line, so worked out once
    time: Time,
    client: bool,
}

/// What one line is of: a request (answered, refused, or a WebSocket closing), and
/// what the core cannot know itself.
#[derive(Clone, Debug, Default)]
pub struct Entry<'a> {
    /// the request's head; None for a request refused before one was read
    pub head: Option<&'a RequestHead>,
    /// the client: its address (as a trusted proxy names it), "unix" or "-"
    pub client: &'a str,
    /// the time, as [`Format::time`] asks for it
    pub time: &'a str,
    /// the status (a WebSocket's close code when it closes; 0: none)
    pub status: u16,
    /// body bytes sent
    pub sent: u64,
    /// bytes received, for a WebSocket's close
    pub received: Option<u64>,
    /// how long the request took
    pub seconds: f64,
    pub pid: u32,
    /// the values of the response fields the format names ([`Format::response_fields`])
    pub response: &'a [Option<&'a [u8]>],
}

impl Entry<'_> {
    fn seconds(&self) -> f64 {
        self.seconds.max(0.0)
    }
}

/// Which time a format writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Time {
    None,
    /// `[07/Dec/2026:00:37:24 +0000]` ([`clock::clf`])
    Common,
    /// `2026-12-07T00:37:24.123+00:00` ([`clock::iso`])
    Iso,
}

/// The start of what is wrong in a format, quoted, for messages.
fn quoted(text: &str) -> String {
    let piece: String = text.chars().take(6).collect();
    format!("{piece:?}")
}

/// A piece of a format in a message: what cannot be printed escaped (a message is
/// one line, and sends no terminal escape).
fn shown(text: &str) -> String {
    let mut out = String::new();
    escape::text(&mut out, text, false);
    out
}

impl Format {
    /// Parses `text`, a preset's name or a format; Err says what is wrong, to the
    /// person who wrote it.
    pub fn parse(text: &str) -> Result<Format, String> {
        let text = PRESETS
            .iter()
            .find(|(name, _)| *name == text)
            .map_or(text, |(_, format)| format);
        if text == "json" {
            return Ok(Format::made(text, None, Vec::new()));
        }
        if text.trim().is_empty() {
            return Err("empty (--no-access-log turns the access log off)".to_string());
        }
        let mut pieces = Vec::new();
        let mut response = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('%') {
            literal.push_str(&rest[..i]);
            rest = &rest[i..];
            if let Some(after) = rest.strip_prefix("%%") {
                literal.push('%');
                rest = after;
                continue;
            }
            let Some(key) = rest.strip_prefix("%(") else {
                return Err(format!(
                    "only %(atom)s and %% are atoms, not {}",
                    quoted(rest)
                ));
            };
            let Some(close) = key.find(')') else {
                return Err(format!("an unclosed %(: {}", quoted(rest)));
            };
            if !key[close + 1..].starts_with('s') {
                return Err(format!(
                    "only %(atom)s and %% are atoms, not {}",
                    quoted(rest)
                ));
            }
            let atom = Self::atom(&key[..close], &mut response)?;
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Atom(atom));
            rest = &key[close + 2..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Format::made(text, Some(pieces), response))
    }

    fn made(text: &str, pieces: Option<Vec<Piece>>, response: Vec<Vec<u8>>) -> Format {
        let has = |letter: u8| {
            pieces
                .as_ref()
                .is_none_or(|p| p.contains(&Piece::Atom(Atom::Letter(letter))))
        };
        let time = match &pieces {
            None => Time::Iso,
            Some(_) if has(b't') => Time::Common,
            Some(_) => Time::None,
        };
        let client = has(b'h');
        Format {
            text: text.to_string(),
            pieces,
            response,
            time,
            client,
        }
    }

    fn atom(key: &str, response: &mut Vec<Vec<u8>>) -> Result<Atom, String> {
        if let [letter] = key.as_bytes() {
            if LETTERS.as_bytes().contains(letter) {
                return Ok(Atom::Letter(*letter));
            }
        }
        let field = key.strip_prefix('{').and_then(|k| {
            k.strip_suffix("}i")
                .map(|n| (n, true))
                .or(k.strip_suffix("}o").map(|n| (n, false)))
        });
        let Some((name, request)) = field else {
            let known: Vec<String> = LETTERS.chars().map(String::from).collect();
            return Err(format!(
                "unknown atom %({})s (known: {}, {{name}}i, {{name}}o)",
                shown(key),
                known.join(", ")
            ));
        };
        if !crate::h1::chars::is_token(name.as_bytes()) {
            return Err(format!(
                "%({})s: a field's name is printable ASCII, a token as HTTP's are",
                shown(key)
            ));
        }
        let name = name.to_ascii_lowercase().into_bytes();
        if request {
            return Ok(Atom::Request(name));
        }
        response.push(name);
        Ok(Atom::Response(response.len() - 1))
    }

    /// The format's text (a preset's name resolved).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The format of a WebSocket's line when it closes: this one, with the bytes
    /// received added to the default preset.
    pub fn closing(&self) -> Format {
        if self.text != PRESETS[0].1 {
            return self.clone();
        }
        Format::parse(&format!("{}{CLOSED}", self.text)).unwrap_or_else(|_| self.clone())
    }

    /// The response fields' names (lowercased) whose values an [`Entry`] carries.
    pub fn response_fields(&self) -> &[Vec<u8>] {
        &self.response
    }

    /// Which time the line writes.
    pub fn time(&self) -> Time {
        self.time
    }

    /// Whether the line writes the client (what it costs to find out is skipped
    /// otherwise).
    pub fn needs_client(&self) -> bool {
        self.client
    }

    /// Appends the line of `e` (without a line end).
    pub fn write(&self, out: &mut String, e: &Entry) {
        let Some(pieces) = &self.pieces else {
            json::write(out, e, e.time);
            return;
        };
        for piece in pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Atom(Atom::Letter(letter)) => letter_atom(out, *letter, e),
                Piece::Atom(Atom::Request(name)) => {
                    match e.head.and_then(|h| h.get(name)).filter(|v| !v.is_empty()) {
                        Some(value) => escape::latin1(out, value),
                        None => out.push('-'),
                    }
                }
                Piece::Atom(Atom::Response(n)) => match e.response.get(*n).copied().flatten() {
                    Some(value) => escape::latin1(out, value),
                    None => out.push('-'),
                },
            }
        }
    }
}

/// "HTTP/1.0" or "HTTP/1.1".
fn protocol(head: &RequestHead) -> &'static str {
    match head.version {
        Version::Http10 => "HTTP/1.0",
        Version::Http11 => "HTTP/1.1",
    }
}

/// The user an `Authorization: Basic` field names (up to its first colon), None
/// when there is none or it does not decode.
fn user(head: &RequestHead) -> Option<String> {
    let auth = head.get(b"authorization")?;
    let (scheme, token) = auth.split_at(auth.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = BASIC.decode(token.trim_ascii()).ok()?;
    let name = decoded.split(|&b| b == b':').next().unwrap_or_default();
    (!name.is_empty()).then(|| String::from_utf8_lossy(name).into_owned())
}

fn letter_atom(out: &mut String, letter: u8, e: &Entry) {
    let head = e.head;
    let seconds = e.seconds();
    let _ = match letter {
        b'h' => {
            escape::text(out, e.client, false);
            Ok(())
        }
        b'u' => {
            match head.and_then(user) {
                Some(name) => escape::text(out, &name, true),
                None => out.push('-'),
            }
            Ok(())
        }
        b't' => {
            out.push_str(e.time);
            Ok(())
        }
        b'r' => {
            match head {
                Some(h) => {
                    escape::latin1(out, h.method());
                    out.push(' ');
                    escape::latin1(out, h.target());
                    out.push(' ');
                    out.push_str(protocol(h));
                }
                None => out.push('-'),
            }
            Ok(())
        }
        b'm' | b'U' | b'q' | b'H' | b'f' | b'a' => {
            request_part(out, letter, head);
            Ok(())
        }
        b's' if e.status == 0 => write!(out, "-"),
        b's' => write!(out, "{}", e.status),
        b'b' if e.sent == 0 => write!(out, "-"),
        b'b' | b'B' => write!(out, "{}", e.sent),
        b'D' => write!(out, "{}", (seconds * 1e6) as u64),
        b'M' => write!(out, "{}", (seconds * 1e3) as u64),
        b'L' => write!(out, "{seconds:.6}"),
        b'p' => write!(out, "<{}>", e.pid),
        b'I' => match e.received {
            Some(n) => write!(out, "{n}"),
            None => write!(out, "-"),
        },
        _ => write!(out, "-"), // l
    };
}

/// A part of the request; "-" for a request refused unread (the query: empty).
fn request_part(out: &mut String, letter: u8, head: Option<&RequestHead>) {
    let Some(h) = head else {
        if letter != b'q' {
            out.push('-');
        }
        return;
    };
    match letter {
        b'm' => escape::latin1(out, h.method()),
        b'U' => escape::latin1(out, target::split(h.target()).0),
        b'q' => escape::latin1(out, target::split(h.target()).1),
        b'H' => out.push_str(protocol(h)),
        _ => {
            let name: &[u8] = if letter == b'f' {
                b"referer"
            } else {
                b"user-agent"
            };
            match h.get(name).filter(|v| !v.is_empty()) {
                Some(value) => escape::latin1(out, value),
                None => out.push('-'),
            }
        }
    }
}
