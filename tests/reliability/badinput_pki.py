"""Real X.509 material for the bad-input corpus, generated at test time (no private key is committed).

One ``Pki`` per test session: a root and an intermediate CA, plus leaves of any key type
(RSA, ECDSA, DSA, Ed25519), validity window and issuer, written as PEM into a case's project.
"""

from __future__ import annotations

import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import NameOID

__all__ = ["Pki", "pem"]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def pem(*items: Any) -> bytes:
    """PEM of certificates (or a CSR), concatenated."""
    return b"".join(i.public_bytes(serialization.Encoding.PEM) for i in items)


class Pki:
    """Root -> intermediate -> leaves; a second, unrelated root for mismatches."""

    def __init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self.cert("Bad Input Root", self.root_key.public_key(), "Bad Input Root", self.root_key, ca=True)
        self.int_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = self.cert("Bad Input Intermediate", self.int_key.public_key(), "Bad Input Root",
                                      self.root_key, ca=True)
        # Same subject as the real intermediate, different key: names match, signatures do not.
        self.impostor_key = ec.generate_private_key(ec.SECP256R1())
        self.impostor = self.cert("Bad Input Intermediate", self.impostor_key.public_key(), "Bad Input Root",
                                  self.impostor_key, ca=True)
        self.other_key = ec.generate_private_key(ec.SECP256R1())
        self.other_root = self.cert("Other Root", self.other_key.public_key(), "Other Root", self.other_key, ca=True)
        self._keys: dict[str, Any] = {}

    @staticmethod
    def cert(subject: str, public_key: Any, issuer: str, signing_key: Any, *, ca: bool,
             names: list[str] | None = None, not_before_days: int = -1, not_after_days: int = 60) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now + datetime.timedelta(days=not_before_days))
                   .not_valid_after(now + datetime.timedelta(days=not_after_days))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                            critical=False)
        algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        return builder.sign(signing_key, algorithm)

    def key(self, kind: str) -> Any:
        """A cached private key: rsa, rsa1024, ecdsa, dsa, ed25519 (key generation is the slow part)."""
        if kind not in self._keys:
            self._keys[kind] = {
                "rsa": lambda: rsa.generate_private_key(65537, 2048),
                "rsa1024": lambda: rsa.generate_private_key(65537, 1024),
                "ecdsa": lambda: ec.generate_private_key(ec.SECP256R1()),
                "dsa": lambda: dsa.generate_private_key(2048),
                "ed25519": ed25519.Ed25519PrivateKey.generate,
            }[kind]()
        return self._keys[kind]

    def leaf(self, names: list[str], kind: str = "rsa", *, not_before_days: int = -1,
             not_after_days: int = 60, issuer_key: Any = None, issuer: str = "Bad Input Intermediate") -> x509.Certificate:
        """A leaf for ``names`` with a ``kind`` key, signed by the intermediate unless told otherwise."""
        return self.cert(names[0], self.key(kind).public_key(), issuer, issuer_key or self.int_key, ca=False,
                         names=names, not_before_days=not_before_days, not_after_days=not_after_days)

    def csr(self, names: list[str]) -> x509.CertificateSigningRequest:
        return (x509.CertificateSigningRequestBuilder().subject_name(_name(names[0]))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                .sign(self.key("rsa"), hashes.SHA256()))

    def private_key_pem(self) -> bytes:
        return bytes(self.key("ecdsa").private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
