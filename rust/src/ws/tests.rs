//! The codec fed as a client would feed it: whole, byte by byte and split at every
//! position, with and without permessage-deflate.

use super::deflate::{Compressor, Params};
use super::frame::{encode, BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT};
use super::*;

const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

fn client(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    encode(opcode, fin, false, payload, Some(KEY))
}

fn deflate_params() -> Params {
    Params {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 12,
        client_max_window_bits: 15,
    }
}

/// Feeds `wire` in the pieces `cuts` gives; (events, reply, error). The reply ends
/// with the answer to a Close or an error.
fn run(
    wire: &[u8],
    cuts: &[usize],
    deflate: bool,
    max: usize,
) -> (Vec<Event>, Vec<u8>, Option<Error>) {
    let mut s = Session::new(max, deflate.then(deflate_params));
    let (mut events, mut out) = (Vec::new(), Vec::new());
    let mut last = 0;
    for &cut in cuts.iter().chain([wire.len()].iter()) {
        if let Err(e) = s.feed(&wire[last..cut], usize::MAX, &mut events, &mut out) {
            out.extend(s.answer(None, Some(&e)));
            return (events, out, Some(e));
        }
        last = cut;
    }
    // the answer to a Close, as a server gives it once it is done with the events
    let close = events.iter().find(|e| matches!(e, Event::Close { .. }));
    out.extend(s.answer(close, None));
    (events, out, None)
}

/// Fed whole with `room`, the caller taking each feed's events and feeding again
/// (with no new input) while the decoder holds some: every feed stays within its room
/// but for its last event.
fn run_within(wire: &[u8], deflate: bool, max: usize, room: usize) -> (Vec<Event>, Option<Error>) {
    let mut s = Session::new(max, deflate.then(deflate_params));
    let (mut all, mut out) = (Vec::new(), Vec::new());
    let mut input = wire;
    loop {
        let mut events = Vec::new();
        let result = s.feed(input, room, &mut events, &mut out);
        input = &[];
        if let Some((_, before)) = events.split_last() {
            assert!(before.iter().map(Event::payload_len).sum::<usize>() < room.max(1));
        }
        all.extend(events);
        if let Err(e) = result {
            return (all, Some(e));
        }
        if s.held() == 0 {
            return (all, None);
        }
        assert!(room > 0, "a room of 0 decodes nothing");
    }
}

/// The same verdict whole, byte by byte, split at every position, and fed within a
/// small room.
fn check(wire: &[u8], deflate: bool, max: usize) -> (Vec<Event>, Vec<u8>, Option<Error>) {
    let whole = run(wire, &[], deflate, max);
    for room in [1, 7, 300] {
        let (events, err) = run_within(wire, deflate, max, room);
        assert_eq!(
            err.as_ref().map(Error::close_code),
            whole.2.as_ref().map(Error::close_code)
        );
        if whole.2.is_none() {
            assert_eq!(events, whole.0, "room {room}");
        }
    }
    let bytewise: Vec<usize> = (1..wire.len()).collect();
    let b = run(wire, &bytewise, deflate, max);
    assert_eq!(
        b.2.as_ref().map(Error::close_code),
        whole.2.as_ref().map(Error::close_code)
    );
    for cut in 0..=wire.len() {
        let s = run(wire, &[cut], deflate, max);
        assert_eq!(
            s.2.as_ref().map(Error::close_code),
            whole.2.as_ref().map(Error::close_code),
            "cut {cut}"
        );
        if whole.2.is_none() {
            assert_eq!(s.0, whole.0, "cut {cut}");
        }
    }
    whole
}

#[test]
fn messages_whole_and_fragmented() {
    let mut wire = client(TEXT, true, "héllo".as_bytes());
    wire.extend(client(BINARY, true, &[0, 1, 2]));
    wire.extend(client(TEXT, false, b"frag"));
    wire.extend(client(PING, true, b"p"));
    wire.extend(client(CONTINUATION, true, b"ment"));
    wire.extend(client(BINARY, true, &[]));
    wire.extend(client(TEXT, true, &[b'a'; 300]));
    let (events, out, err) = check(&wire, false, 1 << 20);
    assert_eq!(err, None);
    assert_eq!(events[0], Event::Text("héllo".into()));
    assert_eq!(events[1], Event::Binary(vec![0, 1, 2]));
    assert_eq!(
        events[2],
        Event::Fragment {
            opcode: TEXT,
            data: b"frag".to_vec(),
            fin: false
        }
    );
    assert_eq!(events[3], Event::Ping(b"p".to_vec()));
    assert_eq!(
        events[4],
        Event::Fragment {
            opcode: CONTINUATION,
            data: b"ment".to_vec(),
            fin: true
        }
    );
    assert_eq!(events[5], Event::Binary(vec![]));
    assert_eq!(events[6], Event::Text("a".repeat(300)));
    assert_eq!(out, encode(PONG, true, false, b"p", None));
}

