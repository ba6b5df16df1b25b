"""A throwaway certificate authority for tests and trials of TLS between nodes: one CA, and a
certificate per node for its IP address or host name (subjectAltName), all as PEM files.

Used by tests/cluster/test_deployment_netns.py; by hand:
`python tools/test_ca.py DIR 10.0.0.1 10.0.0.2` writes DIR/ca.pem and DIR/<name>.{pem,key}.
Never for production: its keys are made on the spot and kept in plain files.
"""

from __future__ import annotations

import datetime
import ipaddress
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 7


@dataclass(frozen=True, slots=True)
class NodeCertificate:
    """The PEM files of one node's certificate and key."""

    certificate: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alternative_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


class TestCA:
    """A CA whose certificate is `directory/ca.pem`; `issue` signs node certificates."""

    __test__ = False  # Not a test class, whatever pytest thinks of its name.

    def __init__(self, directory: Path) -> None:
        """Makes the CA's key and self-signed certificate in `directory`."""
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self._certificate = (
            x509.CertificateBuilder()
            .subject_name(_name("Constellation test CA"))
            .issuer_name(_name("Constellation test CA"))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.certificate = directory / "ca.pem"
        self.certificate.write_bytes(self._certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, host: str) -> NodeCertificate:
        """Signs a server certificate for `host` (an IP address or a DNS name)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(host))
            .issuer_name(self._certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName([_alternative_name(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        files = NodeCertificate(self.directory / f"{name}.pem", self.directory / f"{name}.key")
        files.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        _write_key(key, files.key)
        return files


def main(argv: list[str]) -> int:
    """Writes a CA and one certificate per host named on the command line."""
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    ca = TestCA(Path(argv[0]))
    for index, host in enumerate(argv[1:]):
        ca.issue(f"node{index}", host)
    print(ca.certificate)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
