"""What a trusted proxy says about the request it forwards: the client, the scheme
and the host, from `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`,
or from RFC 7239 `Forwarded`: one family, the one the operator names (proxy_headers).
Never both, nor one in the other's absence: a proxy that sets one family passes the
other through from its client as it came, and believing it would let any client
name its own address, scheme and host.

Proxies append: the rightmost entry is the nearest proxy's, the leftmost may be the
client's own invention. So the client is the rightmost address that is not a trusted
proxy, and scheme and host come from that same hop (or the nearest one that says)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Any

Trusted = Callable[[str], bool]


# (ipaddress's parsing was most of a proxied request's cost; behind a proxy the same
# few addresses come again and again. Bounded: a client can name any address.)
@functools.lru_cache(maxsize=1024)
def _address(text: str) -> tuple[str, int] | None:
    """`192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`, `"[2001:db8::1]:80"` -> (ip, port);
    None for anything else (`unknown`, an obfuscated `_name`, garbage)."""
    text = text.strip().strip('"')
    port = "0"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = rest[1:]
        elif rest:
            return None
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host = text
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        return None
    # ASCII digits only: str.isdigit() is true for '²', which int() refuses
    if not (port.isascii() and port.isdigit() and int(port) < 65536):
        return None
    return address, int(port)


def _elements(values: list[bytes]) -> list[dict[str, str]]:
    """RFC 7239 elements, left to right: `for=...;proto=...;host=...`, comma-separated
    (a quoted value may hold a comma)."""
    out: list[dict[str, str]] = []
    for value in values:
        text = value.decode("latin-1")
        element: dict[str, str] = {}
        i, n = 0, len(text)
        while i <= n:
            # one pair: name=token or name="quoted"
            j = i
            while j < n and text[j] not in "=;,":
                j += 1
            name = text[i:j].strip().lower()
            value_text = ""
            if j < n and text[j] == "=":
                j += 1
                if j < n and text[j] == '"':
                    end = text.find('"', j + 1)
                    end = n if end < 0 else end
                    value_text = text[j + 1:end]
                    j = end + 1
                    while j < n and text[j] not in ";,":
                        j += 1
                else:
                    k = j
                    while j < n and text[j] not in ";,":
                        j += 1
                    value_text = text[k:j].strip()
            if name:
                element.setdefault(name, value_text)
            if j >= n or text[j] == ",":
                if element:
                    out.append(element)
                element = {}
            i = j + 1
    return out


def _list(head: Any, name: bytes) -> list[str]:
    return [item.strip() for value in head.get_all(name)
            for item in value.decode("latin-1").split(",") if item.strip()]


def _scheme(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return value if value in ("http", "https") else None


def _host(value: str | None) -> str | None:
    value = (value or "").strip()
    # a host[:port] in ASCII, nothing that could split a field
    if value and value.isascii() and all(c.isalnum() or c in ".-:[]_" for c in value):
        return value
    return None


def forwarded(head: Any, peer: tuple[str, int] | None, trusted: Trusted, rfc7239: bool
              ) -> tuple[tuple[str, int] | None, str | None, str | None]:
    """(client, scheme or None, host or None) a trusted peer's proxy fields give:
    its `Forwarded` field with `rfc7239`, else its X-Forwarded-* fields."""
    if rfc7239:
        hops = [(e.get("for", ""), e) for e in _elements(head.get_all(b"forwarded"))]
        if not hops:
            return peer, None, None
    else:
        protos, hosts = _list(head, b"x-forwarded-proto"), _list(head, b"x-forwarded-host")
        extra = {"proto": protos[-1]} if protos else {}
        if hosts:
            extra["host"] = hosts[-1]
        hops = [(hop, {}) for hop in _list(head, b"x-forwarded-for")]
        if not hops:
            return peer, _scheme(extra.get("proto")), _host(extra.get("host"))
        hops[-1] = (hops[-1][0], extra)  # what the nearest proxy set
    client = peer
    chosen: dict[str, str] = {}
    for text, element in reversed(hops):
        address = _address(text)
        if address is None:
            # a broken chain: nothing of it can be believed
            return peer, _scheme(hops[-1][1].get("proto")), _host(hops[-1][1].get("host"))
        client, chosen = address, element
        if not trusted(address[0]):
            break
    scheme = _scheme(chosen.get("proto")) or _scheme(hops[-1][1].get("proto"))
    host = _host(chosen.get("host")) or _host(hops[-1][1].get("host"))
    return client, scheme, host
