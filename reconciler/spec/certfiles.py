"""Offline checks of a third-party spec's certificate files (paths, PEM, key type, chain).

A missing file is not an error: the certificate cannot exist before CPS has produced the CSR
and someone (or the signer hook) has had it signed. It is reported as an info notice starting
with "waiting for certificate"; plan and apply treat the enrollment as waiting on a person.
A certificate that no longer covers the spec's names is waiting for a new one in the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from reconciler.spec.findings import NOTICE_WAITING, Finding
from reconciler.spec.models import CertificateFiles, ThirdPartyEnrollmentSpec
from reconciler.x509names import dns_sans

__all__ = ["check_certificate_files", "resolve_inside"]


def resolve_inside(root: Path, value: str) -> Path:
    """``value`` resolved against ``root``; ValueError unless it stays inside (symlinks followed)."""
    pure = PurePosixPath(value.replace("\\", "/"))
    if pure.is_absolute() or Path(value).is_absolute():
        raise ValueError(f"{value!r} must be a path relative to the repository root, not absolute")
    if ".." in pure.parts:
        raise ValueError(f"{value!r} must not contain '..'")
    root = root.resolve()
    target = (root / value).resolve()
    if target != root and root not in target.parents:
        raise ValueError(f"{value!r} leads outside the repository (through a symlink) to {target}")
    return target


def _load(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ValueError("no PEM certificate in it (expected '-----BEGIN CERTIFICATE-----')")
    return x509.load_pem_x509_certificates(data)


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> str | None:
    """None when ``parent`` signed ``child``, else why not."""
    if child.issuer != parent.subject:
        return f"issuer {child.issuer.rfc4514_string()!r} is not {parent.subject.rfc4514_string()!r}"
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return "signature does not verify with the issuer's key"
    return None


def _names_of(cert: x509.Certificate) -> set[str]:
    return set(dns_sans(cert))


def _check_pair(spec: ThirdPartyEnrollmentSpec, key: str, files: CertificateFiles, root: Path) -> list[Finding]:
    base: tuple[str, ...] = ("certificates", key)
    paths: dict[str, Path] = {}
    errors: list[Finding] = []
    for attr in ("certificate", "trust_chain"):
        value = getattr(files, attr)
        if value is None:
            continue
        try:
            paths[attr] = resolve_inside(root, value)
        except ValueError as exc:
            errors.append(Finding((*base, attr), str(exc)))
    if errors:
        return errors
    for attr, path in paths.items():
        if not path.is_file():
            return [Finding((*base, attr), f"{NOTICE_WAITING}: {getattr(files, attr)} does not exist yet "
                            "(it appears once the CSR is signed)", "info")]
    try:
        certs = _load(paths["certificate"])
    except (ValueError, OSError) as exc:
        return [Finding((*base, "certificate"), f"{files.certificate}: {exc}")]
    if len(certs) != 1:
        return [Finding((*base, "certificate"), f"{files.certificate} holds {len(certs)} certificates; "
                        "put only the leaf here and the intermediates in trust_chain")]
    leaf = certs[0]
    wanted = rsa.RSAPublicKey if key == "rsa" else ec.EllipticCurvePublicKey
    if not isinstance(leaf.public_key(), wanted):
        return [Finding((*base, "certificate"),
                        f"{files.certificate} does not hold an {key.upper()} key ({type(leaf.public_key()).__name__})")]
    found: list[Finding] = []
    if "trust_chain" in paths:
        try:
            chain = _load(paths["trust_chain"])
        except (ValueError, OSError) as exc:
            return [Finding((*base, "trust_chain"), f"{files.trust_chain}: {exc}")]
        for child, parent in zip([leaf, *chain], chain, strict=False):
            why = _issued_by(child, parent)
            if why is not None:
                what = "the certificate" if child is leaf else f"chain certificate {child.subject.rfc4514_string()!r}"
                found.append(Finding((*base, "trust_chain"), f"{files.trust_chain} does not match: {what}: {why}"))
                break
    if leaf.not_valid_after_utc <= datetime.now(UTC):
        found.append(Finding((*base, "certificate"),
                             f"{files.certificate} expired on {leaf.not_valid_after_utc:%Y-%m-%d}", "warning"))
    missing = [n for n in spec.sans if n not in _names_of(leaf)]
    if missing and not found:
        found.append(Finding((*base, "certificate"), f"{NOTICE_WAITING}: {files.certificate} does not cover "
                             f"{', '.join(missing)} (sign the new CSR)", "info"))
    return found


def check_certificate_files(spec: ThirdPartyEnrollmentSpec, root: Path) -> list[Finding]:
    """Findings for every configured key type's certificate files."""
    found: list[Finding] = []
    for key in ("rsa", "ecdsa"):
        files = getattr(spec.certificates, key)
        if files is not None:
            found.extend(_check_pair(spec, key, files, root))
    return found
