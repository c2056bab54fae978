//! The connection-level request parser: a state machine over a byte stream.

use super::body::{chunk_size_fault, parse_chunk_line, Body, NO_CHUNK_SIZE_WINDOW};
use super::head::{split_field_line, HeadBuilder};
use super::line::LineCheck;
use super::whole::{read_lines, Stop};
use super::{BodyKind, Error, Limits, RequestHead};
use memchr::memchr2;

/// Receives what one [`Parser::feed`] call finds, in stream order.
pub trait Sink {
    fn head(&mut self, head: RequestHead);
    /// A piece of decoded body; never empty.
    fn data(&mut self, data: &[u8]);
    /// The end of a request, with its trailer fields (name lowercased, value).
    fn end(&mut self, trailers: Vec<(Vec<u8>, Vec<u8>)>);
    /// The request is refused; the parser accepts nothing more on this connection.
    fn error(&mut self, error: Error);
}

/// Owned events, for tests and for callers that want a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Head(Box<RequestHead>),
    Data(Vec<u8>),
    End(Vec<(Vec<u8>, Vec<u8>)>),
    Error(Error),
}

/// A [`Sink`] that collects owned [`Event`]s, merging adjacent body pieces.
#[derive(Default, Debug)]
pub struct Collect(pub Vec<Event>);

