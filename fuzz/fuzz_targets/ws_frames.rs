//! Fuzzes the WebSocket decoder, with permessage-deflate on and off (the first byte
//! chooses): no input may panic, and two pieces, or a small room that the caller
//! keeps feeding again, must decode as the whole does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tremolo_core::ws::deflate::Params;
use tremolo_core::ws::{Event, Session};

fn run(pieces: &[&[u8]], deflate: bool, room: usize) -> (Vec<Event>, Vec<u8>, Option<u16>) {
    let params = deflate.then_some(Params {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 12,
        client_max_window_bits: 15,
    });
    let mut session = Session::new(1 << 16, params);
    let (mut events, mut out) = (Vec::new(), Vec::new());
    for piece in pieces {
        let mut input = *piece;
        loop {
            if let Err(e) = session.feed(input, room, &mut events, &mut out) {
                return (events, out, Some(e.close_code()));
            }
            input = &[];
            if session.held() == 0 {
                break;
            }
        }
    }
    (events, out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let deflate = first & 1 == 1;
    let whole = run(&[rest], deflate, usize::MAX);
    if !rest.is_empty() {
        let at = usize::from(first >> 1) % rest.len();
        let split = run(&[&rest[..at], &rest[at..]], deflate, usize::MAX);
        assert_eq!(split.2, whole.2, "split at {at}");
        let small = run(&[rest], deflate, usize::from(first >> 1) + 1);
        assert_eq!(small.2, whole.2, "room {}", (first >> 1) + 1);
        if whole.2.is_none() {
            assert_eq!(split.0, whole.0, "split at {at}");
            assert_eq!(small.0, whole.0, "room {}", (first >> 1) + 1);
        }
    }
});
