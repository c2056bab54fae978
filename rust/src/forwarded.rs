//! What a trusted proxy says about the request it forwards: the client, the scheme
//! and the host, from `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`,
//! or from RFC 7239 `Forwarded`: one family, the one the operator names. Never both,
//! nor one in the other's absence: a proxy that sets one family passes the other
//! through from its client as it came, and believing it would let any client name
//! its own address, scheme and host.
//!
//! Proxies append: the rightmost entry is the nearest proxy's, the leftmost may be
//! the client's own invention. So the client is the rightmost address that is not a
//! trusted proxy, and scheme and host come from that same hop (or the nearest one
//! that says). An entry that is not an address breaks the chain: nothing to its left
//! can be believed, so the client is the connection's peer.

use crate::h1::chars::{list_items, trim_ows};
use crate::h1::RequestHead;
use std::net::IpAddr;

/// Which header family a trusted proxy's word is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `X-Forwarded-For`, `-Proto`, `-Host` (what nginx's usual setup sends).
    XForwarded,
    /// RFC 7239 `Forwarded`.
    Forwarded,
}

/// The trusted proxies: every peer, or the peers in some networks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proxies {
    everyone: bool,
    /// (network address, prefix length); an IPv4-mapped IPv6 network is kept as the
    /// IPv4 network it names, since peers are compared as IPv4 addresses then.
    networks: Vec<(IpAddr, u8)>,
}

impl Proxies {
    /// `networks` as (address, prefix length); a prefix longer than the address is
    /// the whole address.
    pub fn new(everyone: bool, networks: impl IntoIterator<Item = (IpAddr, u8)>) -> Proxies {
        let networks = networks
            .into_iter()
            .map(|(address, prefix)| match address {
                IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                    Some(v4) => (IpAddr::V4(v4), prefix - 96),
                    None => (address, prefix.min(128)),
                },
                IpAddr::V6(_) => (address, prefix),
                IpAddr::V4(_) => (address, prefix.min(32)),
            })
            .collect();
        Proxies { everyone, networks }
    }

    /// Whether a peer at `address` is a trusted proxy. An IPv4 peer of a dual-stack
    /// listener (::ffff:192.0.2.1) is compared as the IPv4 address.
    pub fn trusts(&self, address: IpAddr) -> bool {
        if self.everyone {
            return true;
        }
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        self.networks
            .iter()
            .any(|&(network, prefix)| within(address, network, prefix))
    }
}

fn within(address: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// An address as a peer's name gives it (`getpeername`): an IPv6 link-local peer
/// carries its interface (`fe80::1%eth0`), which is not part of the address.
pub fn peer_address(text: &str) -> Option<IpAddr> {
    let text = text.split_once('%').map_or(text, |(address, _)| address);
    text.parse().ok()
}

/// Who the client is, by the proxies' word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// The connection's own peer: no proxy says otherwise, or what they say is broken.
    Peer,
    Address(IpAddr, u16),
}

/// What the proxies say: the client; the scheme (`"http"` or `"https"`) and the host
/// when one says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Said<'a> {
    pub client: Client,
    pub scheme: Option<&'static str>,
    pub host: Option<&'a [u8]>,
}

impl Said<'_> {
    const NOTHING: Said<'static> = Said {
        client: Client::Peer,
        scheme: None,
        host: None,
    };
}

/// One hop of the chain: the address it names and the scheme and host it was seen with.
#[derive(Clone, Copy, Debug, Default)]
struct Hop<'a> {
    address: &'a [u8],
    proto: Option<&'a [u8]>,
    host: Option<&'a [u8]>,
}

/// What the family's fields of `head` say, with `proxies` the trusted ones.
pub fn resolve<'a>(head: &'a RequestHead, family: Family, proxies: &Proxies) -> Said<'a> {
    let hops = match family {
        Family::Forwarded => elements(head),
        Family::XForwarded => {
            let last = |name| values(head, name).flat_map(list_items).last();
            let (proto, host) = (last(b"x-forwarded-proto"), last(b"x-forwarded-host"));
            let mut hops: Vec<Hop<'a>> = values(head, b"x-forwarded-for")
                .flat_map(list_items)
                .map(|address| Hop {
                    address,
                    ..Hop::default()
                })
                .collect();
            match hops.last_mut() {
                // what the nearest proxy set
                Some(nearest) => (nearest.proto, nearest.host) = (proto, host),
                None => {
                    return Said {
                        scheme: proto.and_then(scheme),
                        host: host.and_then(valid_host),
                        ..Said::NOTHING
                    }
                }
            }
            hops
        }
    };
    let Some(nearest) = hops.last().copied() else {
        return Said::NOTHING;
    };
    let mut client = Client::Peer;
    let mut chosen = Hop::default();
    for hop in hops.iter().rev() {
        let Some((ip, port)) = address(hop.address) else {
            // a broken chain: nothing of it can be believed
            return Said {
                scheme: nearest.proto.and_then(scheme),
                host: nearest.host.and_then(valid_host),
                ..Said::NOTHING
            };
        };
        (client, chosen) = (Client::Address(ip, port), *hop);
        if !proxies.trusts(ip) {
            break;
        }
    }
    Said {
        client,
        scheme: chosen
            .proto
            .and_then(scheme)
            .or_else(|| nearest.proto.and_then(scheme)),
        host: chosen
            .host
            .and_then(valid_host)
            .or_else(|| nearest.host.and_then(valid_host)),
    }
}

