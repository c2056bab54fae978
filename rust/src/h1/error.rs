//! Why a request was refused, and the status that tells the client so.

use std::fmt;

/// Every way a request can be malformed or over a limit. Each kind carries its
/// consequence: [`Error::status`] is what the server answers before closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// A line ended in LF without CR, or CR was not followed by LF.
    BareLineFeed,
    /// A CR byte where only CRLF may stand.
    BareCarriageReturn,
    /// A header line starting with whitespace (obsolete line folding).
    ObsFold,
    /// Whitespace in a field name or between it and its colon.
    SpaceBeforeColon,
    InvalidMethod,
    InvalidTarget,
    /// The request-target form does not fit the method (CONNECT, OPTIONS *).
    TargetFormMismatch,
    /// Anything after the method that is not `SP target SP HTTP/x.y`.
    InvalidRequestLine,
    InvalidVersion,
    /// Well formed, but not HTTP/1.x.
    UnsupportedVersion,
    InvalidHeaderName,
    InvalidHeaderValue,
    /// A header line without a colon.
    MissingColon,
    /// HTTP/1.1 without Host, or with more than one.
    InvalidHost,
    InvalidContentLength,
    /// Content-Length values that disagree.
    ConflictingContentLength,
    /// Both Transfer-Encoding and Content-Length.
    ContentLengthWithTransferEncoding,
    /// Transfer-Encoding whose final coding is not chunked, chunked twice, or on HTTP/1.0.
    InvalidTransferEncoding,
    /// A transfer coding this server does not implement (gzip, deflate, ...).
    UnsupportedTransferEncoding,
    InvalidChunkSize,
    /// A chunk-size line still without its CRLF after 64 bytes, whose chunk size is
    /// malformed already.
    NoChunkSize,
    InvalidChunkExtension,
    /// Chunk data not followed by CRLF.
    InvalidChunkTerminator,
    /// A trailer field line that is not one (bare CR or LF, bad name or value, no colon).
    MalformedTrailer,
    /// An Expect value other than 100-continue.
    UnsupportedExpectation,
    RequestLineTooLong,
    HeadersTooLarge,
    TooManyHeaders,
    BodyTooLarge,
    ChunkLineTooLong,
}

impl Error {
    /// The response status a client should get for this error.
    pub fn status(self) -> u16 {
        use Error::*;
        match self {
            RequestLineTooLong => 414,
            HeadersTooLarge | TooManyHeaders => 431,
            BodyTooLarge => 413,
            UnsupportedVersion => 505,
            UnsupportedTransferEncoding => 501,
            UnsupportedExpectation => 417,
            _ => 400,
        }
    }

    /// A short human description, safe to show to a client.
    pub fn description(self) -> &'static str {
        use Error::*;
        match self {
            BareLineFeed => "line ending without CR",
            BareCarriageReturn => "CR not followed by LF",
            ObsFold => "obsolete line folding",
            SpaceBeforeColon => "whitespace in or after a header field name",
            InvalidMethod => "invalid method",
            InvalidTarget => "invalid request-target",
            TargetFormMismatch => "request-target form does not fit the method",
            InvalidRequestLine => "malformed request line",
            InvalidVersion => "malformed HTTP version",
            UnsupportedVersion => "HTTP version not supported",
            InvalidHeaderName => "invalid header field name",
            InvalidHeaderValue => "invalid header field value",
            MissingColon => "header field without colon",
            InvalidHost => "missing or repeated Host",
            InvalidContentLength => "invalid Content-Length",
            ConflictingContentLength => "conflicting Content-Length values",
            ContentLengthWithTransferEncoding => "Content-Length with Transfer-Encoding",
            InvalidTransferEncoding => "invalid Transfer-Encoding",
            UnsupportedTransferEncoding => "unsupported transfer coding",
            InvalidChunkSize => "invalid chunk size",
            NoChunkSize => "no chunk size at the start of a chunk line",
            InvalidChunkExtension => "invalid chunk extension",
            InvalidChunkTerminator => "chunk data not followed by CRLF",
            MalformedTrailer => "malformed trailer field line",
            UnsupportedExpectation => "unsupported expectation",
            RequestLineTooLong => "request line too long",
            HeadersTooLarge => "request header fields too large",
            TooManyHeaders => "too many header fields",
            BodyTooLarge => "request body too large",
            ChunkLineTooLong => "chunk size line too long",
        }
    }
}

impl Error {
    /// The body of the server's answer: worded as the original Tremolo words its
    /// own answers (programs written for it compare them), where it has one for the
    /// same fault; otherwise the generic "Bad Request" for a 400 and the reason
    /// phrase for other statuses. [`Error::description`] is the precise account,
    /// for logs.
    pub fn answer(self) -> &'static str {
        use Error::*;
        match self {
            InvalidMethod | InvalidRequestLine => "bad request: not a request",
            InvalidContentLength => "bad Content-Length",
            ConflictingContentLength | ContentLengthWithTransferEncoding => {
                "ambiguous Content-Length"
            }
            InvalidTransferEncoding => "unexpected Transfer-Encoding",
            InvalidChunkSize => "bad chunked encoding",
            NoChunkSize | ChunkLineTooLong => "bad chunked encoding: no chunk size",
            InvalidChunkExtension => "bad chunked encoding: invalid chunk extension",
            // the original reads no trailers: anything but CRLF after the last chunk is
            // the chunked body's bad end to it
            InvalidChunkTerminator | MalformedTrailer => {
                "bad chunked encoding: invalid chunk terminator"
            }
            RequestLineTooLong | HeadersTooLarge | TooManyHeaders => "request header too large",
            BodyTooLarge => "Payload Too Large",
            UnsupportedVersion => "HTTP Version Not Supported",
            UnsupportedTransferEncoding => "Not Implemented",
            UnsupportedExpectation => "Expectation Failed",
            // refused at the byte, before the line (or the head) is complete: the
            // original answers a head that never completes so
            InvalidHeaderName | InvalidHeaderValue => "bad request",
            BareLineFeed | BareCarriageReturn | ObsFold | SpaceBeforeColon | InvalidTarget
            | TargetFormMismatch | InvalidVersion | MissingColon | InvalidHost => "Bad Request",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.status())
    }
}

impl std::error::Error for Error {}
