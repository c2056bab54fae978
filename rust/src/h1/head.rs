//! A complete request head: parsed once, validated strictly, read lazily.

use super::chars::{is_host_byte, is_token, list_items, trim_ows};
use super::line::LineCheck;
use super::runs::lowercase_name;
use super::{Error, Limits};
use memchr::memchr;

/// A byte range into [`RequestHead::raw`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub(super) fn of(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    fn shifted(self, by: usize) -> Span {
        Span::of(self.start + by, self.end + by)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The field name, lowercased.
    pub name: Span,
    /// The field value, without surrounding whitespace.
    pub value: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    /// HTTP/1.1, and any later 1.x (RFC 9110 §2.5: treat as the highest minor we know).
    Http11,
}

/// How the request body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body (no framing header, or Content-Length: 0).
    Empty,
    Length(u64),
    Chunked,
}

/// A parsed request head. Field names are lowercased in `raw`; every other byte is
/// as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// The head from the request line to the final CRLF.
    pub raw: Vec<u8>,
    pub method: Span,
    pub target: Span,
    pub version: Version,
    pub headers: Vec<Header>,
    pub body: BodyKind,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on HTTP/1.1: the client waits before sending the body.
    pub expect_continue: bool,
    /// `Connection: upgrade` together with an `Upgrade` field.
    pub upgrade: bool,
}

impl RequestHead {
    pub fn bytes(&self, span: Span) -> &[u8] {
        &self.raw[span.start..span.end]
    }

    pub fn method(&self) -> &[u8] {
        self.bytes(self.method)
    }

    pub fn target(&self) -> &[u8] {
        self.bytes(self.target)
    }

    /// The first value of a field, by lowercase name.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| self.bytes(h.name) == name)
            .map(|h| self.bytes(h.value))
    }

    /// Parses a complete head: the request line and field lines, each ended by CRLF,
    /// and the empty line that ends the head.
    pub fn parse(raw: Vec<u8>, limits: &Limits) -> Result<RequestHead, Error> {
        let mut builder = HeadBuilder::default();
        let mut pos = 0;
        loop {
            let end = find_crlf(&raw, pos)?.ok_or(Error::InvalidRequestLine)?;
            if end == pos {
                break;
            }
            let line = &raw[pos..end];
            let request_line = !builder.has_request_line();
            let mut check = if request_line {
                LineCheck::REQUEST_LINE
            } else {
                LineCheck::FIELD_LINE
            };
            check.check(line, 0)?;
            if request_line {
                builder.request_line(line, limits)?;
            } else {
                builder.field_line(line, check.colon(), pos, limits)?;
            }
            pos = end + 2;
        }
        builder.finish(raw, limits)
    }
}

/// Reads a head line by line as its lines arrive, so that an error is found as soon
/// as the line holding it is complete; [`HeadBuilder::finish`] adds the checks that
/// need the whole head.
#[derive(Debug, Default)]
pub(super) struct HeadBuilder {
    /// Spans of the request line; None until it was read.
    request_line: Option<(Span, Span, Version)>,
    /// The fields so far; its capacity is kept from one head to the next.
    headers: Vec<Header>,
    content_length: Option<u64>,
    te_seen: bool,
    te_last_chunked: bool,
    te_unsupported: bool,
    hosts: u32,
    close: bool,
    keep_alive: bool,
    upgrade_token: bool,
    upgrade_field: bool,
    expect_continue: bool,
}

impl HeadBuilder {
    pub(super) fn has_request_line(&self) -> bool {
        self.request_line.is_some()
    }

    /// Reads the request line, without its CRLF, its bytes checked by
    /// [`LineCheck::REQUEST_LINE`].
    pub(super) fn request_line(&mut self, line: &[u8], limits: &Limits) -> Result<(), Error> {
        let (m, t, v) = parse_request_line(line, limits)?;
        self.split_request_line(line, m, t, v)
    }

    /// Takes the request line at the start of `line`, split already (by
    /// [`HeadBuilder::request_line`] or by whole.rs).
    pub(super) fn split_request_line(
        &mut self,
        line: &[u8],
        method: Span,
        target: Span,
        version: Version,
    ) -> Result<(), Error> {
        check_target_form(
            &line[method.start..method.end],
            &line[target.start..target.end],
        )?;
        self.request_line = Some((method, target, version));
        Ok(())
    }

    /// Reads one field line without its CRLF, its bytes checked by
    /// [`LineCheck::FIELD_LINE`], which found its `colon`; `offset` is where it
    /// starts in the head.
    pub(super) fn field_line(
        &mut self,
        line: &[u8],
        colon: Option<usize>,
        offset: usize,
        limits: &Limits,
    ) -> Result<(), Error> {
        self.room(limits)?;
        let h = split_field_line(line, colon)?;
        self.split_field(line, h, offset)
    }