impl Sink for Collect {
    fn head(&mut self, head: RequestHead) {
        self.0.push(Event::Head(Box::new(head)));
    }
    fn data(&mut self, data: &[u8]) {
        if let Some(Event::Data(d)) = self.0.last_mut() {
            d.extend_from_slice(data);
        } else {
            self.0.push(Event::Data(data.to_vec()));
        }
    }
    fn end(&mut self, trailers: Vec<(Vec<u8>, Vec<u8>)>) {
        self.0.push(Event::End(trailers));
    }
    fn error(&mut self, error: Error) {
        self.0.push(Event::Error(error));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Body(Body),
    /// After an upgrade request: bytes are kept for whoever takes the connection over.
    Paused,
    /// After the last request or an error: input is dropped.
    Closed,
}

/// How far a search for a line ending has got in the unconsumed bytes.
#[derive(Clone, Copy, Debug, Default)]
struct Scan {
    /// Next byte to search for LF.
    next: usize,
    /// Start of the line being read.
    line: usize,
    /// The check of a head or trailer line's bytes so far; meaningful once `next`
    /// is past `line`.
    check: LineCheck,
}

/// Parses HTTP/1.1 requests from a byte stream, any number per call, however split.
#[derive(Debug)]
pub struct Parser {
    limits: Limits,
    state: State,
    /// Unconsumed input: a partial head or line, or the bytes behind an upgrade.
    buf: Vec<u8>,
    scan: Scan,
    /// The head being read, line by line.
    head: HeadBuilder,
    /// Trailer fields read so far, and their size.
    trailers: Vec<(Vec<u8>, Vec<u8>)>,
    trailer_bytes: usize,
    keep_alive: bool,
    upgrade: bool,
    body_total: u64,
}

/// A buffer this size or smaller is kept between reads; a larger one is released.
const KEEP_CAPACITY: usize = 16 * 1024;

impl Parser {
    pub fn new(limits: Limits) -> Parser {
        Parser {
            limits,
            state: State::Head,
            buf: Vec::new(),
            scan: Scan::default(),
            head: HeadBuilder::default(),
            trailers: Vec::new(),
            trailer_bytes: 0,
            keep_alive: true,
            upgrade: false,
            body_total: 0,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits; they apply from the next request head or chunk on.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// True after a request that asked for an upgrade has ended: the parser holds
    /// further bytes until [`Parser::resume`] or [`Parser::take_buffered`].
    pub fn is_paused(&self) -> bool {
        self.state == State::Paused
    }

    /// True once no further request can come on this connection.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// True between requests with nothing of the next one received yet.
    pub fn is_idle(&self) -> bool {
        self.state == State::Head && self.buf.is_empty()
    }

    /// The bytes of a Content-Length body still to come, when that is what is being
    /// read and nothing past what was parsed is held: what someone else may read from
    /// the connection for it (see [`Parser::skip_body`]). None otherwise (a chunked
    /// body, between requests).
    pub fn body_left(&self) -> Option<u64> {
        match self.state {
            State::Body(Body::Length(left)) if self.buf.is_empty() => Some(left),
            _ => None,
        }
    }

    /// `n` bytes of the Content-Length body were read elsewhere (the WSGI
    /// application's thread, from the socket): counted as parsed, the body's end
    /// reported to `sink` if they were the last. False, and nothing changes, if `n`
    /// is more than [`Parser::body_left`] says is left.
    pub fn skip_body(&mut self, n: u64, sink: &mut impl Sink) -> bool {
        let Some(left) = self.body_left() else {
            return n == 0;
        };
        if n > left {
            return false;
        }
        if n == left {
            self.finish_message(Vec::new(), sink);
        } else {
            self.state = State::Body(Body::Length(left - n));
        }
        true
    }

    /// The upgrade was declined: parse what was held back as HTTP again.
    pub fn resume(&mut self, sink: &mut impl Sink) {
        if self.state == State::Paused {
            self.state = if self.keep_alive {
                State::Head
            } else {
                State::Closed
            };
            self.feed(b"", sink);
        }
    }

    /// The upgrade was accepted: hands over the bytes received after the request and
    /// closes the parser.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.state = State::Closed;
        std::mem::take(&mut self.buf)
    }

    /// Parses `input` and reports every complete event to `sink`. Bytes that do not
    /// complete an event yet are kept for the next call.
    pub fn feed(&mut self, input: &[u8], sink: &mut impl Sink) {
        match self.state {
            State::Closed => return,
            State::Paused => return self.buf.extend_from_slice(input),
            _ => {}
        }
        if self.buf.is_empty() {
            let used = self.run(input, sink);
            if self.state != State::Closed {
                self.buf.extend_from_slice(&input[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut self.buf);
            buf.extend_from_slice(input);
            let used = self.run(&buf, sink);
            if self.state == State::Closed {
                buf.clear();
            } else {
                buf.drain(..used);
            }
            if buf.capacity() > KEEP_CAPACITY && buf.len() <= KEEP_CAPACITY {
                buf.shrink_to(KEEP_CAPACITY);
            }
            self.buf = buf;
        }
    }

    fn fail(&mut self, error: Error, sink: &mut impl Sink) {
        self.state = State::Closed;
        sink.error(error);
    }

    fn finish_message(&mut self, trailers: Vec<(Vec<u8>, Vec<u8>)>, sink: &mut impl Sink) {
        sink.end(trailers);
        self.state = if self.upgrade {
            State::Paused
        } else if self.keep_alive {
            State::Head
        } else {
            State::Closed
        };
    }

    /// Consumes as much of `data` as makes events; returns how much was consumed.
    fn run(&mut self, data: &[u8], sink: &mut impl Sink) -> usize {
        let mut pos = 0;
        loop {
            let rest = &data[pos..];
            if rest.is_empty() {
                // no state makes an event of nothing
                return pos;
            }
            let step = match self.state {
                State::Head => self.read_head(rest, sink),
                State::Body(body) => self.read_body(body, rest, sink),
                State::Paused => return pos,
                State::Closed => return data.len(),
            };
            match step {
                Ok(Some(used)) => pos += used,
                Ok(None) => return pos,
                Err(e) => {
                    self.fail(e, sink);
                    return data.len();
                }
            }
        }
    }

    fn read_head(&mut self, d: &[u8], sink: &mut impl Sink) -> Result<Option<usize>, Error> {
        let end = loop {
            if self.scan.next == self.scan.line {
                match read_lines(&mut self.head, d, self.scan.line, &self.limits)? {
                    Stop::End(end) => break end,
                    Stop::Line(start) => {
                        self.scan.line = start;
                        self.scan.next = start;
                    }
                }
            }
            // a line that did not come whole and valid: checked as its bytes come
            let in_request_line = !self.head.has_request_line();
            let (limit, too_long, first) = if in_request_line {
                (
                    self.limits
                        .max_request_line
                        .min(self.limits.max_header_size),
                    Error::RequestLineTooLong,
                    LineCheck::REQUEST_LINE,
                )
            } else {
                (
                    self.limits.max_header_size,
                    Error::HeadersTooLarge,
                    LineCheck::FIELD_LINE,
                )
            };
            let Some((start, end, check)) = self.next_checked_line(d, limit, too_long, first)?
            else {
                return Ok(None);
            };
            let line = &d[start..end];
            if start == end {
                if in_request_line {
                    // RFC 9112 §2.2: an empty line before the request line is ignored.
                    self.scan = Scan::default();
                    return Ok(Some(end + 2));
                }
                break end;
            }
            if in_request_line {
                self.head.request_line(line, &self.limits)?;
            } else {
                self.head
                    .field_line(line, check.colon(), start, &self.limits)?;
            }
        };
        self.scan = Scan::default();
        let head = self.head.finish(d[..end + 2].to_vec(), &self.limits)?;
        self.keep_alive = head.keep_alive;
        self.upgrade = head.upgrade;
        self.body_total = 0;
        let body = head.body;
        sink.head(head);
        match body {
            BodyKind::Empty => self.finish_message(Vec::new(), sink),
            BodyKind::Length(n) => self.state = State::Body(Body::Length(n)),
            BodyKind::Chunked => self.state = State::Body(Body::ChunkSize),
        }
        Ok(Some(end + 2))
    }

    /// [`Parser::next_line`] for a head or trailer line, whose bytes are checked as
    /// they come (a fresh line starts at `first`): one that cannot stand where it is
    /// refuses the line at once, unless the line passed `limit` before it. Returns
    /// the line's range and its finished check.
    fn next_checked_line(
        &mut self,
        d: &[u8],
        limit: usize,
        too_long: Error,
        first: LineCheck,
    ) -> Result<Option<(usize, usize, LineCheck)>, Error> {
        let Scan { next, line, check } = self.scan;
        let mut check = if next == line { first } else { check };
        // bytes from the limit on are the limit's to refuse
        let end = d.len().min(limit);
        if next < end {
            if let Some(at) = check.check(&d[line..end], next - line)? {
                self.scan.check = check;
                let found = self.line_end(d, line + at, limit, too_long)?;
                return Ok(found.map(|(start, end)| (start, end, check)));
            }
        }
        self.scan.check = check;
        self.scan.next = next.max(end);
        if d.len() > limit {
            Err(too_long)
        } else {
            Ok(None)
        }
    }

    /// Finds the next CRLF-ended line of a section that starts at `d[0]` and may not
    /// grow past `limit` bytes. Returns the line's range without CRLF.
    ///
    /// Each error is decided at one byte: a bare LF at itself, a bare CR at the byte
    /// after it, the size limit at the first byte past it. The earliest wins, so the
    /// verdict does not depend on how the input was split into reads.
    fn next_line(
        &mut self,
        d: &[u8],
        limit: usize,
        too_long: Error,
    ) -> Result<Option<(usize, usize)>, Error> {
        let over = |index: usize| index >= limit;
        let Some(i) = memchr2(b'\r', b'\n', &d[self.scan.next..]) else {
            self.scan.next = d.len();
            return if over(d.len().saturating_sub(1)) && !d.is_empty() {
                Err(too_long)
            } else {
                Ok(None)
            };
        };
        self.line_end(d, self.scan.next + i, limit, too_long)
    }

    /// Judges the CR or LF at `at`, the first in the line: the end of the line, the
    /// end of the input so far, or an error (see [`Parser::next_line`]).
    fn line_end(
        &mut self,
        d: &[u8],
        at: usize,
        limit: usize,
        too_long: Error,
    ) -> Result<Option<(usize, usize)>, Error> {
        let over = |index: usize| index >= limit;
        if d[at] == b'\n' {
            return Err(if over(at) {
                too_long
            } else {
                Error::BareLineFeed
            });
        }
        let Some(&next) = d.get(at + 1) else {
            self.scan.next = at;
            return if over(at) { Err(too_long) } else { Ok(None) };
        };
        if over(at + 1) {
            return Err(too_long);
        }
        if next != b'\n' {
            return Err(Error::BareCarriageReturn);
        }
        let line = (self.scan.line, at);
        self.scan.line = at + 2;
        self.scan.next = at + 2;
        Ok(Some(line))
    }

    fn read_body(
        &mut self,
        body: Body,
        d: &[u8],
        sink: &mut impl Sink,
    ) -> Result<Option<usize>, Error> {
        match body {
            Body::Length(left) | Body::ChunkData(left) => {
                if d.is_empty() {
                    return Ok(None);
                }
                let n = usize::try_from(left).map_or(d.len(), |l| l.min(d.len()));
                sink.data(&d[..n]);
                let left = left - n as u64;
                self.state = match (body, left) {
                    (Body::Length(_), 0) => {
                        self.finish_message(Vec::new(), sink);
                        return Ok(Some(n));
                    }
                    (Body::Length(_), _) => State::Body(Body::Length(left)),
                    (_, 0) => State::Body(Body::ChunkEnd(0)),
                    _ => State::Body(Body::ChunkData(left)),
                };
                Ok(Some(n))
            }
            Body::ChunkEnd(seen) => {
                let Some(&b) = d.first() else { return Ok(None) };
                let want = if seen == 0 { b'\r' } else { b'\n' };
                if b != want {
                    return Err(Error::InvalidChunkTerminator);
                }
                self.state = State::Body(if seen == 0 {
                    Body::ChunkEnd(1)
                } else {
                    Body::ChunkSize
                });
                Ok(Some(1))
            }
            Body::ChunkSize => {
                let limit = self.limits.max_chunk_line;
                if d.len() > NO_CHUNK_SIZE_WINDOW {
                    // A malformed size is refused at the window's end, or at the byte
                    // that malformed it if that comes later; unless the line ended or
                    // passed its limit first (the earliest verdict wins: see next_line).
                    let content = memchr2(b'\r', b'\n', d).unwrap_or(d.len());
                    if let Some(fault) = chunk_size_fault(&d[..content]) {
                        let at = fault.max(NO_CHUNK_SIZE_WINDOW);
                        if at < content && at < limit {
                            return Err(Error::NoChunkSize);
                        }
                    }
                }
                let Some((_, end)) = self.next_line(d, limit, Error::ChunkLineTooLong)? else {
                    return Ok(None);
                };
                self.scan = Scan::default();
                let size = parse_chunk_line(&d[..end])?;
                // Extensions count as body: otherwise a small body sent as tiny chunks
                // with long extensions would pass the limit many times over.
                let extensions = d[..end]
                    .iter()
                    .skip_while(|b| b.is_ascii_hexdigit())
                    .count();
                self.body_total = self
                    .body_total
                    .saturating_add(size)
                    .saturating_add(extensions as u64);
                if self.body_total > self.limits.max_body_size {
                    return Err(Error::BodyTooLarge);
                }
                self.state = State::Body(if size == 0 {
                    Body::Trailers
                } else {
                    Body::ChunkData(size)
                });
                Ok(Some(end + 2))
            }
            Body::Trailers => self.read_trailers(d, sink),
        }
    }

    /// Reads one trailer line per call; each is kept as soon as it is complete.
    fn read_trailers(&mut self, d: &[u8], sink: &mut impl Sink) -> Result<Option<usize>, Error> {
        let limit = self
            .limits
            .max_header_size
            .saturating_sub(self.trailer_bytes);
        let Some((_, end, check)) = self
            .next_checked_line(d, limit, Error::HeadersTooLarge, LineCheck::FIELD_LINE)
            .map_err(in_trailer)?
        else {
            return Ok(None);
        };
        self.scan = Scan::default();
        if end == 0 {
            self.trailer_bytes = 0;
            let trailers = std::mem::take(&mut self.trailers);
            self.finish_message(trailers, sink);
            return Ok(Some(2));
        }
        if self.trailers.len() == self.limits.max_headers {
            return Err(Error::TooManyHeaders);
        }
        let line = &d[..end];
        let h = split_field_line(line, check.colon()).map_err(in_trailer)?;
        let mut name = line[h.name.start..h.name.end].to_vec();
        name.make_ascii_lowercase();
        self.trailers
            .push((name, line[h.value.start..h.value.end].to_vec()));
        self.trailer_bytes += end + 2;
        Ok(Some(end + 2))
    }
}

/// An error in a trailer section: a malformed line is one kind of its own (its
/// answer is the chunked body's), a size limit stays what it is.
fn in_trailer(error: Error) -> Error {
    match error {
        Error::HeadersTooLarge | Error::TooManyHeaders => error,
        _ => Error::MalformedTrailer,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Limits;
    use super::{Collect, Event, Parser};

    fn limits() -> Limits {
        Limits {
            max_request_line: 8192,
            max_header_size: 8192,
            max_headers: 100,
            max_body_size: 1 << 20,
            max_chunk_line: 1024,
        }
    }

    #[test]
    fn a_length_body_read_elsewhere_is_counted_and_ends_the_request() {
        let mut p = Parser::new(limits());
        let mut sink = Collect::default();
        p.feed(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
            &mut sink,
        );
        assert_eq!(p.body_left(), Some(7));
        assert!(!p.skip_body(8, &mut sink)); // more than is left: refused, no change
        assert_eq!(p.body_left(), Some(7));
        assert!(p.skip_body(3, &mut sink));
        assert_eq!(p.body_left(), Some(4));
        let before = sink.0.len();
        assert!(p.skip_body(4, &mut sink));
        assert_eq!(sink.0[before..], [Event::End(Vec::new())]);
        assert_eq!(p.body_left(), None);
        // and the next request is read as a request
        p.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", &mut sink);
        assert!(matches!(sink.0[before + 1], Event::Head(_)));
    }

    #[test]
    fn nothing_is_left_to_read_elsewhere_but_a_length_body() {
        let mut p = Parser::new(limits());
        let mut sink = Collect::default();
        assert_eq!(p.body_left(), None); // between requests
        assert!(p.skip_body(0, &mut sink) && !p.skip_body(1, &mut sink));
        p.feed(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
            &mut sink,
        );
        assert_eq!(p.body_left(), None); // chunked
        assert!(!p.skip_body(1, &mut sink));
    }
}
