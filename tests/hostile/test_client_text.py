"""Text from clients is escaped wherever it is written: the access log (every atom of
every format), the mTLS subject handed to applications (RFC 4514), an exception's
message in an HTML error page; and a UNIX socket never exists with wider
permissions than --uds-mode allows."""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import socket
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers import free_port
from tremolo import sockets

from .server import Server, serve, wait_for

# -- the access log ------------------------------------------------------------------

ECHO = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    custom = dict(scope["headers"]).get(b"x-custom", b"-")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"x-echo", custom)]})
    await send({"type": "http.response.body", "body": b"ok"})
'''

#: C1 bytes (0x9b is CSI, ESC [ to many terminals), a quote, a backslash, a tab and
#: obs-text: what a field value may hold
NASTY = b'x \x9b2J \x85 "quoted" back\\slash\ttab \xff end'
#: a Basic-auth user may hold anything: a whole forged line, ESC, C1, U+2028, RLO
USERS = [
    b'mallory\n127.0.0.1 - admin [01/Jan/2026:00:00:00 +0000] "GET /admin HTTP/1.1" 200 1'
    b'\x1b[2J\x1b]0;owned\x07 \xc2\x85 "q" \\',
    "eve\u2028line\u202eevil".encode(),
    b"tab\there\x7fdel",
]
ALL_ATOMS = ('%(h)s %(l)s %(u)s %(t)s "%(r)s" %(m)s %(U)s %(q)s %(H)s %(s)s %(b)s %(B)s '
             '%(D)s %(M)s %(L)s "%(f)s" "%(a)s" %(p)s "%({x-custom}i)s" "%({x-echo}o)s"')
QUOTED = r'"((?:[^"\\]|\\.)*)"'
COMMON = r'(\S+) (\S+) (\S+) \[([^\]]+)\] ' + QUOTED + r' (\d{3}) (\d+|-)'
COMBINED = COMMON + " " + QUOTED + " " + QUOTED
PATTERNS = {"common": COMMON, "combined": COMBINED,
            "all-atoms": r"\S+ - (\S+) \[[^\]]+\] " + QUOTED + r" GET (\S+) (\S*) HTTP/1.1 "
                         r"200 2 2 \d+ \d+ [\d.]+ " + QUOTED + " " + QUOTED + r" <\d+> "
                         + QUOTED + " " + QUOTED}


def unescape(text: str) -> str:
    return re.sub(r'\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|["\\])',
                  lambda m: m[1] if len(m[1]) == 1 else chr(int(m[1][1:], 16)), text)


def requests() -> list[tuple[bytes, str, str]]:
    """(raw request, the user as sent (up to a colon: the password's), the target as
    sent)."""
    out = []
    targets = [b'/a"b\\c%22d?q="x\\y', b"/plain", b"/q?ua=1"]
    for user, target in zip(USERS, targets, strict=True):
        token = base64.b64encode(user + b":secret")
        out.append((b"GET " + target + b" HTTP/1.1\r\nHost: example.com\r\n"
                    b"Authorization: Basic " + token + b"\r\nUser-Agent: " + NASTY +
                    b"\r\nReferer: " + NASTY + b"\r\nX-Custom: " + NASTY +
                    b"\r\nConnection: close\r\n\r\n",
                    user.split(b":")[0].decode("utf-8", "replace"), target.decode("latin-1")))
    return out


def ask(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize("fmt", ["common", "combined", "json", "default", "all-atoms"])
def test_access_log_escapes_every_atom(tmp_path: Path, fmt: str) -> None:
    sent = requests()
    with serve(tmp_path, ECHO, "--interface", "asgi", "--access-log",
               "--access-log-format", ALL_ATOMS if fmt == "all-atoms" else fmt,
               env={"PYTHONIOENCODING": "utf-8"}) as server:
        # the master says it serves once its workers listen, now and then after the
        # port answers (that line would be counted as an access line)
        wait_for(lambda: b"press CTRL+C to quit" in server.log.read_bytes(),
                 "the serving line", timeout=5)
        start = len(server.log.read_bytes())
        for raw, _, _ in sent:
            assert ask(server.port, raw).startswith(b"HTTP/1.1 200 ")

        def lines() -> list[str]:
            return server.log.read_bytes()[start:].decode("utf-8").splitlines()
        wait_for(lambda: len(lines()) >= len(sent), "the access lines", timeout=5)
        time.sleep(0.2)  # anything more would be written by now
        written = lines()
    assert len(written) == len(sent), written  # one line per request, none forged
    for line in written:
        assert line.isprintable(), f"a control character reached the log: {line!r}"
    for line, (_, user, target) in zip(written, sent, strict=True):
        nasty = NASTY.decode("latin-1")
        if fmt == "json":
            entry = json.loads(line)
            assert entry["target"] == target and entry["user_agent"] == nasty
            assert entry["referer"] == nasty
            continue
        if fmt == "default":
            m = re.fullmatch(r"\S+ \[[^]]+\] " + QUOTED + r" 200 2 \d+ms", line)
            assert m and unescape(m[1]) == f"GET {target} HTTP/1.1", line
            continue
        m = re.fullmatch(PATTERNS[fmt], line)
        assert m, f"not one {fmt} line: {line!r}"
        # escaped, nothing lost: each field reads back as the client sent it
        if fmt == "all-atoms":
            path, _, query = target.partition("?")
            assert [unescape(g) for g in m.groups()] == [
                user, f"GET {target} HTTP/1.1", path, query, nasty, nasty, nasty, nasty]
        else:
            assert unescape(m[3]) == user and unescape(m[5]) == f"GET {target} HTTP/1.1"
            if fmt == "combined":
                assert unescape(m[8]) == nasty and unescape(m[9]) == nasty


# -- the mTLS subject -----------------------------------------------------------------

SUBJECT_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    name = scope["extensions"]["tls"]["client_cert_name"]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": name.encode()})
'''

