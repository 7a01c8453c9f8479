"""Local third-party certificate checks and the signer hook, with real keys, CSRs and certificates."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from reconciler.apply.thirdparty import (
    certificate_matches_csr,
    check_certificate,
    csr_names,
    pem_fingerprint,
    run_signer,
)
from reconciler.errors import CertificateMismatch, PublisherError
from reconciler.sandbox.ca import CertificateAuthority

NOW = datetime.now(UTC)


def make_csr(key_algorithm: str = "rsa", cn: str = "www.example.com",
             sans: tuple[str, ...] = ("www.example.com", "example.com")) -> str:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    key = rsa.generate_private_key(65537, 2048) if key_algorithm == "rsa" else ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority("Test Customer CA")


@pytest.fixture(scope="module")
def rsa_csr() -> str:
    return make_csr("rsa")


@pytest.fixture(scope="module")
def ecdsa_csr() -> str:
    return make_csr("ecdsa")


def write(tmp_path: Path, leaf: str, chain: str | None) -> tuple[Path, Path | None]:
    cert_file = tmp_path / "cert.pem"
    cert_file.write_text(leaf)
    chain_file = None
    if chain is not None:
        chain_file = tmp_path / "chain.pem"
        chain_file.write_text(chain)
    return cert_file, chain_file


def check(tmp_path: Path, csr: str, leaf: str, chain: str | None, algorithm: str = "rsa",
          now: datetime = NOW):  # type: ignore[no-untyped-def]
    cert_file, chain_file = write(tmp_path, leaf, chain)
    return check_certificate(enrollment="www", key_algorithm=algorithm, csr_pem=csr, cert_file=cert_file,
                             chain_file=chain_file, now=now)


def test_good_rsa_and_ecdsa_certificates_pass(tmp_path: Path, ca: CertificateAuthority, rsa_csr: str,
                                               ecdsa_csr: str) -> None:
    for algorithm, csr in (("rsa", rsa_csr), ("ecdsa", ecdsa_csr)):
        leaf, chain = ca.sign_csr(csr)
        checked = check(tmp_path, csr, leaf, chain, algorithm)
        assert checked.key_algorithm == algorithm
        assert checked.sha256 == pem_fingerprint(leaf)
        assert checked.trust_chain_pem is not None and "BEGIN CERTIFICATE" in checked.trust_chain_pem
        assert certificate_matches_csr(tmp_path / "cert.pem", csr)


def test_chain_appended_to_certificate_file_is_used(tmp_path: Path, ca: CertificateAuthority, rsa_csr: str) -> None:
    leaf, chain = ca.sign_csr(rsa_csr)
    checked = check(tmp_path, rsa_csr, leaf + chain, None)
    assert checked.trust_chain_pem == chain


def test_key_mismatch_is_refused_naming_the_file(tmp_path: Path, ca: CertificateAuthority, rsa_csr: str) -> None:
    other_leaf, chain = ca.sign_csr(make_csr("rsa"))
    with pytest.raises(CertificateMismatch) as info:
        check(tmp_path, rsa_csr, other_leaf, chain)
    assert str(tmp_path / "cert.pem") in str(info.value)
    assert "public key does not match" in str(info.value) and info.value.enrollment == "www"


def test_wrong_key_type_for_slot(tmp_path: Path, ca: CertificateAuthority, ecdsa_csr: str) -> None:
    leaf, chain = ca.sign_csr(ecdsa_csr)
    with pytest.raises(CertificateMismatch, match="RSA slot"):
        check(tmp_path, ecdsa_csr, leaf, chain, "rsa")


def test_missing_name_is_refused(tmp_path: Path, ca: CertificateAuthority, rsa_csr: str) -> None:
    leaf, chain = ca.sign_csr(rsa_csr, sans=["www.example.com"])
    with pytest.raises(CertificateMismatch, match="does not cover example.com"):
        check(tmp_path, rsa_csr, leaf, chain)
    assert csr_names(x509.load_pem_x509_csr(rsa_csr.encode())) == ["www.example.com", "example.com"]


def test_dates_are_checked(tmp_path: Path, ca: CertificateAuthority, rsa_csr: str) -> None:
    leaf, chain = ca.sign_csr(rsa_csr, days=10)
    with pytest.raises(CertificateMismatch, match="expired on"):
        check(tmp_path, rsa_csr, leaf, chain, now=NOW + timedelta(days=11))
    with pytest.raises(CertificateMismatch, match="not valid before"):
        check(tmp_path, rsa_csr, leaf, chain, now=NOW - timedelta(days=2))


def test_chain_from_another_ca_is_refused(tmp_path: Path, ca: CertificateAuthority, rsa_csr: str) -> None:
    leaf, _ = ca.sign_csr(rsa_csr)
    foreign_chain = CertificateAuthority("Someone Else").intermediate_pem
    with pytest.raises(CertificateMismatch) as info:
        check(tmp_path, rsa_csr, leaf, foreign_chain)
    assert "trust chain does not verify" in str(info.value) and str(tmp_path / "chain.pem") in str(info.value)


def test_leaf_inside_chain_and_garbage_are_refused(tmp_path: Path, ca: CertificateAuthority, rsa_csr: str) -> None:
    leaf, chain = ca.sign_csr(rsa_csr)
    with pytest.raises(CertificateMismatch, match="end-entity"):
        check(tmp_path, rsa_csr, leaf, leaf + chain)
    with pytest.raises(CertificateMismatch, match="not PEM-encoded"):
        check(tmp_path, rsa_csr, "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", None)
    with pytest.raises(CertificateMismatch, match="cannot read certificate"):
        check_certificate(enrollment="www", key_algorithm="rsa", csr_pem=rsa_csr,
                          cert_file=tmp_path / "absent.pem", chain_file=None, now=NOW)
    assert not certificate_matches_csr(tmp_path / "absent.pem", rsa_csr)


@pytest.mark.anyio
async def test_signer_hook_gets_env_and_writes_files(tmp_path: Path, rsa_csr: str) -> None:
    csr_file = tmp_path / "state" / "csr" / "www.rsa.csr.pem"
    csr_file.parent.mkdir(parents=True)
    csr_file.write_text(rsa_csr)
    script = tmp_path / "sign.py"
    script.write_text(
        "import os\n"
        "from reconciler.sandbox.ca import CertificateAuthority\n"
        "assert os.environ['RECONCILE_ENROLLMENT'] == 'www'\n"
        "assert os.environ['RECONCILE_KEY_ALGORITHM'] == 'rsa'\n"
        "leaf, chain = CertificateAuthority('Hook CA').sign_csr(open(os.environ['RECONCILE_CSR_FILE']).read())\n"
        "open(os.environ['RECONCILE_CERT_FILE'], 'w').write(leaf)\n"
        "open(os.environ['RECONCILE_CHAIN_FILE'], 'w').write(chain)\n"
    )
    cert_file, chain_file = tmp_path / "certs" / "www.rsa.pem", tmp_path / "certs" / "chain.rsa.pem"
    await run_signer(f"{sys.executable} sign.py", enrollment="www", key_algorithm="rsa", csr_file=csr_file,
                     cert_file=cert_file, chain_file=chain_file, cwd=tmp_path, timeout=60)
    checked = check_certificate(enrollment="www", key_algorithm="rsa", csr_pem=rsa_csr, cert_file=cert_file,
                                chain_file=chain_file, now=NOW)
    assert checked.trust_chain_pem is not None


@pytest.mark.anyio
async def test_signer_that_writes_nothing_fails(tmp_path: Path) -> None:
    with pytest.raises(PublisherError, match="did not write"):
        await run_signer("true", enrollment="www", key_algorithm="ecdsa", csr_file=tmp_path / "x.csr",
                         cert_file=tmp_path / "c.pem", chain_file=tmp_path / "ch.pem", cwd=tmp_path, timeout=10)
