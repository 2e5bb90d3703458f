"""A local certificate authority and server certificates for TLS on loopback.

The device SDK checks the server's host name, so a server certificate carries SAN ``DNS:localhost`` and
``IP:<address>`` for every address it is served on. Keys are written with mode 0600, files atomically.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgegen.common.private import repair_private, write_private

__all__ = ["CertPair", "LocalCA", "ensure_ca", "ensure_server_cert"]

_VALIDITY = _dt.timedelta(days=365)


@dataclass(frozen=True)
class CertPair:
    cert_path: Path
    key_path: Path


def _write_atomic(path: Path, data: bytes) -> None:
    """A certificate (public): atomically, with the umask's mode. Keys go through ``write_private``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """0600 from creation; the folder's mode is the caller's (a state directory is made private by its owner)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, _key_pem(key), private_parent=False)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class LocalCA:
    cert_path: Path
    key_path: Path

    def load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key

    @property
    def pem(self) -> str:
        return self.cert_path.read_text()


def ensure_ca(directory: Path, name: str = "edgegen local CA") -> LocalCA:
    """Create (once) a CA under ``directory`` (ca.pem, ca.key.pem); reuse it when present."""
    directory = Path(directory)
    ca = LocalCA(directory / "ca.pem", directory / "ca.key.pem")
    if ca.cert_path.exists() and ca.key_path.exists():
        repair_private(ca.key_path)
        return ca
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY * 5)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(ca.key_path, key)
    _write_atomic(ca.cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return ca


def ensure_server_cert(
    ca: LocalCA, directory: Path, name: str, hosts: list[str] | tuple[str, ...] = ("localhost", "127.0.0.1")
) -> CertPair:
    """A server cert signed by ``ca`` with a SAN for each host (DNS names and IP addresses).

    Re-issued when the existing one does not cover ``hosts`` or was signed by another CA.
    """
    directory = Path(directory)
    pair = CertPair(directory / f"{name}.pem", directory / f"{name}.key.pem")
    ca_cert, ca_key = ca.load()
    wanted = set(hosts)
    if pair.cert_path.exists() and pair.key_path.exists():
        repair_private(pair.key_path)
        existing = x509.load_pem_x509_certificate(pair.cert_path.read_bytes())
        try:
            san = existing.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            have = {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
                str(v) for v in san.get_values_for_type(x509.IPAddress)
            }
        except x509.ExtensionNotFound:
            have = set()
        if wanted <= have and existing.issuer == ca_cert.subject:
            return pair
    key = _new_key()
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(pair.key_path, key)
    _write_atomic(pair.cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return pair
