"""HTTPS for the page: browsers only give a page the microphone on HTTPS (or on localhost).

`ensure_certificate` returns the certificate and key to serve with: the user's own when
given, otherwise a self-signed one made once in the data folder. It is made again only when
it is about to expire or no longer names this machine (a new hostname or LAN address).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import secrets
import socket
from pathlib import Path

logger = logging.getLogger(__name__)

CERT_NAME = "selfsigned-cert.pem"
KEY_NAME = "selfsigned-key.pem"
VALID_DAYS = 825
"""The longest validity that Apple and Chrome accept for a certificate a user chose to trust."""
RENEW_DAYS = 30


def ensure_certificate(data_dir: Path, certfile: str | None, keyfile: str | None) -> tuple[Path, Path]:
    """The (certificate, key) PEM files to serve HTTPS with."""
    if certfile or keyfile:
        return _given(certfile, keyfile)
    cert_path, key_path = Path(data_dir) / "tls" / CERT_NAME, Path(data_dir) / "tls" / KEY_NAME
    names, addresses = machine_names()
    if not _still_good(cert_path, key_path, names, addresses):
        _create(cert_path, key_path, names, addresses)
        logger.info("Made a self-signed certificate for %s in %s", ", ".join(names + addresses), cert_path.parent)
    return cert_path, key_path


def _given(certfile: str | None, keyfile: str | None) -> tuple[Path, Path]:
    if not certfile or not keyfile:
        raise ValueError("Give both --ssl-certfile and --ssl-keyfile, or neither for a self-signed certificate.")
    cert_path, key_path = Path(certfile).expanduser(), Path(keyfile).expanduser()
    for path in (cert_path, key_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: check --ssl-certfile / --ssl-keyfile.")
    return cert_path, key_path


def machine_names() -> tuple[list[str], list[str]]:
    """DNS names and IP addresses a browser on the LAN may use to reach this machine."""
    names = ["localhost"]
    for name in (socket.gethostname(), socket.getfqdn()):
        if name and name not in names:
            names.append(name)
    addresses = ["127.0.0.1", "::1"]
    candidates: list[str] = []
    try:
        candidates += socket.gethostbyname_ex(socket.gethostname())[2]
    except OSError:
        pass
    try:  # the address of the default route; UDP connect sends nothing
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            candidates.append(probe.getsockname()[0])
    except OSError:
        pass
    for address in candidates:
        if address not in addresses and not address.startswith("0."):
            addresses.append(address)
    return names, addresses


def _still_good(cert_path: Path, key_path: Path, names: list[str], addresses: list[str]) -> bool:
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError, x509.ExtensionNotFound):
        logger.warning("%s or its key is not readable: making a new pair", cert_path)
        return False
    if key.public_key() != cert.public_key():  # a pair half-written by an interrupted start
        return False
    if cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) < dt.timedelta(days=RENEW_DAYS):
        return False
    covered = set(san.get_values_for_type(x509.DNSName)) | {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    return set(names) | set(addresses) <= covered


def _create(cert_path: Path, key_path: Path, names: list[str], addresses: list[str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, names[-1][:64]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Korean Voice Q&A (self-signed)"),
    ])
    now = dt.datetime.now(dt.timezone.utc)
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_atomic(key_path, key_pem, mode=0o600)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write a new file beside `path`, then rename it over `path`. The new file has a random name
    and is opened with O_EXCL|O_NOFOLLOW: a file or symlink planted there makes it fail rather
    than write the key somewhere else."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