    /// A field line is refused past the most fields a head may have (before
    /// anything else is said of it).
    #[inline]
    pub(super) fn room(&self, limits: &Limits) -> Result<(), Error> {
        if self.headers.len() == limits.max_headers {
            return Err(Error::TooManyHeaders);
        }
        Ok(())
    }

    /// Takes a field line split already (by [`split_field_line`] or by whole.rs):
    /// `h` spans `line`, which starts `offset` bytes into the head.
    #[inline(always)]
    pub(super) fn split_field(
        &mut self,
        line: &[u8],
        h: Header,
        offset: usize,
    ) -> Result<(), Error> {
        let name = &line[h.name.start..h.name.end];
        if may_matter(name) {
            self.field(name, &line[h.value.start..h.value.end])?;
        }
        self.headers.push(Header {
            name: h.name.shifted(offset),
            value: h.value.shifted(offset),
        });
        Ok(())
    }

    /// What a field means for the head as a whole (any field that
    /// [`may_matter`]).
    #[inline(never)]
    fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        // a tchar ORed with 0x20 is a given lowercase letter only if it is that
        // letter in either case, and `-` only if it is `-`: exact for names
        let is =
            |n: &[u8]| name.len() == n.len() && name.iter().zip(n).all(|(a, b)| a | 0x20 == *b);
        if is(b"content-length") {
            for item in value.split(|&b| b == b',').map(trim_ows) {
                let n = parse_decimal(item).ok_or(Error::InvalidContentLength)?;
                if self.content_length.is_some_and(|c| c != n) {
                    return Err(Error::ConflictingContentLength);
                }
                self.content_length = Some(n);
            }
        } else if is(b"transfer-encoding") {
            let mut any = false;
            for coding in list_items(value) {
                // chunked may only be the final coding, and only once
                if !is_token(coding) || self.te_last_chunked {
                    return Err(Error::InvalidTransferEncoding);
                }
                self.te_last_chunked = coding.eq_ignore_ascii_case(b"chunked");
                self.te_unsupported |= !self.te_last_chunked;
                any = true;
            }
            if !any {
                return Err(Error::InvalidTransferEncoding);
            }
            self.te_seen = true;
        } else if is(b"host") {
            self.hosts += 1;
            if self.hosts > 1 || (!value.is_empty() && !is_host_port(value)) {
                return Err(Error::InvalidHost);
            }
        } else if is(b"connection") {
            for item in list_items(value) {
                self.close |= item.eq_ignore_ascii_case(b"close");
                self.keep_alive |= item.eq_ignore_ascii_case(b"keep-alive");
                self.upgrade_token |= item.eq_ignore_ascii_case(b"upgrade");
            }
        } else if is(b"expect") && matches!(self.request_line, Some((_, _, Version::Http11))) {
            // RFC 9110 §10.1.1: an HTTP/1.0 expectation is ignored
            if !value.eq_ignore_ascii_case(b"100-continue") {
                return Err(Error::UnsupportedExpectation);
            }
            self.expect_continue = true;
        } else if is(b"upgrade") {
            self.upgrade_field = true;
        }
        if self.content_length.is_some() && self.te_seen {
            return Err(Error::ContentLengthWithTransferEncoding);
        }
        Ok(())
    }

    /// The checks that need the whole head; `raw` is the head the lines came from.
    /// The builder is left empty for the next head.
    pub(super) fn finish(&mut self, raw: Vec<u8>, limits: &Limits) -> Result<RequestHead, Error> {
        let head = self.build(raw, limits);
        let mut headers = std::mem::take(&mut self.headers);
        headers.clear();
        *self = HeadBuilder {
            headers,
            ..HeadBuilder::default()
        };
        head
    }

    fn build(&self, mut raw: Vec<u8>, limits: &Limits) -> Result<RequestHead, Error> {
        let (method, target, version) = self.request_line.ok_or(Error::InvalidRequestLine)?;
        let http11 = version == Version::Http11;
        if http11 && self.hosts == 0 {
            return Err(Error::InvalidHost);
        }
        let connect = &raw[method.start..method.end] == b"CONNECT";
        let body = if self.te_seen {
            // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
            if !http11 || !self.te_last_chunked {
                return Err(Error::InvalidTransferEncoding);
            }
            if self.te_unsupported {
                return Err(Error::UnsupportedTransferEncoding);
            }
            BodyKind::Chunked
        } else {
            match self.content_length {
                None | Some(0) => BodyKind::Empty,
                // 413 also when the client waits for 100 Continue: the expectation is
                // understood, the body is what is refused (417 is for expectations
                // the server does not support)
                Some(n) if n > limits.max_body_size => return Err(Error::BodyTooLarge),
                Some(n) => BodyKind::Length(n),
            }
        };
        // RFC 9110 §9.3.6: CONNECT has no content; what follows the head is the tunnel.
        match (connect, body) {
            (true, BodyKind::Chunked) => return Err(Error::InvalidTransferEncoding),
            (true, BodyKind::Length(_)) => return Err(Error::InvalidContentLength),
            _ => {}
        }
        for h in &self.headers {
            lowercase_name(&mut raw, h.name.start, h.name.end);
        }
        let target = if connect {
            target
        } else {
            origin_form(&mut raw, target)
        };
        Ok(RequestHead {
            raw,
            method,
            target,
            version,
            headers: self.headers.to_vec(),
            body,
            keep_alive: !self.close && (http11 || self.keep_alive),
            expect_continue: self.expect_continue,
            upgrade: connect || (self.upgrade_token && self.upgrade_field),
        })
    }
}

