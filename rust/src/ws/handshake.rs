//! The opening handshake's accept key (RFC 6455 §4.2.2).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`, or None when the key is not the
/// base64 of 16 bytes (the request is then refused with 400).
pub fn accept_key(key: &[u8]) -> Option<String> {
    let key = key.trim_ascii();
    match STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => return None,
    }
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    Some(STANDARD.encode(sha.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ==").as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }

    #[test]
    fn refuses_keys_that_are_not_16_bytes_of_base64() {
        assert_eq!(accept_key(b""), None);
        assert_eq!(accept_key(b"not base64!"), None);
        assert_eq!(accept_key(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAA"), None); // 21 bytes
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ"), None); // no padding
    }
}
