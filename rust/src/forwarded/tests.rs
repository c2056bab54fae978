use super::*;
use crate::h1::Limits;

fn head(fields: &str) -> RequestHead {
    let raw = format!("GET / HTTP/1.1\r\nHost: example.com\r\n{fields}\r\n");
    RequestHead::parse(raw.into_bytes(), &Limits::default()).unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// 127.0.0.1 and 10.0.0.0/8, as the interface tests configure them
fn local() -> Proxies {
    Proxies::new(false, [(ip("127.0.0.1"), 32), (ip("10.0.0.0"), 8)])
}

/// (client as text or "peer", scheme, host)
fn said(fields: &str, family: Family) -> (String, Option<&'static str>, Option<String>) {
    let h = head(fields);
    let s = resolve(&h, family, &local());
    let client = match s.client {
        Client::Peer => "peer".to_string(),
        Client::Address(ip, port) => format!("{ip} {port}"),
    };
    let host = s.host.map(|h| String::from_utf8(h.to_vec()).unwrap());
    (client, s.scheme, host)
}

#[test]
fn x_forwarded_for_the_rightmost_untrusted_address_is_the_client() {
    fn x(fields: &str) -> String {
        said(fields, Family::XForwarded).0
    }
    assert_eq!(x(""), "peer");
    assert_eq!(x("X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n"), "2.2.2.2 0");
    assert_eq!(
        x("X-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.1.2.3\r\n"),
        "2.2.2.2 0"
    );
    assert_eq!(
        x("X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 10.0.0.1\r\n"),
        "1.1.1.1 0"
    );
    // every hop trusted: the leftmost is the client
    assert_eq!(x("X-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n"), "10.0.0.1 0");
    assert_eq!(x("X-Forwarded-For: [2001:db8::1]\r\n"), "2001:db8::1 0");
    assert_eq!(x("X-Forwarded-For: 192.0.2.7:4711\r\n"), "192.0.2.7 4711");
    assert_eq!(
        x("X-Forwarded-For: \"[2001:db8::1]:80\"\r\n"),
        "2001:db8::1 80"
    );
    // what the client wrote itself cannot pass as an address: the chain is broken
    for broken in [
        "<script>",
        "1.1.1.1, nonsense",
        "unknown",
        "_hidden",
        "1.2.3.4:",
        "1.2.3.4:65536",
        "1.2.3.4:99999999999999999999",
        "[::1]x",
        "01.2.3.4",
        "1.2.3",
        "fe80::1%eth0",
        "1.2.3.4:8²",
        "1.2.3.4, 10.0.0.1:http",
    ] {
        assert_eq!(
            x(&format!("X-Forwarded-For: {broken}\r\n")),
            "peer",
            "{broken}"
        );
    }
    // a broken entry left of the first untrusted one is never reached
    assert_eq!(x("X-Forwarded-For: nonsense, 2.2.2.2\r\n"), "2.2.2.2 0");
    assert_eq!(x("X-Forwarded-For: 1.2.3.4:0065535\r\n"), "1.2.3.4 65535");
}

#[test]
fn x_forwarded_proto_and_host_are_the_nearest_proxys() {
    let x = |f| said(f, Family::XForwarded);
    assert_eq!(
        x("X-Forwarded-Proto: https\r\nX-Forwarded-Host: public.test\r\n"),
        ("peer".into(), Some("https"), Some("public.test".into()))
    );
    assert_eq!(
        x("X-Forwarded-For: 203.0.113.5\r\nX-Forwarded-Proto: HTTPS\r\n"),
        ("203.0.113.5 0".into(), Some("https"), None)
    );
    // the last of a list is the nearest proxy's
    assert_eq!(
        x("X-Forwarded-Proto: http, https\r\nX-Forwarded-Host: a.test,b.test:8443\r\n"),
        ("peer".into(), Some("https"), Some("b.test:8443".into()))
    );
    // neither is valid
    assert_eq!(
        x("X-Forwarded-Proto: gopher\r\nX-Forwarded-Host: a b\r\n"),
        ("peer".into(), None, None)
    );
    assert_eq!(
        x("X-Forwarded-For: nonsense\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: h\r\n"),
        ("peer".into(), Some("https"), Some("h".into()))
    );
    // the other family is a client's own
    assert_eq!(
        x("Forwarded: for=6.6.6.6;proto=https;host=evil.example\r\n"),
        ("peer".into(), None, None)
    );
}

#[test]
fn rfc7239_elements() {
    let f = |s| said(s, Family::Forwarded);
    assert_eq!(
        f("Forwarded: for=198.51.100.7;proto=https;host=shop.test, for=10.0.0.9\r\n"),
        (
            "198.51.100.7 0".into(),
            Some("https"),
            Some("shop.test".into())
        )
    );
    assert_eq!(
        f("Forwarded: for=\"[2001:db8::7]:4711\";proto=https\r\n"),
        ("2001:db8::7 4711".into(), Some("https"), None)
    );
    assert_eq!(
        f("Forwarded: for=unknown;proto=https\r\n"),
        ("peer".into(), Some("https"), None)
    );
    // RFC 7239 §4's examples
    assert_eq!(f("Forwarded: for=\"_gazonk\"\r\n").0, "peer");
    assert_eq!(
        f("Forwarded: For=\"[2001:db8:cafe::17]:4711\"\r\n").0,
        "2001:db8:cafe::17 4711"
    );
    assert_eq!(
        f("Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43\r\n"),
        ("192.0.2.60 0".into(), Some("http"), None)
    );
    assert_eq!(
        f("Forwarded: for=192.0.2.43, for=198.51.100.17\r\n").0,
        "198.51.100.17 0"
    );
    // a quoted value holds a comma; the first of a name given twice counts
    assert_eq!(
        f("Forwarded: for=\"1.2.3.4\";host=\"a,b\";for=9.9.9.9\r\n"),
        ("1.2.3.4 0".into(), None, None)
    );
    // an element without for= breaks the chain; an empty element is no element
    assert_eq!(
        f("Forwarded: proto=https\r\n"),
        ("peer".into(), Some("https"), None)
    );
    assert_eq!(f("Forwarded: for=1.2.3.4,,\r\n").0, "1.2.3.4 0");
    // several fields are one list; an unterminated quote runs to the end
    assert_eq!(
        f("Forwarded: for=1.1.1.1\r\nForwarded: for=10.0.0.1\r\n").0,
        "1.1.1.1 0"
    );
    assert_eq!(f("Forwarded: for=\"1.2.3.4\r\n").0, "1.2.3.4 0");
    // the other family is a client's own
    assert_eq!(
        f("X-Forwarded-For: 6.6.6.6\r\n"),
        ("peer".into(), None, None)
    );
}

#[test]
fn trust_compares_a_mapped_peer_as_ipv4() {
    let p = Proxies::new(false, [(ip("127.0.0.0"), 8), (ip("2001:db8::"), 32)]);
    assert!(p.trusts(ip("127.1.2.3")) && p.trusts(ip("::ffff:127.0.0.1")));
    assert!(p.trusts(ip("2001:db8:1::9")) && !p.trusts(ip("2001:db9::1")));
    assert!(!p.trusts(ip("128.0.0.1")) && !p.trusts(ip("::1")));
    // a mapped network is the IPv4 network it names
    let mapped = Proxies::new(false, [(ip("::ffff:10.0.0.0"), 104)]);
    assert!(mapped.trusts(ip("10.9.9.9")) && mapped.trusts(ip("::ffff:10.1.1.1")));
    assert!(!mapped.trusts(ip("11.0.0.1")));
    // prefix 0 is everything of its family; everyone is everyone
    let all4 = Proxies::new(false, [(ip("0.0.0.0"), 0)]);
    assert!(all4.trusts(ip("8.8.8.8")) && !all4.trusts(ip("::2")));
    assert!(Proxies::new(true, []).trusts(ip("::2")));
    assert!(!Proxies::new(false, []).trusts(ip("127.0.0.1")));
}

#[test]
fn a_peer_name_may_carry_its_interface() {
    assert_eq!(peer_address("fe80::1%eth0"), Some(ip("fe80::1")));
    assert_eq!(peer_address("192.0.2.1"), Some(ip("192.0.2.1")));
    assert_eq!(peer_address("garbage"), None);
}

#[test]
fn the_address_text_is_inet_ntops() {
    assert_eq!(ip("::ffff:1.2.3.4").to_string(), "::ffff:1.2.3.4");
    assert_eq!(ip("2001:DB8:0:0:0:0:0:1").to_string(), "2001:db8::1");
}
