"""The host names an X.509 certificate or CSR carries, whether they cover a host, and a certificate's
fingerprint: one reading for every room that checks them (the sandbox verifying an upload, validate
checking certificate files, apply checking before upload, after deployment and before it deletes a
predecessor, and recording what it uploaded), and whether a certificate was signed from a CSR
(their public keys)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 over the DER encoding, lower-case hex without separators (what state records for an
    uploaded certificate)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def public_key_der(item: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    """The SubjectPublicKeyInfo (DER): the same for a certificate and the CSR it was signed from."""
    return item.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def dns_sans(item: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    """DNS names of the SubjectAlternativeName extension, lower-cased, in order, without duplicates;
    ``[]`` when there is no such extension."""
    try:
        ext = item.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(dict.fromkeys(name.lower() for name in ext.value.get_values_for_type(x509.DNSName)))


def served_names(pems: Iterable[str]) -> frozenset[str]:
    """Every DNS name the PEM certificates in ``pems`` carry (lower-case)."""
    names: set[str] = set()
    for pem in pems:
        names.update(dns_sans(x509.load_pem_x509_certificate(pem.encode())))
    return frozenset(names)


def covers(served: Iterable[str], host: str) -> bool:
    """Whether a certificate for the names ``served`` is valid for ``host``: the name itself, or a
    wildcard one label up (``*.example.com`` covers ``www.example.com``, not ``example.com``)."""
    host = host.lower()
    names = {n.lower() for n in served}
    if host in names:
        return True
    parent = host.split(".", 1)[1] if "." in host else ""
    return not host.startswith("*.") and bool(parent) and f"*.{parent}" in names


def validity_of(pems: Iterable[str]) -> tuple[datetime, datetime]:
    """When the PEM certificates in ``pems`` are valid together: (latest start, earliest end)."""
    certs = [x509.load_pem_x509_certificate(pem.encode()) for pem in pems]
    return max(c.not_valid_before_utc for c in certs), min(c.not_valid_after_utc for c in certs)
