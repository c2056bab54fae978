//! Where a run of valid bytes ends. A head is read a word (eight bytes) at a time:
//! arithmetic on the word flags every byte outside the run's class (and maybe a few
//! inside it, which a table lookup then lets through), so the usual word costs a
//! handful of instructions instead of eight lookups.

use super::chars::{is_target_byte, is_tchar, is_value_byte};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` below `n` (at most 0x80). A borrow can flag a
/// byte above a flagged one, never below: the lowest flagged byte is exact.
#[inline]
fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH
}

/// As [`below`], for the bytes equal to `b`.
#[inline]
fn equal(x: u64, b: u8) -> u64 {
    below(x ^ (ONES * u64::from(b)), 1)
}

/// The index of the first byte from `i` on for which `valid` is false, or
/// `d.len()`. `flags` marks, in a word whose lowest byte comes first, at least the
/// lowest byte that is not valid, and no byte below it that `valid` refuses.
#[inline(always)]
fn run_end(
    d: &[u8],
    mut i: usize,
    flags: impl Fn(u64) -> u64,
    valid: impl Fn(u8) -> bool,
) -> usize {
    loop {
        let Some(w) = d.get(i..i + 8) else {
            let tail = d.get(i..).unwrap_or_default();
            return i + tail.iter().position(|&b| !valid(b)).unwrap_or(tail.len());
        };
        let f = flags(<[u8; 8]>::try_from(w).map_or(!0, u64::from_le_bytes));
        if f == 0 {
            i += 8;
            continue;
        }
        i += (f.trailing_zeros() / 8) as usize;
        if !d.get(i).is_some_and(|&b| valid(b)) {
            return i;
        }
        i += 1;
    }
}

/// Flags the bytes of `x` that are not letters or `-` (what nearly every method
/// and field name is made of), every one of them: tchars among them are the
/// table's to pass.
#[inline]
fn token_flags(x: u64) -> u64 {
    // seven bits of each byte: no sum below carries into the next byte
    let low = x & !HIGH;
    let letter = within(low | (ONES * 0x20), b'a', b'z');
    let dash = !(low ^ (ONES * u64::from(b'-'))).wrapping_add(ONES * 0x7f);
    !((letter | dash) & !x) & HIGH
}

/// The high bit of each byte of `x`, a word of seven-bit bytes, from `lo` to `hi`.
/// Exact: no sum carries into the next byte.
#[inline]
fn within(x: u64, lo: u8, hi: u8) -> u64 {
    x.wrapping_add(ONES * u64::from(0x80 - lo))
        & !x.wrapping_add(ONES * u64::from(0x7f - hi))
        & HIGH
}

/// Flags the bytes of `x` that are control bytes (HTAB among them, which the table
/// passes) or DEL. A borrow may flag a byte above a flagged one; none is missed.
#[inline]
fn value_flags(x: u64) -> u64 {
    below(x, 0x20) | equal(x, 0x7f)
}

/// Flags the bytes of `x` that cannot stand in a request-target (see [`target_end`]).
#[inline]
fn target_flags(x: u64) -> u64 {
    below(x, 0x21) | (x & HIGH) | equal(x, 0x7f) | equal(x, b'#')
}

/// Whether every byte of `s` passes `valid`; `flags` must flag every byte that
/// does not. A word at a time where `s` has one, the last one overlapping.
#[inline(always)]
fn all_valid(s: &[u8], flags: impl Fn(u64) -> u64, valid: impl Fn(u8) -> bool) -> bool {
    let word = |w: &[u8]| <[u8; 8]>::try_from(w).map_or(!0, u64::from_le_bytes);
    let clean = s.len() >= 8
        && s.chunks_exact(8).all(|w| flags(word(w)) == 0)
        && flags(word(&s[s.len() - 8..])) == 0;
    clean || s.iter().all(|&b| valid(b))
}

/// The index of the first byte from `i` on that is not a tchar (RFC 9110 §5.6.2),
/// or `d.len()`.
pub(super) fn token_end(d: &[u8], i: usize) -> usize {
    run_end(d, i, token_flags, is_tchar)
}

/// Whether every byte of `s` is a tchar.
pub(super) fn all_tchars(s: &[u8]) -> bool {
    all_valid(s, token_flags, is_tchar)
}

/// The index of the first byte from `i` on that cannot stand in a field value (a
/// control byte but HTAB, DEL: CR among them, so a valid line's value ends at its
/// CR), or `d.len()`.
pub(super) fn value_end(d: &[u8], i: usize) -> usize {
    run_end(d, i, value_flags, is_value_byte)
}

/// Whether every byte of `s` may stand in a field value.
pub(super) fn all_value_bytes(s: &[u8]) -> bool {
    all_valid(s, value_flags, is_value_byte)
}

/// The index of the first byte from `i` on that cannot stand in a request-target
/// (anything but visible ASCII, and `#`: a fragment is never sent), or `d.len()`.
pub(super) fn target_end(d: &[u8], i: usize) -> usize {
    run_end(d, i, target_flags, |b| is_target_byte(b) && b != b'#')
}

