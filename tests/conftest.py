from __future__ import annotations

import datetime
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tremolo.testing import serve_in_thread

ROOT = Path(__file__).resolve().parents[1]


def load_example(name: str) -> ModuleType:
    """Imports examples/<name>.py as a module (its app.run() is behind __main__)."""
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hello_port() -> Iterator[int]:
    app = load_example("hello").app
    with serve_in_thread(app, shutdown_timeout=2) as (_, port):
        yield port


@pytest.fixture(scope="module")
def stream_port() -> Iterator[int]:
    app = load_example("hello_stream").app
    with serve_in_thread(app, shutdown_timeout=2) as (_, port):
        yield port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return d / "cert.pem", d / "key.pem"


def _issue(name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None = None,
           *, ca: bool = False, ip: bool = False
           ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tremolo Tests"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        import ipaddress
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _write(directory: Path, stem: str, cert: x509.Certificate,
           key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{stem}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return directory / f"{stem}.pem", directory / f"{stem}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test authority; a server certificate for 127.0.0.1 and a client certificate
    it issued; a client certificate of another authority. PEM files by name."""
    d = tmp_path_factory.mktemp("pki")
    ca, ca_key = _issue("Test CA", ca=True)
    other, other_key = _issue("Other CA", ca=True)
    out = {}
    out["ca"], _ = _write(d, "ca", ca, ca_key)
    out["server"], out["server_key"] = _write(
        d, "server", *_issue("127.0.0.1", (ca.subject, ca_key), ip=True))
    out["client"], out["client_key"] = _write(
        d, "client", *_issue("client-one", (ca.subject, ca_key)))
    out["stranger"], out["stranger_key"] = _write(
        d, "stranger", *_issue("stranger", (other.subject, other_key)))
    return out


#: folders whose every test takes seconds (real processes, clocks that run out, floods)
SLOW_FOLDERS = {"hostile", "deploy", "process"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent.name in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)
