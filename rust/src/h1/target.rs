//! The parts of a request-target (RFC 9112 §3.2) as applications want them.

use std::borrow::Cow;

/// Splits an origin-form target at its first `?`: the path, and the query
/// without the `?` (empty when there is none).
pub fn split(target: &[u8]) -> (&[u8], &[u8]) {
    match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &[]),
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Replaces each `%XX` (two hex digits) by the byte it encodes; a `%` not
/// followed by two hex digits stays as it is, as Python's `urllib.parse.unquote`
/// leaves it. Borrows when there is nothing to decode.
pub fn percent_decode(s: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = s.iter().position(|&b| b == b'%') else {
        return Cow::Borrowed(s);
    };
    let mut out = Vec::with_capacity(s.len());
    out.extend_from_slice(&s[..first]);
    let mut i = first;
    while i < s.len() {
        let b = s[i];
        if b == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(out)
}

/// A path for applications: percent-decoded, then read as UTF-8, each invalid
/// sequence replaced by U+FFFD (ASGI's `path`).
pub fn decoded_path(path: &[u8]) -> Cow<'_, str> {
    match percent_decode(path) {
        Cow::Borrowed(raw) => String::from_utf8_lossy(raw),
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_question_mark() {
        assert_eq!(split(b"/a?b=1?c"), (&b"/a"[..], &b"b=1?c"[..]));
        assert_eq!(split(b"/a"), (&b"/a"[..], &b""[..]));
        assert_eq!(split(b"/a?"), (&b"/a"[..], &b""[..]));
    }

    #[test]
    fn decodes_escapes_and_keeps_broken_ones() {
        assert_eq!(&*percent_decode(b"/plain"), b"/plain");
        assert!(matches!(percent_decode(b"/plain"), Cow::Borrowed(_)));
        assert_eq!(&*percent_decode(b"/a%20b%2Fc"), b"/a b/c");
        assert_eq!(&*percent_decode(b"%zz%4%"), b"%zz%4%");
        assert_eq!(&*percent_decode(b"%41%4"), b"A%4");
        assert_eq!(&*percent_decode(b"%%41"), b"%A");
    }

    #[test]
    fn paths_read_as_utf8_with_replacement() {
        assert_eq!(decoded_path(b"/caf%C3%A9"), "/café");
        assert_eq!(decoded_path(b"/%C3"), "/\u{fffd}");
        assert_eq!(decoded_path(b"/%E2%82x"), "/\u{fffd}x");
        assert_eq!(decoded_path(b"/a"), "/a");
    }
}