/// Lowercases the name `d[start..end]`, a token (ASCII), a word at a time: a name
/// of eight bytes or more as words, the last overlapping the one before it
/// (lowercasing twice changes nothing); a shorter one as the low bytes of a word
/// that may reach past it, left as they were there.
pub(super) fn lowercase_name(d: &mut [u8], start: usize, end: usize) {
    let len = end.saturating_sub(start);
    if len >= 8 {
        let mut i = start;
        while i + 8 < end {
            lowercase_word(d, i, !0);
            i += 8;
        }
        lowercase_word(d, end - 8, !0);
    } else if d.len() >= start + 8 {
        lowercase_word(d, start, (1 << (8 * len)) - 1);
    } else if let Some(name) = d.get_mut(start..end) {
        name.make_ascii_lowercase();
    }
}

/// Lowercases the ASCII letters among the bytes of `d[i..i + 8]` that `keep`
/// marks (all its bits of each byte).
#[inline]
fn lowercase_word(d: &mut [u8], i: usize, keep: u64) {
    let Some(w) = d.get_mut(i..).and_then(<[u8]>::first_chunk_mut::<8>) else {
        return;
    };
    let x = u64::from_le_bytes(*w);
    let upper = within(x & !HIGH, b'A', b'Z') & !x & keep;
    *w = (x | (upper >> 2)).to_le_bytes();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every word reading against the byte table it stands for, on `d` from each
    /// of its first few bytes.
    fn assert_agree(d: &[u8]) {
        let by_table = |i: usize, valid: &dyn Fn(u8) -> bool| {
            i + d[i..]
                .iter()
                .position(|&b| !valid(b))
                .unwrap_or(d.len() - i)
        };
        let target = |b: u8| is_target_byte(b) && b != b'#';
        for i in 0..=d.len().min(3) {
            let rest = &d[i..];
            assert_eq!(token_end(d, i), by_table(i, &is_tchar), "{d:?} from {i}");
            assert_eq!(
                value_end(d, i),
                by_table(i, &is_value_byte),
                "{d:?} from {i}"
            );
            assert_eq!(target_end(d, i), by_table(i, &target), "{d:?} from {i}");
            let all_tchar = rest.iter().all(|&b| is_tchar(b));
            assert_eq!(all_tchars(rest), all_tchar, "{d:?} from {i}");
            let all_value = rest.iter().all(|&b| is_value_byte(b));
            assert_eq!(all_value_bytes(rest), all_value, "{d:?} from {i}");
        }
    }

    /// Each byte at each position of a word and of the tail, among bytes of each
    /// kind.
    #[test]
    fn one_byte_anywhere() {
        for len in 0..18 {
            for at in 0..len {
                for b in 0..=255u8 {
                    for fill in [b'a', b'Z', b'-', b'\t', 0x80, 0xff, b'~'] {
                        let mut d = vec![fill; len];
                        d[at] = b;
                        assert_agree(&d);
                    }
                }
            }
        }
        assert_eq!(value_end(b"", 0), 0);
        assert_eq!(target_end(b"/abc", 4), 4);
        assert_eq!(token_end(b"Host: x", 0), 4);
        assert_eq!(token_end(b"Host", 9), 9);
    }

    #[test]
    fn names_lowercase_in_place_and_nothing_around_them() {
        for len in 0..24 {
            for start in 0..len {
                for end in start..=len {
                    for b in 0..=255u8 {
                        let d: Vec<u8> = (0..len as u8)
                            .map(|i| b.wrapping_add(i.wrapping_mul(29)))
                            .collect();
                        let mut want = d.clone();
                        want[start..end].make_ascii_lowercase();
                        let mut got = d.clone();
                        lowercase_name(&mut got, start, end);
                        assert_eq!(got, want, "{d:?} {start}..{end}");
                    }
                }
            }
        }
    }

    /// Words with several bytes outside a class (a borrow from one must not hide
    /// another), drawn from the bytes near the classes' edges.
    #[test]
    fn many_bytes_anywhere() {
        let edges = [
            0u8, 1, 8, 9, 10, 13, 0x1f, 0x20, 0x21, b'#', b'-', b':', b'@', b'A', b'Z', b'[', b'`',
            b'a', b'z', b'{', 0x7e, 0x7f, 0x80, 0xff,
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 20) as usize;
            let d: Vec<u8> = (0..len)
                .map(|i| edges[(seed >> (3 * i)) as usize % edges.len()])
                .collect();
            assert_agree(&d);
        }
    }
}