#[test]
fn a_64_bit_length() {
    let wire = client(BINARY, true, &vec![9; 70000]);
    for cuts in [
        vec![],
        vec![1, 2, 5, 9, 13, 14, 1000],
        (1..wire.len()).step_by(997).collect(),
    ] {
        let (events, _, err) = run(&wire, &cuts, false, 1 << 20);
        assert_eq!(err, None);
        assert_eq!(events, vec![Event::Binary(vec![9; 70000])]);
    }
}

#[test]
fn close_is_echoed_and_ends_reading() {
    let mut wire = client(CLOSE, true, b"\x03\xe8bye");
    wire.extend(client(TEXT, true, b"ignored"));
    let (events, out, err) = check(&wire, false, 1000);
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![Event::Close {
            code: Some(1000),
            reason: "bye".into()
        }]
    );
    assert_eq!(out, encode(CLOSE, true, false, b"\x03\xe8", None));
    let (events, out, _) = check(&client(CLOSE, true, b""), false, 1000);
    assert_eq!(
        events,
        vec![Event::Close {
            code: None,
            reason: String::new()
        }]
    );
    assert_eq!(out, encode(CLOSE, true, false, b"", None));
}

fn fails(wire: &[u8], code: u16) {
    let (_, out, err) = check(wire, false, 1000);
    assert_eq!(err.as_ref().map(Error::close_code), Some(code), "{wire:?}");
    assert_eq!(&out[..4], [0x88, out[1], (code >> 8) as u8, code as u8]);
}

#[test]
fn protocol_errors() {
    fails(&encode(TEXT, true, false, b"x", None), 1002); // unmasked
    let mut w = client(TEXT, true, b"x");
    w[0] |= 0x20; // RSV2
    fails(&w, 1002);
    let mut w = client(TEXT, true, b"x");
    w[0] |= 0x40; // RSV1 without deflate
    fails(&w, 1002);
    fails(&client(3, true, b""), 1002); // reserved opcode
    fails(&client(0xB, true, b""), 1002);
    fails(&client(CONTINUATION, true, b"x"), 1002);
    fails(&client(PING, false, b""), 1002);
    fails(&client(PING, true, &[0; 126]), 1002);
    let mut w = client(TEXT, false, b"a");
    w.extend(client(TEXT, true, b"b"));
    fails(&w, 1002);
    fails(&client(CLOSE, true, b"\x03"), 1002);
    fails(&client(CLOSE, true, b"\x03\xed"), 1002); // 1005
    fails(&client(CLOSE, true, b"\x03\xe8\xff"), 1007);
    // a 64-bit length with its top bit set
    fails(&[0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4], 1002);
}

#[test]
fn invalid_utf8_fails_fast_across_fragments_and_reads() {
    let mut w = client(TEXT, false, "κόσμε".as_bytes());
    w.extend(client(CONTINUATION, false, &[0xce, 0xba, 0xf4, 0x90, 0x80]));
    let before_third = w.len();
    w.extend(client(CONTINUATION, true, b"rest"));
    fails(&w, 1007);
    // the error comes before the third frame arrives
    let (_, _, err) = run(&w[..before_third], &[], false, 1000);
    assert_eq!(err.map(|e| e.close_code()), Some(1007));
    // and inside one frame, before its end
    let frame = client(TEXT, true, b"abc\xff and more bytes");
    let (_, _, err) = run(&frame[..10], &[], false, 1000);
    assert_eq!(err.map(|e| e.close_code()), Some(1007));
    // a character split across fragments is fine; one left unfinished is not
    let mut w = client(TEXT, false, &[0xce]);
    w.extend(client(CONTINUATION, true, &[0xba]));
    assert_eq!(check(&w, false, 1000).2, None);
    let mut w = client(TEXT, false, b"a");
    w.extend(client(CONTINUATION, true, &[0xce]));
    fails(&w, 1007);
}

#[test]
fn sizes_are_checked_from_the_header() {
    // a header announcing 2^40 bytes fails before any payload
    let mut w = vec![0x82, 0xff];
    w.extend((1u64 << 40).to_be_bytes());
    w.extend(KEY);
    fails(&w, 1009);
    // a message over the limit in fragments that are each under it
    let mut w = client(BINARY, false, &[0; 600]);
    w.extend(client(CONTINUATION, true, &[0; 600]));
    fails(&w, 1009);
}

fn compressed(msg: &[u8]) -> Vec<u8> {
    let mut c = Compressor::new(15);
    let mut z = Vec::new();
    c.compress(msg, &mut z).unwrap();
    encode(TEXT, true, true, &z, Some(KEY))
}

#[test]
fn permessage_deflate() {
    let mut w = compressed(b"hello compressed world");
    w.extend(client(TEXT, true, b"plain"));
    let (events, _, err) = check(&w, true, 1000);
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![
            Event::Text("hello compressed world".into()),
            Event::Text("plain".into())
        ]
    );
    // a bomb: 1 MiB of zeros in a few KiB, against a 64 KiB limit
    let bomb = compressed(&vec![b'0'; 1 << 20]);
    assert!(bomb.len() < 8 << 10);
    let (_, _, err) = check(&bomb, true, 64 << 10);
    assert_eq!(err.map(|e| e.close_code()), Some(1009));
    // invalid UTF-8 inside compressed text
    let (_, _, err) = check(&compressed(b"ok \xff"), true, 1000);
    assert_eq!(err.map(|e| e.close_code()), Some(1007));
}

