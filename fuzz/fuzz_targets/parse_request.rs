//! Fuzzes the request parser: no input may panic, and feeding the same bytes in two
//! pieces must give the same events as feeding them whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tremolo_core::h1::{Collect, Limits, Parser};

fn events(pieces: &[&[u8]]) -> Vec<tremolo_core::h1::Event> {
    let limits = Limits { max_body_size: 1 << 20, ..Limits::default() };
    let mut parser = Parser::new(limits);
    let mut sink = Collect::default();
    for piece in pieces {
        parser.feed(piece, &mut sink);
    }
    if parser.is_paused() {
        parser.resume(&mut sink);
    }
    sink.0
}

fuzz_target!(|data: &[u8]| {
    let whole = events(&[data]);
    if !data.is_empty() {
        let at = usize::from(data[0]) % data.len();
        assert_eq!(events(&[&data[..at], &data[at..]]), whole, "split at {at}");
    }
});
