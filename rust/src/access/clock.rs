//! The times a log line carries, from a time and a UTC offset passed in (the core
//! reads no clock and no time zone).

use crate::h1::date::{civil_from_days, MONTHS};
use std::fmt::Write;

/// (year, month, day, hour, minute, second) of local seconds since the epoch; a
/// time before 1970 is written as the epoch (no clock of a running server says one).
fn civil(local: i64) -> (u64, u64, u64, u64, u64, u64) {
    let secs = u64::try_from(local).unwrap_or(0);
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    (year, month, day, rem / 3600, rem / 60 % 60, rem % 60)
}

/// `+0530`, or with `colon` `+05:30`: the offset in seconds east of UTC, with its
/// seconds when it has some (`+053045`), as Python's `%z` and isoformat write it.
fn offset_text(out: &mut String, offset: i32, colon: bool) {
    let sign = if offset < 0 { '-' } else { '+' };
    let all = offset.unsigned_abs();
    let (h, m, s) = (all / 3600 % 100, all / 60 % 60, all % 60);
    let sep = if colon { ":" } else { "" };
    let _ = write!(out, "{sign}{h:02}{sep}{m:02}");
    if s != 0 {
        let _ = write!(out, "{sep}{s:02}");
    }
}

/// `[07/Dec/2026:00:37:24 +0000]`: the common log format's time (gunicorn's and
/// nginx's), for `unix` seconds since the epoch at `offset` seconds east of UTC.
pub fn clf(unix: i64, offset: i32) -> String {
    let (year, month, day, h, m, s) = civil(unix.saturating_add(i64::from(offset)));
    let mut out = String::with_capacity(28);
    let name = std::str::from_utf8(MONTHS[(month - 1) as usize]).unwrap_or("Jan");
    let _ = write!(out, "[{day:02}/{name}/{year:04}:{h:02}:{m:02}:{s:02} ");
    offset_text(&mut out, offset, false);
    out.push(']');
    out
}

/// `2026-12-07T00:37:24.123+00:00`: ISO 8601 to the millisecond, for `unix_ms`
/// milliseconds since the epoch at `offset` seconds east of UTC.
pub fn iso(unix_ms: i64, offset: i32) -> String {
    let ms = unix_ms.rem_euclid(1000);
    let local = unix_ms.div_euclid(1000).saturating_add(i64::from(offset));
    let (year, month, day, h, m, s) = civil(local);
    let mut out = String::with_capacity(29);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}"
    );
    offset_text(&mut out, offset, true);
    out
}
