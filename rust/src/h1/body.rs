//! Request body framing: Content-Length countdown and the chunked coding.

use super::chars::{is_tchar, is_token};
use super::Error;

/// Where a body decoder stands between two reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Body {
    /// Content-Length bytes still to come.
    Length(u64),
    /// Waiting for a chunk-size line.
    ChunkSize,
    /// Bytes of the current chunk still to come.
    ChunkData(u64),
    /// After chunk data: how many of its CRLF bytes were seen (0 or 1).
    ChunkEnd(u8),
    /// After the last chunk: waiting for the trailer section and its empty line.
    Trailers,
}

/// How many bytes of a chunk-size line without CRLF are read before a malformed
/// chunk size in them is refused (the original Tremolo's window: a client sending
/// garbage where a chunk size belongs is answered once this much came, not when its
/// body clock runs out). A line is otherwise judged at its CRLF, as a well-formed one
/// with long extensions is, or at `max_chunk_line`.
pub(super) const NO_CHUNK_SIZE_WINDOW: usize = 64;

/// Where the chunk size at the start of a chunk-size line's `content` (the line
/// without CRLF, or what came of it so far) turns out malformed: the index of the
/// first byte no valid line can have there (not a hex digit first, a 17th digit, or
/// something other than whitespace or `;` after the digits). None if the size is
/// well formed so far; extensions are judged when the line is whole.
pub(super) fn chunk_size_fault(content: &[u8]) -> Option<usize> {
    let digits = content.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return (!content.is_empty()).then_some(0);
    }
    if digits > 16 {
        return Some(16);
    }
    let after = skip_bws(content, digits);
    (after < content.len() && content[after] != b';').then_some(after)
}

/// Parses a chunk-size line without its CRLF:
/// `chunk-size *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )` (RFC 9112 §7.1.1).
pub(super) fn parse_chunk_line(line: &[u8]) -> Result<u64, Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    // 16 hex digits hold any u64; more would overflow and is never a real chunk.
    if digits == 0 || digits > 16 {
        return Err(Error::InvalidChunkSize);
    }
    let size = line[..digits]
        .iter()
        .fold(0u64, |n, &d| (n << 4) | hex_value(d));
    let rest = &line[digits..];
    if !rest.is_empty() && rest.iter().find(|&&b| b != b' ' && b != b'\t') != Some(&b';') {
        return Err(Error::InvalidChunkSize);
    }
    check_extensions(rest)?;
    Ok(size)
}

fn hex_value(d: u8) -> u64 {
    u64::from(match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        _ => d - b'A' + 10,
    })
}

fn skip_bws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
        i += 1;
    }
    i
}

fn take_token(s: &[u8], i: usize) -> usize {
    i + s[i..].iter().take_while(|&&b| is_tchar(b)).count()
}

fn check_extensions(s: &[u8]) -> Result<(), Error> {
    let bad = Err(Error::InvalidChunkExtension);
    let mut i = 0;
    while i < s.len() {
        i = skip_bws(s, i);
        if s.get(i) != Some(&b';') {
            return bad;
        }
        i = skip_bws(s, i + 1);
        let name_end = take_token(s, i);
        if !is_token(&s[i..name_end]) {
            return bad;
        }
        i = skip_bws(s, name_end);
        if s.get(i) != Some(&b'=') {
            // a name without value; only another extension may follow
            if i < s.len() && s[i] != b';' {
                return bad;
            }
            continue;
        }
        i = skip_bws(s, i + 1);
        i = if s.get(i) == Some(&b'"') {
            quoted_string_end(s, i + 1).ok_or(Error::InvalidChunkExtension)?
        } else {
            let end = take_token(s, i);
            if end == i {
                return bad;
            }
            end
        };
        if i < s.len() && s[i] != b';' && s[i] != b' ' && s[i] != b'\t' {
            return bad;
        }
    }
    Ok(())
}

/// The index after the closing quote of a quoted-string whose content starts at `i`.
fn quoted_string_end(s: &[u8], mut i: usize) -> Option<usize> {
    let qdtext =
        |b: u8| b == b'\t' || b == b' ' || (b >= 0x21 && b != b'"' && b != b'\\' && b != 0x7f);
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i + 1),
            b'\\' => {
                let &next = s.get(i + 1)?;
                if !(next == b'\t' || (0x20..0x7f).contains(&next) || next >= 0x80) {
                    return None;
                }
                i += 2;
            }
            b if qdtext(b) => i += 1,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_chunk_line(b"0"), Ok(0));
        assert_eq!(parse_chunk_line(b"1aF"), Ok(0x1af));
        assert_eq!(parse_chunk_line(b"ffffffffffffffff"), Ok(u64::MAX));
        assert_eq!(
            parse_chunk_line(b"10000000000000000"),
            Err(Error::InvalidChunkSize)
        );
        assert_eq!(parse_chunk_line(b""), Err(Error::InvalidChunkSize));
        assert_eq!(parse_chunk_line(b"-1"), Err(Error::InvalidChunkSize));
        assert_eq!(parse_chunk_line(b"0x1"), Err(Error::InvalidChunkSize));
        assert_eq!(parse_chunk_line(b"1 "), Err(Error::InvalidChunkSize));
        assert_eq!(parse_chunk_line(b"1 2"), Err(Error::InvalidChunkSize));
    }

    #[test]
    fn size_faults() {
        for ok in [
            &b""[..],
            b"0",
            b"1aF",
            b"5 ",
            b"5 \t",
            b"5;",
            b"5 ;x=\"",
            b"ffffffffffffffff",
        ] {
            assert_eq!(chunk_size_fault(ok), None, "{ok:?}");
        }
        assert_eq!(chunk_size_fault(b"X"), Some(0));
        assert_eq!(chunk_size_fault(b"-1"), Some(0));
        assert_eq!(chunk_size_fault(b" 5"), Some(0));
        assert_eq!(chunk_size_fault(b"5  x"), Some(3));
        assert_eq!(chunk_size_fault(b"0x1"), Some(1));
        assert_eq!(chunk_size_fault(b"10000000000000000"), Some(16));
    }

    #[test]
    fn extensions() {
        assert_eq!(parse_chunk_line(b"5;a"), Ok(5));
        assert_eq!(parse_chunk_line(b"5 ; a = b ;c"), Ok(5));
        assert_eq!(parse_chunk_line(b"5;a=\"x \\\" y\""), Ok(5));
        assert_eq!(parse_chunk_line(b"5;"), Err(Error::InvalidChunkExtension));
        assert_eq!(parse_chunk_line(b"5;a="), Err(Error::InvalidChunkExtension));
        assert_eq!(
            parse_chunk_line(b"5;a=\"open"),
            Err(Error::InvalidChunkExtension)
        );
        assert_eq!(
            parse_chunk_line(b"5;a b"),
            Err(Error::InvalidChunkExtension)
        );
        assert_eq!(
            parse_chunk_line(b"5;a=b\"c\""),
            Err(Error::InvalidChunkExtension)
        );
        assert_eq!(
            parse_chunk_line(b"5;a=\"\x01\""),
            Err(Error::InvalidChunkExtension)
        );
    }
}
