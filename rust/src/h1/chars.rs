//! Byte classes from RFC 9110 §5.6 and RFC 9112, as lookup tables.

use super::runs::{all_tchars, all_value_bytes};

const fn is_tchar_fn(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' |
        b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// field-vchar plus SP and HTAB: what may stand inside a field value (obs-text included).
const fn is_value_fn(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// What may stand in a request-target: visible ASCII only (RFC 3986 has no raw
/// spaces, controls or non-ASCII bytes; clients percent-encode them).
const fn is_target_fn(b: u8) -> bool {
    b > 0x20 && b < 0x7f
}

/// reg-name and IPv4address bytes of a uri-host (RFC 3986 §3.2.2): unreserved,
/// sub-delims and `%` of a pct-encoded byte.
const fn is_host_fn(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

const TCHAR: u8 = 1;
const VALUE: u8 = 2;
const TARGET: u8 = 4;
const HOST: u8 = 8;

/// Every class of every byte in one table: one load answers any of them.
static CLASS: [u8; 256] = {
    let mut t = [0; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if is_tchar_fn(b) { TCHAR } else { 0 }
            | if is_value_fn(b) { VALUE } else { 0 }
            | if is_target_fn(b) { TARGET } else { 0 }
            | if is_host_fn(b) { HOST } else { 0 };
        i += 1;
    }
    t
};

#[inline]
pub fn is_tchar(b: u8) -> bool {
    CLASS[b as usize] & TCHAR != 0
}

#[inline]
pub fn is_value_byte(b: u8) -> bool {
    CLASS[b as usize] & VALUE != 0
}

#[inline]
pub fn is_target_byte(b: u8) -> bool {
    CLASS[b as usize] & TARGET != 0
}

#[inline]
pub(super) fn is_host_byte(b: u8) -> bool {
    CLASS[b as usize] & HOST != 0
}

/// A non-empty token (RFC 9110 §5.6.2).
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && all_tchars(s)
}

/// A field value as an application may send it: no CR, LF, NUL or other control
/// byte except HTAB, and no leading or trailing whitespace to be trimmed away.
pub fn is_field_value(s: &[u8]) -> bool {
    all_value_bytes(s)
}

/// Trims optional whitespace (SP / HTAB) on both sides.
pub fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// Iterates the members of a comma-separated list, trimmed, skipping empty ones
/// (RFC 9110 §5.6.1 asks recipients to ignore empty list elements).
pub fn list_items(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|i| !i.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(is_token(b"GET"));
        assert!(is_token(b"X-Custom_1~"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a:b"));
        assert!(!is_token(b"caf\xc3\xa9"));
    }

    #[test]
    fn values() {
        assert!(is_field_value(b"text/html; q=0.9\t x"));
        assert!(is_field_value(b"obs-text \xff"));
        assert!(!is_field_value(b"a\rb"));
        assert!(!is_field_value(b"a\nb"));
        assert!(!is_field_value(b"a\0b"));
        assert!(!is_field_value(b"a\x7fb"));
    }

    #[test]
    fn lists() {
        let items: Vec<&[u8]> = list_items(b" gzip ,, chunked ,").collect();
        assert_eq!(items, vec![&b"gzip"[..], &b"chunked"[..]]);
        assert_eq!(trim_ows(b" \t "), b"");
    }
}