fn values<'a>(head: &'a RequestHead, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    head.headers
        .iter()
        .filter(move |h| head.bytes(h.name) == name)
        .map(|h| head.bytes(h.value))
}

/// `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`, `"[2001:db8::1]:80"` -> (ip, port);
/// None for anything else (`unknown`, an obfuscated `_name`, garbage). Port 0 when
/// none is given.
pub fn address(text: &[u8]) -> Option<(IpAddr, u16)> {
    let text = trim_ows(text);
    let text = text.strip_prefix(b"\"").unwrap_or(text);
    let text = text.strip_suffix(b"\"").unwrap_or(text);
    let text = std::str::from_utf8(text).ok()?;
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, rest) = rest.split_once(']')?;
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else if text.matches(':').count() == 1 {
        let (host, port) = text.split_once(':')?;
        (host, Some(port))
    } else {
        (text, None)
    };
    let ip: IpAddr = host.parse().ok()?;
    let port = match port {
        None => 0,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            // (leading zeros allowed; anything past 65535, however written, is not a port)
            let digits = p.trim_start_matches('0');
            if digits.len() > 5 {
                return None;
            }
            digits.parse::<u32>().unwrap_or(0).try_into().ok()?
        }
        Some(_) => return None,
    };
    Some((ip, port))
}

fn scheme(value: &[u8]) -> Option<&'static str> {
    let value = trim_ows(value);
    if value.eq_ignore_ascii_case(b"https") {
        Some("https")
    } else if value.eq_ignore_ascii_case(b"http") {
        Some("http")
    } else {
        None
    }
}

/// A host[:port] in ASCII, nothing that could split a field.
fn valid_host(value: &[u8]) -> Option<&[u8]> {
    let value = trim_ows(value);
    let ok = |b: &u8| b.is_ascii_alphanumeric() || b".-:[]_".contains(b);
    (!value.is_empty() && value.iter().all(ok)).then_some(value)
}

/// The RFC 7239 elements of every `Forwarded` field, left to right: `for=...;
/// proto=...;host=...`, comma-separated (a quoted value may hold a comma). Of a name
/// given twice in an element, the first counts; an element without `for` names no
/// address (and so breaks the chain).
fn elements(head: &RequestHead) -> Vec<Hop<'_>> {
    let mut out = Vec::new();
    for text in values(head, b"forwarded") {
        let (mut hop, mut named) = (Hop::default(), [false; 3]);
        let mut any = false;
        let n = text.len();
        let mut i = 0;
        while i <= n {
            // one pair: name=token or name="quoted"
            let mut j = i;
            while j < n && !b"=;,".contains(&text[j]) {
                j += 1;
            }
            let name = trim_ows(&text[i..j]);
            let mut value: &[u8] = b"";
            if j < n && text[j] == b'=' {
                j += 1;
                if j < n && text[j] == b'"' {
                    let end = text[j + 1..]
                        .iter()
                        .position(|&b| b == b'"')
                        .map_or(n, |p| j + 1 + p);
                    value = &text[j + 1..end];
                    j = end + 1;
                    while j < n && !b";,".contains(&text[j]) {
                        j += 1;
                    }
                } else {
                    let k = j;
                    while j < n && !b";,".contains(&text[j]) {
                        j += 1;
                    }
                    value = trim_ows(&text[k..j]);
                }
            }
            if !name.is_empty() {
                any = true;
                for (slot, key) in [b"for" as &[u8], b"proto", b"host"].iter().enumerate() {
                    if !named[slot] && name.eq_ignore_ascii_case(key) {
                        named[slot] = true;
                        match slot {
                            0 => hop.address = value,
                            1 => hop.proto = Some(value),
                            _ => hop.host = Some(value),
                        }
                    }
                }
            }
            if j >= n || text[j] == b',' {
                if any {
                    out.push(hop);
                }
                (hop, named, any) = (Hop::default(), [false; 3], false);
            }
            i = j + 1;
        }
    }
    out
}

#[cfg(test)]
mod tests;
