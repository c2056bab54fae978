//! Close frames (RFC 6455 §5.5.1, §7.4): codes and reasons.

use super::Error;

/// Whether a peer may send `code` in a Close frame: the codes RFC 6455 defines for
/// use on the wire, those IANA has registered since (1012-1014), and the ranges for
/// libraries and applications (3000-4999). 1004, 1005, 1006 and 1015 never go on
/// the wire.
pub fn valid_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The code and reason of a Close frame's payload; (None, "") when it is empty.
pub fn parse(payload: &[u8]) -> Result<(Option<u16>, String), Error> {
    match payload {
        [] => Ok((None, String::new())),
        [_] => Err(Error::Protocol("a close frame with a 1-byte payload")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !valid_code(code) {
                return Err(Error::Protocol("a close frame with an invalid code"));
            }
            let reason = std::str::from_utf8(reason)
                .map_err(|_| Error::InvalidData("a close reason that is not UTF-8"))?;
            Ok((Some(code), reason.to_owned()))
        }
    }
}

/// A Close frame's payload: the code, then as much of the reason as fits in a control
/// frame (cut on a character boundary). No code (None) gives an empty payload.
pub fn payload(code: Option<u16>, reason: &str) -> Vec<u8> {
    let Some(code) = code else {
        return Vec::new();
    };
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = Vec::with_capacity(2 + end);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 3000, 4999,
        ] {
            assert!(valid_code(code), "{code}");
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            assert!(!valid_code(code), "{code}");
        }
    }

    #[test]
    fn parse_payloads() {
        assert_eq!(parse(b""), Ok((None, String::new())));
        assert!(matches!(parse(b"\x03"), Err(Error::Protocol(_))));
        assert_eq!(parse(b"\x03\xe8bye"), Ok((Some(1000), "bye".into())));
        assert!(matches!(parse(b"\x03\xed"), Err(Error::Protocol(_))));
        assert!(matches!(parse(b"\x03\xe8\xff"), Err(Error::InvalidData(_))));
    }

    #[test]
    fn reason_is_cut_on_a_char_boundary() {
        let long = "é".repeat(100);
        let p = payload(Some(1000), &long);
        assert!(p.len() <= 125);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
        assert_eq!(payload(None, "ignored"), b"");
    }
}