A = x509.NameAttribute
SUBJECTS = {
    # reads as CN=alice,O=Admins,O=Users unescaped: an app checking the start of the
    # name takes it for an admin's
    "comma": (x509.Name([A(NameOID.ORGANIZATION_NAME, "Users"),
                         A(NameOID.COMMON_NAME, "alice,O=Admins")]),
              r"CN=alice\,O=Admins,O=Users"),
    "specials": (x509.Name([A(NameOID.COMMON_NAME, '#a+b"c\\d<e>f;g\x00h ')]),
                 r'CN=\#a\+b\"c\\d\<e\>f\;g\00h\ '),
    "leading-space": (x509.Name([A(NameOID.COMMON_NAME, " bob")]), r"CN=\ bob"),
    "multi-valued": (x509.Name([x509.RelativeDistinguishedName([
                         A(NameOID.COMMON_NAME, "carol"), A(NameOID.USER_ID, "c+1")])]),
                     None),
    "control": (x509.Name([A(NameOID.COMMON_NAME, "dave\x1b[2J\u2028x")]),
                r"CN=dave\1B[2J\E2\80\A8x"),
}


def _issue(ca_pem: Path, ca_key: Path, subject: x509.Name, out: Path) -> tuple[Path, Path]:
    ca = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    signer = serialization.load_pem_private_key(ca_key.read_bytes(), None)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(signer, hashes.SHA256()))
    out.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return out.with_suffix(".pem"), out.with_suffix(".key")


