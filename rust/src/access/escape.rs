//! Text from clients as one safe piece of a log line.
//!
//! A field value, the target or a Basic-auth user can hold anything a client wrote.
//! Written as is, it could end the line (and forge the next), drive the reader's
//! terminal (ESC, CSI), reorder what follows (bidi controls) or close the quotes a
//! format puts around it. Everything that is not printable is written as `\xHH`
//! (up to U+00FF), `\uHHHH` or `\UHHHHHHHH`, a quote as `\"` and a backslash as
//! `\\`, so that an escape always reads back as one.

use std::fmt::Write;

/// Whether a character is unprintable: the C0 and C1 controls and DEL, every space
/// but ' ', the line and paragraph separators, the format characters (bidi
/// controls, zero-width ones, tags) and private use, with the noncharacters. This is
/// Python's `str.isprintable` except for code points Unicode has not assigned yet,
/// which are written as they are (a table of those would change with every Unicode
/// version, and none of them moves a line or a terminal).
pub fn unprintable(c: char) -> bool {
    let n = c as u32;
    match n {
        0x00..=0x1f | 0x7f..=0xa0 | 0xad => true,
        0x20..=0xff => false,
        _ => WIDE.iter().any(|&(lo, hi)| (lo..=hi).contains(&n)) || (n & 0xfffe) == 0xfffe,
    }
}

/// The unprintable ranges above U+00FF (Unicode's Zs, Zl, Zp, Cf and Co, and the
/// noncharacters U+FDD0-U+FDEF; those ending in FFFE or FFFF are found by their bits).
const WIDE: &[(u32, u32)] = &[
    (0x0600, 0x0605),
    (0x061c, 0x061c),
    (0x06dd, 0x06dd),
    (0x070f, 0x070f),
    (0x0890, 0x0891),
    (0x08e2, 0x08e2),
    (0x1680, 0x1680),
    (0x180e, 0x180e),
    (0x2000, 0x200f),
    (0x2028, 0x202f),
    (0x205f, 0x2064),
    (0x2066, 0x206f),
    (0x3000, 0x3000),
    (0xe000, 0xf8ff),
    (0xfdd0, 0xfdef),
    (0xfeff, 0xfeff),
    (0xfff9, 0xfffb),
    (0x110bd, 0x110bd),
    (0x110cd, 0x110cd),
    (0x13430, 0x1343f),
    (0x1bca0, 0x1bca3),
    (0x1d173, 0x1d17a),
    (0xe0001, 0xe0001),
    (0xe0020, 0xe007f),
    (0xf0000, 0x10ffff),
];

/// Appends `c` escaped (see the module docs).
fn push(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        c if !unprintable(c) => out.push(c),
        c => {
            let n = c as u32;
            // (writing to a String cannot fail)
            let _ = match n {
                0..=0xff => write!(out, "\\x{n:02x}"),
                0x100..=0xffff => write!(out, "\\u{n:04x}"),
                _ => write!(out, "\\U{n:08x}"),
            };
        }
    }
}

/// Appends bytes read as Latin-1 (a field value, the target: what HTTP/1.1 allows
/// is bytes), escaped.
pub fn latin1(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'"' | b'\\' => push(out, char::from(b)),
            0x20..=0x7e => out.push(char::from(b)),
            _ => push(out, char::from(b)),
        }
    }
}

/// Appends text, escaped; with `spaces`, a space too (the user, the one atom a
/// client writes whole that the common formats leave unquoted: a space would shift
/// the fields after it).
pub fn text(out: &mut String, text: &str, spaces: bool) {
    for c in text.chars() {
        if spaces && c == ' ' {
            out.push_str("\\x20");
        } else {
            push(out, c);
        }
    }
}