#[test]
fn the_answer_to_a_close_waits_for_the_caller() {
    let mut s = Session::new(1000, None);
    let (mut events, mut out) = (Vec::new(), Vec::new());
    let mut wire = client(TEXT, true, b"before");
    wire.extend(client(CLOSE, true, b"\x03\xe8"));
    s.feed(&wire, usize::MAX, &mut events, &mut out).unwrap();
    assert!(out.is_empty() && s.close_received() && !s.close_sent());
    // the server may still send (an echo of "before") until it answers
    assert_eq!(
        s.send(TEXT, b"before", true).unwrap().to_vec(),
        b"\x81\x06before"
    );
    assert_eq!(
        s.answer(events.last(), None),
        encode(CLOSE, true, false, b"\x03\xe8", None)
    );
    assert!(matches!(
        s.send(TEXT, b"late", true),
        Err(SendError::Closed)
    ));
}

#[test]
fn server_sends_and_closes_once() {
    let mut s = Session::new(1000, Some(deflate_params()));
    assert_eq!(s.send(TEXT, b"hi", true).unwrap().to_vec(), b"\x81\x02hi"); // short: not compressed
    let big = s.send(TEXT, &[b'x'; 1000], true).unwrap().to_vec();
    assert_eq!(big[0], 0xc1); // FIN, RSV1, text
    assert!(big.len() < 100);
    let first = s.send(BINARY, &[b'a'; 100], false).unwrap().to_vec();
    assert_eq!(first[0], 0x02); // not FIN, no RSV1: a fragmented message goes as it is
    let last = s.send(BINARY, b"cd", true).unwrap().to_vec();
    assert_eq!(last[0], 0x80); // FIN, continuation
    assert_eq!(
        s.close(Some(1000), "bye"),
        encode(CLOSE, true, false, b"\x03\xe8bye", None)
    );
    assert_eq!(s.close(Some(1000), ""), b"");
    assert!(matches!(
        s.send(TEXT, b"late", true),
        Err(SendError::Closed)
    ));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // a small deterministic sweep; the fuzz target covers the rest
    let mut x: u32 = 1;
    for _ in 0..2000 {
        let len = (x % 64) as usize;
        let wire: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for deflate in [false, true] {
            let _ = run(&wire, &[len / 2], deflate, 100);
        }
    }
}

#[test]
fn a_room_of_0_holds_everything() {
    let wire = client(TEXT, true, b"held");
    let mut s = Session::new(1000, None);
    let (mut events, mut out) = (Vec::new(), Vec::new());
    s.feed(&wire, 0, &mut events, &mut out).unwrap();
    assert!(events.is_empty());
    assert_eq!(s.held(), wire.len());
    // new input while some is held comes after it
    s.feed(&client(BINARY, true, b"next"), 0, &mut events, &mut out)
        .unwrap();
    assert_eq!(s.held(), 2 * wire.len());
    s.feed(&[], 1, &mut events, &mut out).unwrap();
    assert_eq!(events, vec![Event::Text("held".into())]);
    s.feed(&[], usize::MAX, &mut events, &mut out).unwrap();
    assert_eq!(events[1], Event::Binary(b"next".to_vec()));
    assert_eq!(s.held(), 0);
}

#[test]
fn compressed_bombs_are_inflated_one_at_a_time() {
    // 40 messages of 2 KiB that each inflate to 1 MiB, in one read: a feed with
    // 64 KiB of room inflates one of them and holds the rest, compressed
    let max = 1 << 20;
    let one = compressed(&vec![0; max - 1024]);
    assert!(one.len() < 2048);
    let wire = one.repeat(40);
    let mut s = Session::new(max, Some(deflate_params()));
    let mut out = Vec::new();
    let mut feeds = 0;
    let mut input = &wire[..];
    loop {
        let mut events = Vec::new();
        s.feed(input, 64 << 10, &mut events, &mut out).unwrap();
        input = &[];
        feeds += 1;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].payload_len(), max - 1024);
        assert_eq!(s.held(), wire.len() - feeds * one.len());
        if s.held() == 0 {
            break;
        }
    }
    assert_eq!(feeds, 40);
}

#[test]
fn a_ping_or_pong_over_125_bytes_is_refused_not_cut_short() {
    let mut s = Session::new(1 << 20, None);
    assert_eq!(
        s.send(PING, &[b'p'; 125], true).unwrap().to_vec()[..2],
        [0x89, 125]
    );
    assert!(matches!(
        s.send(PONG, &[b'p'; 126], true),
        Err(SendError::ControlTooLong)
    ));
    assert!(matches!(
        s.send(PING, &[b'p'; 1000], true),
        Err(SendError::ControlTooLong)
    ));
}