/// An absolute-form target (`http://host/path?q`, RFC 9112 §3.2.2) as the origin-form
/// applications route on (`/path?q`; `/` when the path is empty), appended to `raw`;
/// any other target stays as it is. The authority is the client's Host to give
/// (RFC 9112 §3.2.2 asks it to send one that agrees).
fn origin_form(raw: &mut Vec<u8>, target: Span) -> Span {
    let t = &raw[target.start..target.end];
    if t.first() == Some(&b'/') {
        return target;
    }
    let Some(after) = memchr::memmem::find(t, b"://").map(|i| i + 3) else {
        return target;
    };
    let rest = t[after..]
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .map_or(t.len(), |i| after + i);
    let mut origin = Vec::with_capacity(t.len() - rest + 1);
    if t.get(rest) != Some(&b'/') {
        origin.push(b'/');
    }
    origin.extend_from_slice(&t[rest..]);
    let start = raw.len();
    raw.extend_from_slice(&origin);
    Span {
        start,
        end: raw.len(),
    }
}

fn check_target_form(method: &[u8], target: &[u8]) -> Result<(), Error> {
    if method == b"CONNECT" {
        // authority-form: host ":" port, nothing else.
        let ok = target.iter().rposition(|&b| b == b':').is_some_and(|c| {
            c > 0
                && c + 1 < target.len()
                && target[c + 1..].iter().all(u8::is_ascii_digit)
                && is_host(&target[..c])
        });
        return if ok {
            Ok(())
        } else {
            Err(Error::TargetFormMismatch)
        };
    }
    if target == b"*" {
        return if method == b"OPTIONS" {
            Ok(())
        } else {
            Err(Error::TargetFormMismatch)
        };
    }
    if target[0] == b'/' || is_absolute_uri(target) {
        Ok(())
    } else {
        Err(Error::InvalidTarget)
    }
}

/// Finds the CRLF that ends the line starting at `from`. A CR anywhere else in the
/// line is refused: only CRLF ends a line.
fn find_crlf(raw: &[u8], from: usize) -> Result<Option<usize>, Error> {
    match memchr(b'\n', &raw[from..]) {
        None => Ok(None),
        Some(i) => {
            let lf = from + i;
            if lf == from || raw[lf - 1] != b'\r' {
                return Err(Error::BareLineFeed);
            }
            if memchr(b'\r', &raw[from..lf - 1]).is_some() {
                return Err(Error::BareCarriageReturn);
            }
            Ok(Some(lf - 1))
        }
    }
}

/// Splits a request line whose bytes [`LineCheck`] found valid where they stand.
fn parse_request_line(line: &[u8], limits: &Limits) -> Result<(Span, Span, Version), Error> {
    if line.len() + 2 > limits.max_request_line {
        return Err(Error::RequestLineTooLong);
    }
    let sp1 = memchr(b' ', line).ok_or(Error::InvalidRequestLine)?;
    let rest = &line[sp1 + 1..];
    let sp2 = memchr(b' ', rest).ok_or(Error::InvalidRequestLine)?;
    let version = parse_version(&rest[sp2 + 1..])?;
    Ok((Span::of(0, sp1), Span::of(sp1 + 1, sp1 + 1 + sp2), version))
}

fn parse_version(v: &[u8]) -> Result<Version, Error> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            match (major, minor) {
                (b'1', b'0') => Ok(Version::Http10),
                (b'1', _) => Ok(Version::Http11),
                _ => Err(Error::UnsupportedVersion),
            }
        }
        _ => Err(Error::InvalidVersion),
    }
}

