"""The sandbox CA issues real, verifiable X.509 material and survives a JSON round trip."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from reconciler.sandbox.ca import CertificateAuthority


def _load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _dns_names(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return ext.value.get_values_for_type(x509.DNSName)


def _verify_chain(leaf_pem: str, chain_pem: str, root_pem: str) -> None:
    leaf, inter, root = _load(leaf_pem), _load(chain_pem), _load(root_pem)
    leaf.verify_directly_issued_by(inter)
    inter.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)


def test_issue_covers_cn_and_sans_and_chains_to_root() -> None:
    ca = CertificateAuthority("Test")
    key = ec.generate_private_key(ec.SECP256R1())
    leaf_pem, chain_pem = ca.issue(key.public_key(), "www.example.com", ["a.example.com", "WWW.example.com"])
    leaf = _load(leaf_pem)
    assert _dns_names(leaf) == ["www.example.com", "a.example.com"]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "www.example.com"
    assert leaf.public_key() == key.public_key()
    assert leaf.signature_hash_algorithm is not None
    assert leaf.signature_hash_algorithm.name == "sha256"
    _verify_chain(leaf_pem, chain_pem, ca.root_pem)


def test_sign_csr_uses_csr_key_and_names() -> None:
    customer = CertificateAuthority("Customer")
    key = rsa.generate_private_key(65537, 2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.example.com")]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("shop.example.com"), x509.DNSName("m.example.com")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    now = datetime(2030, 1, 1, tzinfo=UTC)
    leaf_pem, chain_pem = customer.sign_csr(csr_pem, days=30, now=now)
    leaf = _load(leaf_pem)
    assert leaf.public_key() == key.public_key()
    assert sorted(_dns_names(leaf)) == ["m.example.com", "shop.example.com"]
    assert leaf.not_valid_after_utc == now + timedelta(days=30)
    _verify_chain(leaf_pem, chain_pem, customer.root_pem)

    override_pem, _ = customer.sign_csr(csr_pem, sans=["other.example.com"])
    assert _dns_names(_load(override_pem)) == ["shop.example.com", "other.example.com"]


def test_json_round_trip_keeps_the_same_root_and_keeps_issuing() -> None:
    ca = CertificateAuthority("Persisted")
    data = json.loads(json.dumps(ca.to_json()))
    again = CertificateAuthority.from_json(data)
    assert again.root_pem == ca.root_pem
    key = ec.generate_private_key(ec.SECP256R1())
    leaf_pem, chain_pem = again.issue(key.public_key(), "x.example.com", [])
    _verify_chain(leaf_pem, chain_pem, ca.root_pem)


def test_server_certificate_is_usable_by_ssl(tmp_path: Path) -> None:
    ca = CertificateAuthority()
    cert_pem, key_pem = ca.issue_server_certificate(["localhost", "127.0.0.1"])
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_text(cert_pem)
    key_file.write_text(key_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    leaf = _load(cert_pem)
    ext = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert ext.get_values_for_type(x509.DNSName) == ["localhost"]


def test_sign_csr_refuses_a_tampered_csr() -> None:
    ca = CertificateAuthority()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.com")]))
        .sign(key, hashes.SHA256())
    )
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF  # flip bits in the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(ValueError, match="signature"):
        ca.sign_csr(tampered)
