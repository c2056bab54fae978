use super::clock::{clf, iso};
use super::escape::{latin1, text, unprintable};
use super::{Entry, Format, Time};
use crate::h1::{Limits, RequestHead};

fn head(raw: &[u8]) -> RequestHead {
    RequestHead::parse(raw.to_vec(), &Limits::default()).expect("a valid head")
}

fn line(format: &str, e: &Entry) -> String {
    let mut out = String::new();
    Format::parse(format)
        .expect("a valid format")
        .write(&mut out, e);
    out
}

const GET: &[u8] = b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nReferer: /r\r\nUser-Agent: curl\r\n\
Authorization: Basic em/DqzpzZWNyZXQ=\r\nX-In: v\r\n\r\n";

#[test]
fn presets_write_what_gunicorn_and_nginx_write() {
    let h = head(GET);
    let e = Entry {
        head: Some(&h),
        client: "10.0.0.1",
        time: "[07/Dec/2026:00:37:24 +0000]",
        status: 200,
        sent: 5,
        seconds: 0.0123,
        ..Entry::default()
    };
    assert_eq!(
        line("default", &e),
        "10.0.0.1 [07/Dec/2026:00:37:24 +0000] \"GET /a?b=c HTTP/1.1\" 200 5 12ms"
    );
    assert_eq!(
        line("combined", &e),
        "10.0.0.1 - zo\u{eb} [07/Dec/2026:00:37:24 +0000] \"GET /a?b=c HTTP/1.1\" 200 5 \"/r\" \"curl\""
    );
}

#[test]
fn every_atom() {
    let h = head(GET);
    let e = Entry {
        head: Some(&h),
        client: "unix",
        status: 0,
        sent: 0,
        seconds: 1.5,
        pid: 7,
        response: &[Some(b"t-1"), None],
        ..Entry::default()
    };
    let all = "%(m)s %(U)s %(q)s %(H)s %(s)s %(b)s %(B)s %(D)s %(M)s %(L)s %(p)s %(I)s %(l)s \
               %({x-in}i)s %({X-Out}o)s %({none}o)s %({none}i)s 100%%";
    assert_eq!(
        line(all, &e),
        "GET /a b=c HTTP/1.1 - - 0 1500000 1500 1.500000 <7> - - v t-1 - - 100%"
    );
    assert_eq!(
        Format::parse(all).unwrap().response_fields(),
        [b"x-out".to_vec(), b"none".to_vec()]
    );
}

#[test]
fn a_refused_request_has_no_request_to_write() {
    let e = Entry {
        client: "127.0.0.1",
        status: 431,
        sent: 120,
        ..Entry::default()
    };
    assert_eq!(
        line(
            "%(h)s \"%(r)s\" %(m)s %(U)s [%(q)s] %(H)s %(u)s %(s)s %(b)s %(f)s",
            &e
        ),
        "127.0.0.1 \"-\" - - [] - - 431 120 -"
    );
    let mut out = String::new();
    Format::parse("json")
        .unwrap()
        .write(&mut out, &Entry { time: "T", ..e });
    assert_eq!(
        out,
        "{\"time\": \"T\", \"client\": \"127.0.0.1\", \"user\": null, \"method\": null, \
         \"target\": null, \"protocol\": null, \"status\": 431, \"bytes\": 120, \
         \"duration_ms\": 0.0, \"referer\": \"-\", \"user_agent\": \"-\", \"refused\": true}"
    );
}