@pytest.fixture(scope="module")
def mtls(pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("mtls")
    with serve(tmp, SUBJECT_APP, "--interface", "asgi", "--ssl-certfile", str(pki["server"]),
               "--ssl-keyfile", str(pki["server_key"]), "--ssl-ca-certs", str(pki["ca"]),
               "--ssl-cert-reqs", "required") as server:
        yield server


@pytest.mark.parametrize("case", list(SUBJECTS))
def test_mtls_subject_is_rfc4514_escaped(mtls: Server, pki: dict[str, Path],
                                         tmp_path: Path, case: str) -> None:
    subject, expected = SUBJECTS[case]
    cert, key = _issue(pki["ca"], pki["ca"].with_suffix(".key"), subject, tmp_path / case)
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    ctx.load_cert_chain(str(cert), str(key))
    with socket.create_connection(("127.0.0.1", mtls.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), data
    name = body.decode()
    if expected is None:  # the values of one RDN joined by '+', in either order
        assert name in (r"CN=carol+UID=c\+1", r"UID=c\+1+CN=carol"), name
    else:
        assert name == expected
    if case != "control":  # cryptography escapes as RFC 4514 says (no control but NUL)
        assert name == subject.rfc4514_string() or expected is None


# -- exception text in an HTML page -------------------------------------------------

ERRORS = '''
from tremolo import Tremolo
from tremolo.exceptions import BadRequest, NotFound

app = Tremolo()


@app.route("/user")
async def user(request, **server):
    name = request.query["name"][0]
    raise NotFound(f"no user named {name}")


@app.route("/plain")
async def plain(request, **server):
    raise BadRequest(request.query["name"][0], content_type="text/plain; charset=utf-8")
'''


def test_exception_message_is_html_escaped(tmp_path: Path) -> None:
    script = "<script>alert(document.cookie)</script>&\"'"
    query = "?name=%3Cscript%3Ealert(document.cookie)%3C/script%3E%26%22'"
    with serve(tmp_path, ERRORS) as server:
        answer = ask(server.port, b"GET /user" + query.encode() + b" HTTP/1.1\r\n"
                     b"Host: x\r\nConnection: close\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 404 ") and b"text/html" in head
        assert b"<script>" not in body
        assert body.decode() == "no user named " + (
            "&lt;script&gt;alert(document.cookie)&lt;/script&gt;&amp;&quot;&#x27;")
        # text/plain is no page: the message is sent as it is
        answer = ask(server.port, b"GET /plain" + query.encode() + b" HTTP/1.1\r\n"
                     b"Host: x\r\nConnection: close\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 ") and b"text/plain" in head
        assert body.decode() == script


# -- --uds-mode ---------------------------------------------------------------------


@pytest.fixture
def umask() -> Iterator[int]:
    """A wide umask (022), so that a socket created with it is readable by others;
    the test process's own is restored after."""
    old = os.umask(0o022)
    try:
        yield 0o022
    finally:
        os.umask(old)


def _modes_at_bind(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[int]:
    """The socket file's mode as bind() returns, before anything else can run."""
    seen: list[int] = []
    real = socket.socket.bind

    def bind(self: socket.socket, address: object) -> None:
        real(self, address)  # type: ignore[arg-type]
        if self.family == socket.AF_UNIX:
            seen.append(stat.S_IMODE(os.stat(path).st_mode))
    monkeypatch.setattr(socket.socket, "bind", bind)
    return seen


@pytest.mark.parametrize("mode", [0o600, 0o660, 0o640, 0o000], ids=oct)
def test_uds_mode_holds_from_creation(tmp_path: Path, umask: int,
                                      monkeypatch: pytest.MonkeyPatch, mode: int) -> None:
    path = tmp_path / "app.sock"
    seen = _modes_at_bind(monkeypatch, path)
    sock = sockets.bind_unix(str(path), 16, mode)
    try:
        assert seen, "bind was not seen"
        assert seen[0] & ~mode == 0, f"created {oct(seen[0])}, wider than {oct(mode)}"
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
        assert os.umask(umask) == umask  # the process's umask is as it was
    finally:
        sock.close()


def test_uds_mode_without_a_socket_mode_uses_the_umask(
        tmp_path: Path, umask: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a socket has no mode of its own (fchmod fails: not Linux), the umask
    is narrowed around bind, and restored."""
    path = tmp_path / "app.sock"
    seen = _modes_at_bind(monkeypatch, path)
    umasks: list[int] = []

    def fchmod(fd: int, mode: int) -> None:
        current = os.umask(0)
        os.umask(current)
        umasks.append(current)
        raise OSError(22, "Invalid argument")
    monkeypatch.setattr(os, "fchmod", fchmod)
    sock = sockets.bind_unix(str(path), 16, 0o600)
    try:
        assert umasks == [umask] and seen == [0o600]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert os.umask(umask) == umask
    finally:
        sock.close()


def test_uds_mode_from_the_command_line(tmp_path: Path) -> None:
    """A real server with umask 0 (a socket anyone could use): the file is 0o600, and
    serves."""
    path = tmp_path / "app.sock"
    port = free_port()
    old = os.umask(0)
    try:
        with serve(tmp_path, ERRORS, "--bind", f"127.0.0.1:{port},unix:{path}",
                   "--uds-mode", "600", port=port) as server:
            os.umask(old)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(path))
                s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert s.recv(100).startswith(b"HTTP/1.1 404 ")
            assert server.proc.poll() is None
    finally:
        os.umask(old)
