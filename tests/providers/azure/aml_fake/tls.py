"""The fake's TLS: a self-signed certificate for 127.0.0.1 (and localhost), and the CA bundle
clients trust it through (certifi's roots plus that certificate, so pointing
REQUESTS_CA_BUNDLE at it distrusts nothing else).

The SDK refuses bearer tokens over plain http for models, endpoints and deployments, which is
why the fake serves https at all. Made with the `cryptography` package when installed, else
with the `openssl` command.
"""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from pathlib import Path


def _with_cryptography(cert: Path, key: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()),
                       critical=False)
        .sign(private, hashes.SHA256()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))


def _with_openssl(cert: Path, key: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "7", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert),
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-addext", "basicConstraints=critical,CA:TRUE"],
        check=True, capture_output=True)


def make_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """Write `cert.pem`, `key.pem` and `ca-bundle.pem` (certifi's roots + cert) under
    `directory`; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, bundle = directory / "cert.pem", directory / "key.pem", directory / "ca-bundle.pem"
    try:
        _with_cryptography(cert, key)
    except ImportError:
        _with_openssl(cert, key)
    roots = ""
    try:
        import certifi

        roots = Path(certifi.where()).read_text()
    except ImportError:
        pass
    bundle.write_text(roots + ("\n" if roots and not roots.endswith("\n") else "") + cert.read_text())
    return cert, key, bundle
