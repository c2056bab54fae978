//! Frame headers (RFC 6455 §5.2): opcodes, and writing frames.

use super::mask;

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// Whether `opcode` is one RFC 6455 defines.
pub fn known(opcode: u8) -> bool {
    matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG)
}

pub fn is_control(opcode: u8) -> bool {
    opcode & 0x8 != 0
}

/// Appends a frame's header for a payload of `len` bytes.
pub fn write_header(
    out: &mut Vec<u8>,
    opcode: u8,
    fin: bool,
    rsv1: bool,
    len: usize,
    masked: bool,
) {
    out.push(u8::from(fin) << 7 | u8::from(rsv1) << 6 | (opcode & 0x0f));
    let m = u8::from(masked) << 7;
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= 0xffff {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// A server frame's header (never masked): the bytes and how many are used.
pub fn header(opcode: u8, fin: bool, rsv1: bool, len: usize) -> ([u8; 10], usize) {
    let mut head = [0u8; 10];
    head[0] = u8::from(fin) << 7 | u8::from(rsv1) << 6 | (opcode & 0x0f);
    let used = if len < 126 {
        head[1] = len as u8;
        2
    } else if len <= 0xffff {
        head[1] = 126;
        head[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        head[1] = 127;
        head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (head, used)
}

/// A whole frame; masked with `key` when one is given (a client's frames).
pub fn encode(opcode: u8, fin: bool, rsv1: bool, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    write_header(&mut out, opcode, fin, rsv1, payload.len(), key.is_some());
    if let Some(key) = key {
        out.extend_from_slice(&key);
        let start = out.len();
        out.extend_from_slice(payload);
        mask::apply(&mut out[start..], key, 0);
    } else {
        out.extend_from_slice(payload);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_examples() {
        // §5.7
        assert_eq!(encode(TEXT, true, false, b"Hello", None), b"\x81\x05Hello");
        assert_eq!(
            encode(TEXT, true, false, b"Hello", Some([0x37, 0xfa, 0x21, 0x3d])),
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        assert_eq!(encode(TEXT, false, false, b"Hel", None), b"\x01\x03Hel");
        assert_eq!(
            encode(CONTINUATION, true, false, b"lo", None),
            b"\x80\x02lo"
        );
        let big = vec![0u8; 256];
        assert_eq!(
            &encode(BINARY, true, false, &big, None)[..4],
            [0x82, 0x7e, 0x01, 0x00]
        );
        let huge = vec![0u8; 65536];
        assert_eq!(
            &encode(BINARY, true, false, &huge, None)[..10],
            [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }
}
