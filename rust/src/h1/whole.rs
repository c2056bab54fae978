//! The usual head: every line whole (CRLF included) and valid, well within the
//! limits. Such lines are read here in one pass each, which finds the line's end,
//! checks its bytes and splits it at once, and taken one after the other without a
//! stop between them. The first line that is not so (cut by the end of a read,
//! malformed, at a limit) is left to [`super::line::LineCheck`], which judges it
//! byte by byte. Only what `LineCheck` accepts is read here, and the same
//! [`HeadBuilder`] takes the lines either way, so which of the two read a line
//! never shows.

use super::head::{HeadBuilder, Header, Span, Version};
use super::runs::{target_end, token_end, value_end};
use super::{Error, Limits};

/// Where [`read_lines`] stopped.
pub(super) enum Stop {
    /// At the start of a line it leaves to the check.
    Line(usize),
    /// At the empty line that ends the head: the index of its CR.
    End(usize),
}

/// Takes the lines of the head in `d` from `start`, a line's start none of whose
/// bytes was looked at yet, into `head`, for as long as they come whole and valid
/// within `limits`.
pub(super) fn read_lines(
    head: &mut HeadBuilder,
    d: &[u8],
    mut start: usize,
    limits: &Limits,
) -> Result<Stop, Error> {
    // the limits as the check applies them: a line's LF must stand before its limit
    let d = &d[..d.len().min(limits.max_header_size)];
    if !head.has_request_line() {
        // the head's spans count from its request line: it starts the input
        if start != 0 {
            return Ok(Stop::Line(start));
        }
        let line = &d[..d.len().min(limits.max_request_line)];
        let Some((method, target, version, cr)) = request_line(line) else {
            return Ok(Stop::Line(0));
        };
        head.split_request_line(d, method, target, version)?;
        start = cr + 2;
    }
    loop {
        if d.get(start) == Some(&b'\r') {
            return Ok(match d.get(start + 1) {
                Some(b'\n') => Stop::End(start),
                _ => Stop::Line(start),
            });
        }
        let Some((field, cr)) = field_line(d, start) else {
            return Ok(Stop::Line(start));
        };
        head.room(limits)?;
        head.split_field(d, field, 0)?;
        start = cr + 2;
    }
}

/// The request line at the start of `d`, if it is whole and valid: method, target,
/// version, and the index of its CR. A version other than 1.0 and 1.1 is left to
/// the check too.
#[inline]
fn request_line(d: &[u8]) -> Option<(Span, Span, Version, usize)> {
    let m = token_end(d, 0);
    if m == 0 || d.get(m) != Some(&b' ') {
        return None;
    }
    let t = target_end(d, m + 1);
    if t == m + 1 || d.get(t) != Some(&b' ') {
        return None;
    }
    // compared as a word and the CRLF, not byte by byte
    let (version, crlf) = d.get(t + 1..t + 11)?.split_first_chunk::<8>()?;
    let version = match u64::from_le_bytes(*version) {
        v if v == u64::from_le_bytes(*b"HTTP/1.1") => Version::Http11,
        v if v == u64::from_le_bytes(*b"HTTP/1.0") => Version::Http10,
        _ => return None,
    };
    if crlf != b"\r\n" {
        return None;
    }
    Some((Span::of(0, m), Span::of(m + 1, t), version, t + 9))
}

/// The field line at `d[start..]`, if it is whole and valid: its name and its value
/// without surrounding whitespace, and the index of its CR.
#[inline]
fn field_line(d: &[u8], start: usize) -> Option<(Header, usize)> {
    let colon = token_end(d, start);
    if colon == start || d.get(colon) != Some(&b':') {
        return None;
    }
    // nearly always one space
    let mut value = colon + 1 + usize::from(d.get(colon + 1) == Some(&b' '));
    while let Some(b' ' | b'\t') = d.get(value) {
        value += 1;
    }
    let cr = value_end(d, value);
    if d.get(cr..cr + 2) != Some(b"\r\n") {
        return None;
    }
    let kept = d[value..cr]
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |last| last + 1);
    let field = Header {
        name: Span::of(start, colon),
        value: Span::of(value, value + kept),
    };
    Some((field, cr))
}

#[cfg(test)]
mod tests {
    use super::super::{Collect, Parser};
    use super::*;

    /// What the parser makes of `input` under `limits`, fed in pieces of `step`
    /// bytes: a head fed whole is read here, fed a byte at a time by LineCheck alone.
    fn events(input: &[u8], limits: Limits, step: usize) -> Collect {
        let mut parser = Parser::new(limits);
        let mut sink = Collect::default();
        for piece in input.chunks(step) {
            parser.feed(piece, &mut sink);
        }
        sink
    }

    /// Heads with each byte replaced by each of the bytes that matter somewhere in
    /// a head, under limits around their size: read whole or byte by byte, the
    /// same events (the same fields, or the same error at the same point).
    #[test]
    fn whole_lines_read_as_the_check_reads_them() {
        let heads: [&[u8]; 3] = [
            b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\n\r\n",
            b"POST /a?b=c HTTP/1.0\r\nX-Long-Name-Here: v \t\xff\r\nContent-Length: 2\r\n\r\nok",
            b"\r\nOPTIONS * HTTP/1.1\r\nHost:\r\nConnection: close, upgrade\r\nUpgrade: x\r\n\r\n",
        ];
        let bytes = [
            0u8, b'\t', b'\n', b'\r', b' ', b'#', b',', b':', b'A', b'/', 0x7f, 0x80,
        ];
        for head in heads {
            let n = head.len();
            // the request line's length, CRLF included (after the empty line before it)
            let skip = if head.starts_with(b"\r\n") { 2 } else { 0 };
            let line = head[skip..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(n, |lf| lf + 1);
            let sizes = [n - 20, n - 3, n - 2, n - 1, n, n + 1, 8192];
            let lines = [line - 1, line, line + 1, 8192];
            for (size, line) in sizes.into_iter().flat_map(|s| lines.map(|l| (s, l))) {
                let limits = Limits {
                    max_request_line: line,
                    max_header_size: size,
                    max_headers: 2,
                    ..Limits::default()
                };
                for at in 0..=n {
                    for &b in &bytes {
                        let mut input = head.to_vec();
                        match input.get_mut(at) {
                            Some(byte) => *byte = b,
                            None => input.push(b),
                        }
                        assert_eq!(
                            events(&input, limits, input.len()).0,
                            events(&input, limits, 1).0,
                            "{input:?} under {limits:?}"
                        );
                    }
                }
            }
        }
    }
}
