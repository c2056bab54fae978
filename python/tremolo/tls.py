"""The TLS server context: from the `ssl` option (certificate, key, password, client
certificates, ciphers) to an SSLContext with Mozilla's intermediate profile."""

from __future__ import annotations

import ssl
from typing import Any

from .config import ConfigError

#: Mozilla's "intermediate" TLS 1.2 cipher suites (TLS 1.3 suites are OpenSSL's, all
#: AEAD): forward secrecy and AEAD only, so no CBC and no RSA key exchange
INTERMEDIATE_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-CHACHA20-POLY1305",
])
CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
             "required": ssl.CERT_REQUIRED}
KEYS = ("cert", "key", "password", "ca_certs", "cert_reqs", "ciphers")
#: the TLS versions as the ASGI tls extension numbers them
VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def check(cfg: Any) -> dict[str, Any]:
    """The `ssl` option's shape (files are loaded by `context`)."""
    if not isinstance(cfg, dict) or not cfg.get("cert"):
        raise ConfigError("ssl must be a dict with 'cert' (and 'key', 'password', "
                          "'ca_certs', 'cert_reqs', 'ciphers')", "ssl")
    unknown = sorted(set(cfg) - set(KEYS))
    if unknown:
        raise ConfigError(f"ssl: unknown keys {', '.join(unknown)} (known: "
                          f"{', '.join(KEYS)})", "ssl")
    reqs = cfg.get("cert_reqs", "none")
    if reqs not in CERT_REQS:
        raise ConfigError(f"ssl: cert_reqs must be none, optional or required, not {reqs!r}", "ssl")
    if reqs != "none" and not cfg.get("ca_certs"):
        raise ConfigError("ssl: cert_reqs optional or required needs ca_certs, the "
                          "authorities client certificates are checked against", "ssl")
    return cfg


def context(cfg: dict[str, Any]) -> ssl.SSLContext:
    """An SSLContext for `cfg`; ConfigError names what does not load."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    try:
        ctx.set_ciphers(cfg.get("ciphers") or INTERMEDIATE_CIPHERS)
    except ssl.SSLError:
        raise ConfigError(f"ssl: no cipher suite in {cfg.get('ciphers')!r} is "
                          "available", "ssl") from None
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        ctx.load_cert_chain(cfg["cert"], cfg.get("key"), cfg.get("password"))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"ssl: cannot load the certificate {cfg['cert']!r} (key "
                          f"{cfg.get('key')!r}): {exc}", "ssl") from exc
    if cfg.get("ca_certs"):
        try:
            ctx.load_verify_locations(cfg["ca_certs"])
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"ssl: cannot load ca_certs {cfg['ca_certs']!r}: {exc}",
                              "ssl") from exc
    ctx.verify_mode = CERT_REQS[cfg.get("cert_reqs", "none")]
    return ctx


def describe(ssl_object: Any) -> dict[str, Any]:
    """The ASGI `tls` extension for one connection: the client certificate (PEM) and
    its subject (RFC 4514), the TLS version."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    name = None
    if der:
        name = distinguished_name((ssl_object.getpeercert() or {}).get("subject", ()))
    version = ssl_object.version() if ssl_object is not None else None
    return {"server_cert": None,
            "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
            "client_cert_name": name, "client_cert_error": None,
            "tls_version": VERSIONS.get(version or ""), "cipher_suite": None}


_RFC4514 = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
            "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
            "domainComponent": "DC", "streetAddress": "STREET", "userId": "UID"}


def distinguished_name(subject: Any) -> str | None:
    """A subject as `getpeercert()` gives it (RDNs from the root down, each a tuple of
    (type, value)) as an RFC 4514 string: the last RDN first, the values of one
    multi-valued RDN joined by `+`, every value escaped. Unescaped, a CN of
    `alice,O=Admins` would read as two attributes and pass for another name."""
    rdns = ["+".join(f"{_RFC4514.get(kind, kind)}={_escape(value)}" for kind, value in rdn)
            for rdn in reversed(subject)]
    return ",".join(rdns) or None


#: RFC 4514 §2.4: escaped anywhere
_SPECIAL = frozenset(',+"\\<>;')


def _escape(value: str) -> str:
    out = []
    last = len(value) - 1
    for i, c in enumerate(value):
        if c in _SPECIAL or (i == 0 and c in " #") or (i == last and c == " "):
            out.append("\\" + c)
        elif not c.isprintable():
            # NUL must be escaped as a hex pair; other controls may be, and are, so
            # that no subject carries a terminal escape or a line break into a log
            out.append("".join(f"\\{b:02X}" for b in c.encode()))
        else:
            out.append(c)
    return "".join(out)
