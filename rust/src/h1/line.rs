//! Checks the bytes of a head line as they arrive, so that a line is refused at its
//! first byte that cannot stand where it is, not when its CRLF or the size limit comes.
//! The same pass finds the line's end and its colon: the line is read once.
//! (Lines that came whole and valid are read faster by whole.rs.)

use super::runs::{target_end, token_end, value_end};
use super::Error;

/// Which part of a line the next byte belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Part {
    #[default]
    Method,
    Target,
    Version,
    Name,
    Value,
}

/// Where a line's check has got to; a fresh one for each line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct LineCheck {
    part: Part,
    /// Where the current part starts in the line; in a value, the colon's index.
    mark: usize,
}

/// The version's bytes by position: `HTTP/` DIGIT `.` DIGIT.
fn is_version_byte(at: usize, b: u8) -> bool {
    match at {
        0..=4 => b == b"HTTP/"[at],
        5 | 7 => b.is_ascii_digit(),
        6 => b == b'.',
        _ => false,
    }
}

impl LineCheck {
    pub(super) const REQUEST_LINE: LineCheck = LineCheck {
        part: Part::Method,
        mark: 0,
    };
    pub(super) const FIELD_LINE: LineCheck = LineCheck {
        part: Part::Name,
        mark: 0,
    };

    /// The colon's index in a field line, once it was read.
    pub(super) fn colon(&self) -> Option<usize> {
        (self.part == Part::Value).then_some(self.mark)
    }

    /// Checks `line[from..]`, the bytes after those checked before, up to the first
    /// CR or LF, whose index it returns (None: there is none yet). The line ending is
    /// the caller's to judge.
    pub(super) fn check(&mut self, line: &[u8], from: usize) -> Result<Option<usize>, Error> {
        let mut i = from;
        loop {
            i = match self.part {
                Part::Method | Part::Name => token_end(line, i),
                Part::Target => target_end(line, i),
                Part::Version => {
                    let at = i.saturating_sub(self.mark);
                    let rest = line.get(i..).unwrap_or_default();
                    let n = rest
                        .iter()
                        .enumerate()
                        .position(|(j, &b)| !is_version_byte(at + j, b));
                    i + n.unwrap_or(rest.len())
                }
                Part::Value => value_end(line, i),
            };
            let Some(&b) = line.get(i) else {
                return Ok(None);
            };
            if b == b'\r' || b == b'\n' {
                return Ok(Some(i));
            }
            self.next_part(b, i)?;
            i += 1;
        }
    }

    /// `b` at `i` ends the current part's run of valid bytes: it starts the next
    /// part, or it refuses the line.
    fn next_part(&mut self, b: u8, i: usize) -> Result<(), Error> {
        let (part, mark) = match (self.part, b) {
            (Part::Method, b' ') if i > 0 => (Part::Target, i + 1),
            (Part::Target, b' ') if i > self.mark => (Part::Version, i + 1),
            (Part::Name, b':') if i > 0 => (Part::Value, i),
            _ => return Err(self.refusal(b, i)),
        };
        self.part = part;
        self.mark = mark;
        Ok(())
    }

    fn refusal(&self, b: u8, i: usize) -> Error {
        match (self.part, b) {
            (Part::Method, _) => Error::InvalidMethod,
            // no target, or a NUL in the line: the original sees no request there,
            // and says so
            (Part::Target, b' ') | (Part::Target | Part::Version, 0) => Error::InvalidRequestLine,
            (Part::Target, _) => Error::InvalidTarget,
            (Part::Version, _) => Error::InvalidVersion,
            (Part::Name, b' ' | b'\t') if i == 0 => Error::ObsFold,
            (Part::Name, b' ' | b'\t') => Error::SpaceBeforeColon,
            (Part::Name, _) => Error::InvalidHeaderName,
            (Part::Value, _) => Error::InvalidHeaderValue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a check says of a line: where it ends, if it does.
    type Verdict = Result<Option<usize>, Error>;

    /// Each line checked in one pass and byte by byte gives what `want` says.
    fn assert_checks(first: LineCheck, cases: &[(&[u8], Verdict)]) {
        for &(line, want) in cases {
            let mut c = first;
            assert_eq!(c.check(line, 0), want, "{line:?}");
            let mut c = first;
            let stepped = (1..=line.len())
                .map(|n| c.check(&line[..n], n - 1))
                .find(|r| r != &Ok(None))
                .unwrap_or(Ok(None));
            assert_eq!(stepped, want, "{line:?} byte by byte");
        }
    }

    #[test]
    fn request_lines() {
        assert_checks(
            LineCheck::REQUEST_LINE,
            &[
                (&b"GET / HTTP/1.1\r\n"[..], Ok(Some(14))),
                (b"GET / HTTP/1.", Ok(None)),
                (b"GET / HTTP/1.1x", Err(Error::InvalidVersion)),
                (b"GET / http/1.1", Err(Error::InvalidVersion)),
                (b"GET / HTTP/1.\x01", Err(Error::InvalidVersion)),
                (b"GET / HTTP/1.\0", Err(Error::InvalidRequestLine)),
                (b"G\0T / HTTP/1.1", Err(Error::InvalidMethod)),
                (b" / HTTP/1.1", Err(Error::InvalidMethod)),
                (b"GET\t/", Err(Error::InvalidMethod)),
                (b"GET  /", Err(Error::InvalidRequestLine)),
                (b"GET /a\0", Err(Error::InvalidRequestLine)),
                (b"GET /a\x01", Err(Error::InvalidTarget)),
                (b"GET /a#b", Err(Error::InvalidTarget)),
                (b"GET /\xc3", Err(Error::InvalidTarget)),
                (b"GET /\r", Ok(Some(5))),
            ],
        );
    }

    #[test]
    fn field_lines() {
        let f = LineCheck::FIELD_LINE;
        assert_checks(
            f,
            &[
                (&b"Host: a b\t\xff\r\n"[..], Ok(Some(11))),
                (b"Host: a", Ok(None)),
                (b"\r\n", Ok(Some(0))),
                (b"Xab\r\n", Ok(Some(3))),
                (b"\0\0\0", Err(Error::InvalidHeaderName)),
                (b"X(y: 1", Err(Error::InvalidHeaderName)),
                (b": a", Err(Error::InvalidHeaderName)),
                (b"Host : a", Err(Error::SpaceBeforeColon)),
                (b" Host: a", Err(Error::ObsFold)),
                (b"\tHost: a", Err(Error::ObsFold)),
                (b"Host: a\0", Err(Error::InvalidHeaderValue)),
                (b"Host: a\x7f", Err(Error::InvalidHeaderValue)),
                (b"Host: a\x0b", Err(Error::InvalidHeaderValue)),
                (b"X: a:b:c\r", Ok(Some(8))),
            ],
        );
        let mut c = f;
        assert_eq!(c.check(b"X-A: b:c\r\n", 0), Ok(Some(8)));
        assert_eq!(c.colon(), Some(3));
        let mut c = f;
        assert_eq!(c.check(b"Xab\r\n", 0), Ok(Some(3)));
        assert_eq!(c.colon(), None);
    }
}
