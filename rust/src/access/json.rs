//! The `json` format: one JSON object per line, its strings ASCII (as Python's
//! `json.dumps` writes them), so a line is one line whatever a client sent.

use super::{user, Entry};
use std::fmt::Write;

/// Appends a JSON string of `chars`.
fn string(out: &mut String, chars: impl Iterator<Item = char>) {
    out.push('"');
    for c in chars {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

fn latin1(out: &mut String, bytes: &[u8]) {
    string(out, bytes.iter().map(|&b| char::from(b)));
}

/// A request field's value, "-" when absent or empty (as the text formats say it).
fn field(out: &mut String, e: &Entry, name: &[u8]) {
    match e.head.and_then(|h| h.get(name)).filter(|v| !v.is_empty()) {
        Some(value) => latin1(out, value),
        None => out.push_str("\"-\""),
    }
}

/// Appends the line of `e` at `time` (ISO 8601): time, client, user, method, target,
/// protocol, status, bytes, duration_ms, referer, user_agent; then `websocket` and
/// `bytes_in` for a WebSocket's close, `refused` for a request refused unread (whose
/// method, target and protocol are null).
pub fn write(out: &mut String, e: &Entry, time: &str) {
    out.push_str("{\"time\": ");
    string(out, time.chars());
    out.push_str(", \"client\": ");
    string(out, e.client.chars());
    out.push_str(", \"user\": ");
    match e.head.and_then(user) {
        Some(name) => string(out, name.chars()),
        None => out.push_str("null"),
    }
    match e.head {
        Some(head) => {
            out.push_str(", \"method\": ");
            latin1(out, head.method());
            out.push_str(", \"target\": ");
            latin1(out, head.target());
            out.push_str(", \"protocol\": ");
            string(out, super::protocol(head).chars());
        }
        None => out.push_str(", \"method\": null, \"target\": null, \"protocol\": null"),
    }
    let micros = (e.seconds() * 1e6).round() as u64;
    let mut ms = format!("{}.{:03}", micros / 1000, micros % 1000);
    while ms.ends_with('0') && !ms.ends_with(".0") {
        ms.pop();
    }
    let _ = write!(
        out,
        ", \"status\": {}, \"bytes\": {}, \"duration_ms\": {ms}",
        e.status, e.sent
    );
    out.push_str(", \"referer\": ");
    field(out, e, b"referer");
    out.push_str(", \"user_agent\": ");
    field(out, e, b"user-agent");
    if let Some(received) = e.received {
        let _ = write!(out, ", \"websocket\": true, \"bytes_in\": {received}");
    }
    if e.head.is_none() {
        out.push_str(", \"refused\": true");
    }
    out.push('}');
}
