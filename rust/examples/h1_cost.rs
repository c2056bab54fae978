//! The HTTP/1.1 core alone, for bench/parse_cost.py to count under callgrind:
//! `h1_cost parse N` parses the request read from stdin N times (and frees each
//! head), `h1_cost respond N` writes a hello world's response head N times.

use std::hint::black_box;
use std::io::Read;
use tremolo_core::h1::response::{Framing, HeadWriter};
use tremolo_core::h1::{Error, Limits, Parser, RequestHead, Sink};

/// Keeps the last head; anything but one whole request per feed is a mistake.
struct Last(Option<RequestHead>, bool);

impl Sink for Last {
    fn head(&mut self, head: RequestHead) {
        self.0 = Some(head);
    }
    fn data(&mut self, _: &[u8]) {}
    fn end(&mut self, _: Vec<(Vec<u8>, Vec<u8>)>) {
        self.1 = true;
    }
    fn error(&mut self, error: Error) {
        panic!("the request was refused: {error}");
    }
}

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let calls: usize = args.get(2).and_then(|n| n.parse().ok()).expect("a count");
    match args.get(1).map(String::as_str) {
        Some("parse") => {
            let mut request = Vec::new();
            std::io::stdin().read_to_end(&mut request).expect("stdin");
            let mut parser = Parser::new(Limits::default());
            for _ in 0..calls {
                let mut sink = Last(None, false);
                parser.feed(black_box(&request), &mut sink);
                assert!(sink.1, "not one whole request");
                black_box(sink.0);
            }
        }
        Some("respond") => {
            for _ in 0..calls {
                let mut w = HeadWriter::new(black_box(200), None, 128).expect("status");
                w.app_header(b"Content-Type", black_box(b"text/plain; charset=utf-8"))
                    .expect("field");
                let head = w
                    .finish(Framing::Length(12), true, false, DATE, b"tremolo")
                    .expect("head");
                black_box(head);
            }
        }
        _ => panic!("usage: h1_cost parse|respond N"),
    }
}