#[test]
fn a_websocket_closing_says_its_bytes_in() {
    let h = head(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    let e = Entry {
        head: Some(&h),
        client: "::1",
        time: "[t]",
        status: 1000,
        sent: 10,
        received: Some(32),
        seconds: 2.0,
        ..Entry::default()
    };
    let closing = Format::parse("default").unwrap().closing();
    let mut out = String::new();
    closing.write(&mut out, &e);
    assert_eq!(
        out,
        "::1 [t] \"GET /ws HTTP/1.1\" 1000 10 2000ms (WebSocket closed, 32 bytes in)"
    );
    // another format is its own
    assert_eq!(
        Format::parse("common").unwrap().closing(),
        Format::parse("common").unwrap()
    );
    let mut out = String::new();
    Format::parse("json")
        .unwrap()
        .write(&mut out, &Entry { time: "T", ..e });
    assert!(out.ends_with(
        "\"duration_ms\": 2000.0, \"referer\": \"-\", \"user_agent\": \"-\", \
         \"websocket\": true, \"bytes_in\": 32}"
    ));
}

#[test]
fn json_strings_are_ascii_as_python_writes_them() {
    let h = head(
        b"GET /\"\\ HTTP/1.1\r\nHost: x\r\nUser-Agent: a\tb\x80\xff\r\nAuthorization: Basic \
8J+YgOKAqDo=\r\n\r\n",
    );
    let e = Entry {
        head: Some(&h),
        client: "c",
        time: "T",
        seconds: 0.0012346,
        ..Entry::default()
    };
    let mut out = String::new();
    Format::parse("json").unwrap().write(&mut out, &e);
    assert_eq!(
        out,
        "{\"time\": \"T\", \"client\": \"c\", \"user\": \"\\ud83d\\ude00\\u2028\", \
         \"method\": \"GET\", \"target\": \"/\\\"\\\\\", \"protocol\": \"HTTP/1.1\", \
         \"status\": 0, \"bytes\": 0, \"duration_ms\": 1.235, \"referer\": \"-\", \
         \"user_agent\": \"a\\tb\\u0080\\u00ff\"}"
    );
}

#[test]
fn client_text_is_escaped() {
    let mut out = String::new();
    latin1(&mut out, b"a \"q\" \\ \x1b[2J \x85 \xa0 \xad \xe9 \t\x7f");
    assert_eq!(
        out,
        "a \\\"q\\\" \\\\ \\x1b[2J \\x85 \\xa0 \\xad \u{e9} \\x09\\x7f"
    );
    let mut out = String::new();
    text(
        &mut out,
        "a b\u{2028}\u{202e}\u{feff}\u{e000}\u{10fffd}\u{1f600}é",
        true,
    );
    assert_eq!(
        out,
        "a\\x20b\\u2028\\u202e\\ufeff\\ue000\\U0010fffd\u{1f600}é"
    );
    for c in [
        '\u{a0}',
        '\u{2000}',
        '\u{3000}',
        '\u{fffe}',
        '\u{1ffff}',
        '\u{e0041}',
    ] {
        assert!(unprintable(c), "{c:?}");
    }
    for c in [
        ' ',
        '~',
        '\u{a1}',
        '\u{ff}',
        '\u{100}',
        '\u{2027}',
        '\u{4e00}',
        '\u{1f600}',
    ] {
        assert!(!unprintable(c), "{c:?}");
    }
}

#[test]
fn a_user_is_read_as_python_reads_basic_credentials() {
    // "dXNlcjpwdx==": unused trailing bits that are not zero, which b64decode takes
    let h = head(b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dXNlcjpwdx==\r\n\r\n");
    let e = Entry {
        head: Some(&h),
        ..Entry::default()
    };
    assert_eq!(line("%(u)s", &e), "user");
}

#[test]
fn a_user_that_does_not_decode_is_none() {
    for auth in [
        &b"Basic !!!"[..],
        b"Bearer em/DqzpzZWNyZXQ=",
        b"Basic",
        b"Basic OnNlY3JldA==",
    ] {
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: ".to_vec();
        raw.extend_from_slice(auth);
        raw.extend_from_slice(b"\r\n\r\n");
        let h = head(&raw);
        let e = Entry {
            head: Some(&h),
            ..Entry::default()
        };
        assert_eq!(line("%(u)s", &e), "-", "{auth:?}");
    }
}

#[test]
fn formats_that_cannot_work_are_refused_by_what_is_wrong() {
    for (bad, said) in [
        ("", "empty"),
        ("  ", "empty"),
        ("%s", "only %(atom)s and %% are atoms, not \"%s\""),
        (
            "%(h)s %(s)d",
            "only %(atom)s and %% are atoms, not \"%(s)d\"",
        ),
        ("%(h)s %", "only %(atom)s and %% are atoms"),
        ("%(h)s %(r", "an unclosed %("),
        (
            "%(zz)s",
            "unknown atom %(zz)s (known: B, D, H, I, L, M, U, a, b, f,",
        ),
        ("%({\u{fc}\u{20ac}}i)s", "a field's name is printable ASCII"),
        ("%({}o)s", "a field's name is printable ASCII"),
        ("%({a b}o)s", "a field's name is printable ASCII"),
        // one line, no terminal escape, whatever the format holds
        ("%(\n)s", "unknown atom %(\\x0a)s"),
        ("%(\u{1b}[2J)s", "unknown atom %(\\x1b[2J)s"),
    ] {
        let err = Format::parse(bad).expect_err(bad);
        assert!(err.contains(said), "{bad:?}: {err}");
    }
    assert_eq!(Format::parse("json").unwrap().time(), Time::Iso);
    assert_eq!(Format::parse("common").unwrap().time(), Time::Common);
    assert_eq!(Format::parse("%(s)s").unwrap().time(), Time::None);
    assert!(!Format::parse("%(s)s").unwrap().needs_client());
    assert!(Format::parse("json").unwrap().needs_client());
}

#[test]
fn times_as_logs_write_them() {
    assert_eq!(clf(1_796_604_244, 0), "[07/Dec/2026:00:44:04 +0000]");
    assert_eq!(clf(1_796_604_244, 19_800), "[07/Dec/2026:06:14:04 +0530]");
    assert_eq!(clf(1_796_604_244, -28_800), "[06/Dec/2026:16:44:04 -0800]");
    assert_eq!(iso(1_796_604_244_123, 0), "2026-12-07T00:44:04.123+00:00");
    assert_eq!(
        iso(1_796_604_244_007, -12_600),
        "2026-12-06T21:14:04.007-03:30"
    );
    assert_eq!(clf(-5, 0), "[01/Jan/1970:00:00:00 +0000]");
    // (TZ=ABC-5:30:45: Python writes the seconds too)
    assert_eq!(clf(1_796_604_244, 19_845), "[07/Dec/2026:06:14:49 +053045]");
    assert_eq!(
        iso(1_796_604_244_000, -19_845),
        "2026-12-06T19:13:19.000-05:30:45"
    );
}
