//! The bounds a parser enforces. Each has a name the Python side exposes as an option.

/// Limits on what one request may make the parser hold or accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line, CRLF included (answer 414).
    pub max_request_line: usize,
    /// Largest request head, request line included (answer 431). Also bounds a
    /// trailer section.
    pub max_header_size: usize,
    /// Most header fields in one head or trailer section (answer 431).
    pub max_headers: usize,
    /// Largest body, declared or chunked (answer 413).
    pub max_body_size: u64,
    /// Longest chunk-size line, extensions and CRLF included (answer 400).
    pub max_chunk_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8192,
            max_header_size: 8192,
            max_headers: 100,
            max_body_size: 2 * 1024 * 1024,
            max_chunk_line: 1024,
        }
    }
}
