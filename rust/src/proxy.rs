//! The HAProxy PROXY protocol (versions 1 and 2): the header a load balancer sends
//! before the client's bytes, saying who the client is.
//!
//! Strict and bounded: a version 1 line is at most 107 bytes, a version 2 header at
//! most [`MAX_V2`]; anything that is not exactly a header of an accepted version is
//! an error (the connection is then closed, never read as HTTP).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The 12 bytes every version 2 header starts with.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest version 1 line, CRLF included (the specification's bound).
pub const MAX_V1: usize = 107;
/// The longest version 2 header accepted: addresses and a few TLVs.
pub const MAX_V2: usize = 16 + 2048;

/// Which versions a listener accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    V1,
    V2,
    Any,
}

/// What a complete header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Header {
    /// The proxy speaks for itself (a health check): the connection's own addresses.
    Local,
    /// The client's address and port, and the address it connected to.
    Proxied {
        source: (IpAddr, u16),
        destination: (IpAddr, u16),
    },
}

/// Why a header is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// Not a PROXY header of an accepted version.
    NotProxy,
    /// A version 1 line that breaks the grammar.
    BadV1,
    /// A version 2 header that breaks the format.
    BadV2,
    /// Longer than the bound.
    TooLong,
}

impl ProxyError {
    pub fn reason(self) -> &'static str {
        match self {
            ProxyError::NotProxy => "the connection did not start with a PROXY header",
            ProxyError::BadV1 => "malformed PROXY protocol v1 header",
            ProxyError::BadV2 => "malformed PROXY protocol v2 header",
            ProxyError::TooLong => "PROXY protocol header too long",
        }
    }
}

/// Parses the header at the start of `buf`: `Ok(None)` while it is incomplete, else
/// the header and how many bytes it took.
pub fn parse(buf: &[u8], accept: Accept) -> Result<Option<(Header, usize)>, ProxyError> {
    let v1 = accept != Accept::V2;
    let v2 = accept != Accept::V1;
    let n = buf.len().min(V2_SIGNATURE.len());
    if v2 && buf[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() {
            Ok(None)
        } else {
            parse_v2(buf)
        };
    }
    let n = buf.len().min(6);
    if v1 && buf[..n] == b"PROXY "[..n] {
        return if n < 6 { Ok(None) } else { parse_v1(buf) };
    }
    Err(ProxyError::NotProxy)
}

fn parse_v1(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    let window = &buf[..buf.len().min(MAX_V1)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= MAX_V1 {
            return Err(ProxyError::TooLong);
        }
        if window.contains(&b'\n') || window.contains(&b'\r') && !window.ends_with(b"\r") {
            return Err(ProxyError::BadV1);
        }
        return Ok(None);
    };
    let line = std::str::from_utf8(&buf[6..end]).map_err(|_| ProxyError::BadV1)?;
    let parts: Vec<&str> = line.split(' ').collect();
    let header = match parts.as_slice() {
        ["UNKNOWN", ..] => Header::Local,
        [family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let v6 = *family == "TCP6";
            Header::Proxied {
                source: (ip(src, v6)?, port(sport)?),
                destination: (ip(dst, v6)?, port(dport)?),
            }
        }
        _ => return Err(ProxyError::BadV1),
    };
    Ok(Some((header, end + 2)))
}

fn ip(text: &str, v6: bool) -> Result<IpAddr, ProxyError> {
    let addr = if v6 {
        IpAddr::V6(text.parse::<Ipv6Addr>().map_err(|_| ProxyError::BadV1)?)
    } else {
        IpAddr::V4(text.parse::<Ipv4Addr>().map_err(|_| ProxyError::BadV1)?)
    };
    Ok(addr)
}

fn port(text: &str) -> Result<u16, ProxyError> {
    let ok = !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !ok {
        return Err(ProxyError::BadV1);
    }
    text.parse::<u16>().map_err(|_| ProxyError::BadV1)
}

