"""Spec-room fixtures: a minimal valid spec as a dict, for tests to vary."""

from __future__ import annotations

from typing import Any

import pytest

CONTACT = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1-555-0100"}
ORG = {"name": "Example Inc", "phone": "+1-555-0100", "address_line_one": "1 Main St", "city": "Cambridge",
       "region": "MA", "postal_code": "02142", "country_code": "US"}


def make_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "www-example-com", "type": "dv", "contract_id": "ctr_1-ABC",
        "common_name": "www.example.com", "sans": ["example.com"],
        "admin_contact": dict(CONTACT), "tech_contact": dict(CONTACT), "organization": dict(ORG),
    }
    spec.update(overrides)
    return spec


@pytest.fixture(name="make_spec")
def make_spec_fixture() -> Any:
    """Factory: ``make_spec(**overrides)`` -> a fresh, valid DV spec dict."""
    return make_spec


class Pki:
    """Real X.509 material for certificate-file checks: root -> intermediate -> leaves."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._cert("Test Root", self.root_key.public_key(), "Test Root", self.root_key, ca=True)
        self.int_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = self._cert("Test Intermediate", self.int_key.public_key(), "Test Root",
                                       self.root_key, ca=True)

    @staticmethod
    def _cert(subject: str, public_key: Any, issuer: str, signing_key: Any, *, ca: bool,
              names: list[str] | None = None, days: int = 30, start_days: int = -1) -> Any:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now + datetime.timedelta(days=start_days))
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                            critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    def leaf(self, names: list[str], key_type: str = "rsa", *, issuer: str = "Test Intermediate",
             signer: Any = None, days: int = 30) -> Any:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        key = rsa.generate_private_key(65537, 2048) if key_type == "rsa" else ec.generate_private_key(ec.SECP256R1())
        return self._cert(names[0], key.public_key(), issuer, signer or self.int_key, ca=False, names=names,
                          days=days, start_days=-2 if days < 0 else -1)

    @staticmethod
    def pem(*certs: Any) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding

        return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


_PKI: list[Pki] = []


@pytest.fixture
def pki() -> Pki:
    """One PKI per session (key generation is the slow part)."""
    if not _PKI:
        _PKI.append(Pki())
    return _PKI[0]
