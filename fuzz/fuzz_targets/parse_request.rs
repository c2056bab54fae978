//! Fuzzes the request parser: no input may panic, and feeding the same bytes in two
//! pieces must give the same events as feeding them whole. Every head it gives is
//! also read for a trusted proxy's fields, in both families (no panic there either).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tremolo_core::forwarded::{resolve, Family, Proxies};
use tremolo_core::h1::{Collect, Event, Limits, Parser};

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
    let proxies = Proxies::new(false, [("10.0.0.0".parse().unwrap(), 8)]);
    for event in &whole {
        if let Event::Head(head) = event {
            for family in [Family::XForwarded, Family::Forwarded] {
                let said = resolve(head, family, &proxies);
                assert!(said.scheme.is_none_or(|s| s == "http" || s == "https"));
            }
        }
    }
    if !data.is_empty() {
        let at = usize::from(data[0]) % data.len();
        assert_eq!(events(&[&data[..at], &data[at..]]), whole, "split at {at}");
    }
});
