"""Third-party certificates: local checks against the CSR before anything is uploaded, and the
signer hook that can produce the certificate from the CSR.

CPS would find most of these problems too, but only after the upload, as post-verification
warnings on a change that then has to be cancelled. Checking locally first turns a mismatch into
a clear message naming the file, and keeps the upload step a one-shot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from reconciler.apply.shell import run_shell
from reconciler.errors import CertificateMismatch, PublisherError
from reconciler.x509names import dns_sans, fingerprint, public_key_der

KEY_ALGORITHMS = ("rsa", "ecdsa")


@dataclass(frozen=True)
class CheckedCertificate:
    """A leaf and its chain that passed every local check, ready for upload."""

    key_algorithm: str  # "rsa" | "ecdsa"
    certificate_pem: str
    trust_chain_pem: str | None
    sha256: str  # hex fingerprint of the leaf (DER)
    serial: int
    not_after: datetime


def pem_fingerprint(pem: str) -> str:
    """Fingerprint of the first certificate in a PEM text."""
    return fingerprint(x509.load_pem_x509_certificate(pem.encode()))


def csr_names(csr: x509.CertificateSigningRequest) -> list[str]:
    """CN followed by the DNS SANs of a CSR, lower-cased, without duplicates."""
    names = [str(a.value).lower() for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return list(dict.fromkeys([*names, *dns_sans(csr)]))


def _cert_names(cert: x509.Certificate) -> set[str]:
    try:
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        # Only a certificate without SANs falls back to its CN, as TLS clients do.
        return {str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    return set(dns_sans(cert))


def _load_pems(path: Path, what: str, enrollment: str) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateMismatch(enrollment, f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        certs = x509.load_pem_x509_certificates(data) if data.strip() else []
    except ValueError:
        raise CertificateMismatch(enrollment, f"{path}: {what} is not PEM-encoded X.509") from None
    return certs


def check_certificate(*, enrollment: str, key_algorithm: str, csr_pem: str, cert_file: Path,
                      chain_file: Path | None, now: datetime) -> CheckedCertificate:
    """Check a signed certificate (and its chain) against the CSR CPS issued for it.

    Refuses with CertificateMismatch (naming the file and the reason) when the public key is not
    the CSR's, the key type is not ``key_algorithm``, a CSR name is not covered, the certificate
    is not valid at ``now``, or the chain does not verify link by link. A chain may be given in
    ``chain_file`` or appended to the certificate file.
    """
    def refuse(path: Path, reason: str) -> CertificateMismatch:
        return CertificateMismatch(enrollment, f"{path}: {reason}; not uploaded")

    certs = _load_pems(cert_file, "certificate", enrollment)
    if not certs:
        raise refuse(cert_file, "no certificate in the file")
    leaf, chain = certs[0], certs[1:]
    chain_source = cert_file
    if chain_file is not None and chain_file.exists():
        chain = _load_pems(chain_file, "trust chain", enrollment) or chain
        chain_source = chain_file
    csr = x509.load_pem_x509_csr(csr_pem.encode())

    public_key = leaf.public_key()
    expected_type = rsa.RSAPublicKey if key_algorithm == "rsa" else ec.EllipticCurvePublicKey
    if not isinstance(public_key, expected_type):
        raise refuse(cert_file, f"holds a {type(public_key).__name__.replace('PublicKey', '')} key, "
                                f"but this is the {key_algorithm.upper()} slot")
    if public_key_der(leaf) != public_key_der(csr):
        raise refuse(cert_file, f"public key does not match the {key_algorithm.upper()} CSR CPS issued "
                                "(signed from another CSR?)")
    missing = [n for n in csr_names(csr) if n not in _cert_names(leaf)]
    if missing:
        raise refuse(cert_file, f"does not cover {', '.join(missing)} (names in the CSR)")
    if now < leaf.not_valid_before_utc:
        raise refuse(cert_file, f"not valid before {leaf.not_valid_before_utc.isoformat()}")
    if now >= leaf.not_valid_after_utc:
        raise refuse(cert_file, f"expired on {leaf.not_valid_after_utc.isoformat()}")

    leaf_print = fingerprint(leaf)
    if any(fingerprint(c) == leaf_print for c in chain):
        raise refuse(chain_source, "trust chain contains the end-entity certificate itself")
    for child, parent in zip([leaf, *chain], chain, strict=False):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise refuse(chain_source, f"trust chain does not verify: {child.subject.rfc4514_string()} "
                                       f"is not signed by {parent.subject.rfc4514_string()}") from None
        if now >= parent.not_valid_after_utc:
            raise refuse(chain_source, f"chain certificate {parent.subject.rfc4514_string()} has expired")

    chain_pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain) or None
    return CheckedCertificate(
        key_algorithm=key_algorithm,
        certificate_pem=leaf.public_bytes(serialization.Encoding.PEM).decode(),
        trust_chain_pem=chain_pem,
        sha256=leaf_print,
        serial=leaf.serial_number,
        not_after=leaf.not_valid_after_utc,
    )


def certificate_matches_csr(cert_file: Path, csr_pem: str) -> bool:
    """True when ``cert_file`` exists and holds a certificate for the CSR's public key."""
    try:
        certs = x509.load_pem_x509_certificates(cert_file.read_bytes())
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        return bool(certs) and public_key_der(certs[0]) == public_key_der(csr)
    except (OSError, ValueError):
        return False


def signer_environment(*, enrollment: str, key_algorithm: str, csr_file: Path, cert_file: Path,
                       chain_file: Path) -> dict[str, str]:
    """The documented signer hook environment (docs/third-party.md)."""
    return {
        "RECONCILE_ENROLLMENT": enrollment,
        "RECONCILE_KEY_ALGORITHM": key_algorithm,
        "RECONCILE_CSR_FILE": str(csr_file),
        "RECONCILE_CERT_FILE": str(cert_file),
        "RECONCILE_CHAIN_FILE": str(chain_file),
    }


async def run_signer(command: str, *, enrollment: str, key_algorithm: str, csr_file: Path,
                     cert_file: Path, chain_file: Path, cwd: Path, timeout: float) -> None:
    """Run the spec's signer command once for one CSR; it must write the certificate file."""
    env = signer_environment(enrollment=enrollment, key_algorithm=key_algorithm, csr_file=csr_file,
                             cert_file=cert_file, chain_file=chain_file)
    for path in (cert_file, chain_file):
        path.parent.mkdir(parents=True, exist_ok=True)
    await run_shell(command, env=env, cwd=cwd, timeout=timeout,
                    what=f"{enrollment}: signer for the {key_algorithm.upper()} CSR")
    if not cert_file.exists():
        raise PublisherError(f"{enrollment}: signer finished but did not write {cert_file}")
