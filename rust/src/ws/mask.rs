//! Masking (RFC 6455 §5.3): XOR with a 4-byte key, eight bytes at a time.

/// XORs `data` in place with `key`, starting at byte `offset` of the key's cycle
/// (a payload unmasked in pieces carries its position from piece to piece).
pub fn apply(data: &mut [u8], key: [u8; 4], offset: usize) {
    let k = [
        key[offset & 3],
        key[(offset + 1) & 3],
        key[(offset + 2) & 3],
        key[(offset + 3) & 3],
    ];
    let word = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(w) ^ word).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytewise(data: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[(offset + i) & 3];
        }
    }

    #[test]
    fn matches_the_bytewise_definition_at_every_length_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..40 {
            for offset in 0..4 {
                let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(31)).collect();
                let (mut a, mut b) = (data.clone(), data);
                apply(&mut a, key, offset);
                bytewise(&mut b, key, offset);
                assert_eq!(a, b, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn rfc_6455_example() {
        // §5.7: a masked "Hello"
        let mut data = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&data, b"Hello");
    }
}