/// Splits a field line (without CRLF) at its `colon`, found by [`LineCheck`] with
/// every byte valid where it stands. Spans are relative to `line`.
pub(super) fn split_field_line(line: &[u8], colon: Option<usize>) -> Result<Header, Error> {
    let colon = colon.ok_or(Error::MissingColon)?;
    let line_value = line.get(colon + 1..).ok_or(Error::MissingColon)?;
    let lead = line_value
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let value = trim_ows(line_value);
    let vstart = colon + 1 + lead;
    Ok(Header {
        name: Span::of(0, colon),
        value: Span::of(vstart, vstart + value.len()),
    })
}

/// 1*DIGIT as a number; None if malformed or past u64 (no body is that large).
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// uri-host: an IP-literal in brackets or a reg-name / IPv4 address.
fn is_host(h: &[u8]) -> bool {
    if let [b'[', inner @ .., b']'] = h {
        return !inner.is_empty()
            && inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !h.is_empty() && h.iter().all(|&b| is_host_byte(b))
}

/// Whether a field may be one that [`HeadBuilder::field`] reads, by its length and
/// first letter: most fields are none of them, and are told so at once.
#[inline]
fn may_matter(name: &[u8]) -> bool {
    let first = name.first().map_or(0, |&b| b | 0x20);
    matches!(
        (name.len(), first),
        (4, b'h') | (6, b'e') | (7, b'u') | (10, b'c') | (14, b'c') | (17, b't')
    )
}

/// Host field value: uri-host [ ":" port ]. A reg-name or IPv4 address (nearly
/// every Host) is read in one pass; an IP-literal by [`bracketed_host_port`].
fn is_host_port(v: &[u8]) -> bool {
    if v.first() == Some(&b'[') {
        return bracketed_host_port(v);
    }
    let end = v.iter().position(|&b| !is_host_byte(b)).unwrap_or(v.len());
    end > 0
        && match v.get(end..) {
            Some([b':', port @ ..]) => port.iter().all(u8::is_ascii_digit),
            Some(rest) => rest.is_empty(),
            None => false,
        }
}

/// [`is_host_port`] for a value that starts with `[`.
fn bracketed_host_port(v: &[u8]) -> bool {
    let host_end = match v.iter().rposition(|&b| b == b':') {
        // a colon inside brackets belongs to an IPv6 literal
        Some(c) if !v[c..].contains(&b']') => {
            if !v[c + 1..].iter().all(u8::is_ascii_digit) {
                return false;
            }
            c
        }
        _ => v.len(),
    };
    is_host(&v[..host_end])
}

/// absolute-form: scheme ":" followed by something.
fn is_absolute_uri(t: &[u8]) -> bool {
    let Some(colon) = memchr(b':', t) else {
        return false;
    };
    let scheme = &t[..colon];
    colon + 1 < t.len()
        && scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_values_read_in_one_pass_as_by_the_general_rule() {
        // every string of up to 4 bytes from an alphabet of each kind of byte
        let alphabet = b"a9.-_%:[]@/ \x80";
        for len in 0..=4u32 {
            for n in 0..alphabet.len().pow(len) {
                let value: Vec<u8> = (0..len)
                    .map(|d| alphabet[n / alphabet.len().pow(d) % alphabet.len()])
                    .collect();
                assert_eq!(
                    is_host_port(&value),
                    bracketed_host_port(&value),
                    "{value:?}"
                );
            }
        }
        assert!(is_host_port(b"127.0.0.1:8000"));
        assert!(is_host_port(b"example.com:"));
        assert!(!is_host_port(b":80"));
        assert!(!is_host_port(b"a:8b"));
    }

    #[test]
    fn parse_checks_every_line_as_the_parser_does() {
        let limits = Limits::default();
        let head = RequestHead::parse(
            b"GET /a HTTP/1.1\r\nHost: h\r\nX-A: b: c\r\n\r\n".to_vec(),
            &limits,
        )
        .unwrap();
        assert_eq!(head.target(), b"/a");
        assert_eq!(head.get(b"x-a"), Some(&b"b: c"[..]));
        for (raw, error) in [
            (
                &b"GET /a HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"[..],
                Error::InvalidHeaderValue,
            ),
            (
                b"GET /a HTTP/1.1\r\nHost: h\r\nX\0: b\r\n\r\n",
                Error::InvalidHeaderName,
            ),
            (
                b"GET /a HTTP/1.1\r\nHost: h\r\nXab\r\n\r\n",
                Error::MissingColon,
            ),
            (
                b"GET /a\0 HTTP/1.1\r\nHost: h\r\n\r\n",
                Error::InvalidRequestLine,
            ),
            (
                b"GET /a HTTP/1.1x\r\nHost: h\r\n\r\n",
                Error::InvalidVersion,
            ),
        ] {
            assert_eq!(
                RequestHead::parse(raw.to_vec(), &limits),
                Err(error),
                "{raw:?}"
            );
        }
    }
}