fn parse_v2(buf: &[u8]) -> Result<Option<(Header, usize)>, ProxyError> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 || command > 1 {
        return Err(ProxyError::BadV2);
    }
    let length = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = 16 + length;
    if total > MAX_V2 {
        return Err(ProxyError::TooLong);
    }
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[16..total];
    if command == 0 {
        return Ok(Some((Header::Local, total)));
    }
    let (family, transport) = (buf[13] >> 4, buf[13] & 0x0f);
    if transport > 2 {
        return Err(ProxyError::BadV2);
    }
    let header = match family {
        // UNSPEC or UNIX: nothing an IP peer can be replaced with
        0 | 3 => Header::Local,
        1 if body.len() >= 12 => {
            let src = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let dst = Ipv4Addr::new(body[4], body[5], body[6], body[7]);
            Header::Proxied {
                source: (IpAddr::V4(src), u16::from_be_bytes([body[8], body[9]])),
                destination: (IpAddr::V4(dst), u16::from_be_bytes([body[10], body[11]])),
            }
        }
        2 if body.len() >= 36 => {
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&body[..16]);
            dst.copy_from_slice(&body[16..32]);
            Header::Proxied {
                source: (
                    IpAddr::V6(Ipv6Addr::from(src)),
                    u16::from_be_bytes([body[32], body[33]]),
                ),
                destination: (
                    IpAddr::V6(Ipv6Addr::from(dst)),
                    u16::from_be_bytes([body[34], body[35]]),
                ),
            }
        }
        _ => return Err(ProxyError::BadV2),
    };
    Ok(Some((header, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4], p: u16) -> (IpAddr, u16) {
        (IpAddr::V4(Ipv4Addr::from(a)), p)
    }

    #[test]
    fn version_1() {
        let line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n";
        let (header, used) = parse(line, Accept::Any).unwrap().unwrap();
        assert_eq!(used, 45);
        assert_eq!(
            header,
            Header::Proxied {
                source: v4([192, 0, 2, 1], 56324),
                destination: v4([198, 51, 100, 2], 443)
            }
        );
        let six = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n";
        assert!(matches!(
            parse(six, Accept::V1),
            Ok(Some((Header::Proxied { .. }, 40)))
        ));
        let unknown = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
        assert_eq!(
            parse(unknown, Accept::V1),
            Ok(Some((Header::Local, unknown.len())))
        );
    }

    #[test]
    fn version_1_incomplete_at_every_split() {
        let line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
        for i in 0..line.len() {
            assert_eq!(parse(&line[..i], Accept::Any), Ok(None), "split at {i}");
        }
    }

    #[test]
    fn version_1_refusals() {
        for bad in [
            &b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n"[..],
            b"PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n",
            b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
            b"PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 01 2\r\n",
            b"PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n",
        ] {
            assert!(
                parse(bad, Accept::Any).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b"PROXY ".as_slice(), &[b'1'; 120]].concat();
        assert_eq!(parse(&long, Accept::V1), Err(ProxyError::TooLong));
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\n", Accept::Any),
            Err(ProxyError::NotProxy)
        );
        let v1 = b"PROXY UNKNOWN\r\n";
        assert_eq!(parse(v1, Accept::V2), Err(ProxyError::NotProxy));
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn version_2() {
        let body = [
            192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb, 9, 9, 9,
        ];
        let header = v2(1, 0x11, &body);
        let (got, used) = parse(&header, Accept::V2).unwrap().unwrap();
        assert_eq!(used, header.len()); // the TLV bytes after the addresses are skipped
        assert_eq!(
            got,
            Header::Proxied {
                source: v4([192, 0, 2, 1], 56324),
                destination: v4([198, 51, 100, 2], 443)
            }
        );
        for i in 0..header.len() {
            assert_eq!(parse(&header[..i], Accept::Any), Ok(None), "split at {i}");
        }
        let local = v2(0, 0x00, &[]);
        assert_eq!(parse(&local, Accept::Any), Ok(Some((Header::Local, 16))));
        let mut six = vec![0u8; 36];
        six[15] = 1;
        six[31] = 2;
        assert!(matches!(
            parse(&v2(1, 0x21, &six), Accept::Any),
            Ok(Some((Header::Proxied { .. }, 52)))
        ));
    }

    #[test]
    fn version_2_refusals() {
        let mut bad_version = v2(1, 0x11, &[0; 12]);
        bad_version[12] = 0x31;
        assert_eq!(parse(&bad_version, Accept::Any), Err(ProxyError::BadV2));
        assert_eq!(
            parse(&v2(2, 0x11, &[0; 12]), Accept::Any),
            Err(ProxyError::BadV2)
        );
        assert_eq!(
            parse(&v2(1, 0x11, &[0; 11]), Accept::Any),
            Err(ProxyError::BadV2)
        );
        assert_eq!(
            parse(&v2(1, 0x41, &[0; 12]), Accept::Any),
            Err(ProxyError::BadV2)
        );
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(parse(&huge, Accept::Any), Err(ProxyError::TooLong));
        assert_eq!(
            parse(&v2(1, 0x11, &[0; 12]), Accept::V1),
            Err(ProxyError::NotProxy)
        );
    }
}
