"""Offline checks of a third-party spec's certificate files (paths, PEM, key type, chain).

A missing file is not an error: the certificate cannot exist before CPS has produced the CSR
and someone (or the signer hook) has had it signed. It is reported as an info notice starting
with "waiting for certificate"; plan and apply treat the enrollment as waiting on a person.
A certificate that no longer covers the spec's names is waiting for a new one in the same way.

Paths must stay inside the repository root, symlinks included (see docs/specs.md).
Files are refused, as errors, when they are not regular files, larger than ``MAX_PEM_BYTES``,
hold a private key or a CSR instead of a certificate, do not parse, hold the wrong key type or an
RSA key under ``MIN_RSA_BITS``, have expired, or do not chain; when the trust chain holds the
certificate itself (a self-signed certificate given as its own chain); and when the certificate's
public key is not that of the CSR CPS issued for its slot (``state/csr/<name>.<rsa|ecdsa>.csr.pem``,
written by apply and ``reconcile csr``), checked for each slot as soon as its file exists. An
expired certificate that state records as uploaded is only a warning, as is one that fits an
earlier CSR: nothing will be sent from it. A self-signed certificate is a warning.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from reconciler.apply.workfiles import csr_path
from reconciler.spec.findings import NOTICE_WAITING, Finding
from reconciler.spec.models import CertificateFiles, ThirdPartyEnrollmentSpec
from reconciler.spec.yamlsource import shorten
from reconciler.x509names import dns_sans, fingerprint, public_key_der

__all__ = ["MAX_PEM_BYTES", "MIN_RSA_BITS", "check_certificate_files", "resolve_inside"]

MAX_PEM_BYTES = 256 * 1024  # a leaf is ~2 KiB and a chain a few more
MIN_RSA_BITS = 2048  # CPS generates 2048-bit RSA CSRs; shorter keys are refused by CAs and browsers


def _issued_csr(state_dir: Path | None, name: str, key: str) -> tuple[Path, x509.CertificateSigningRequest] | None:
    if state_dir is None:
        return None
    path = csr_path(state_dir, name, key)
    try:
        return path, x509.load_pem_x509_csr(path.read_bytes())
    except (OSError, ValueError):  # none yet, or not readable: apply writes it again from CPS
        return None


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject and _issued_by(cert, cert) is None


def resolve_inside(root: Path, value: str) -> Path:
    """``value`` resolved against ``root``; ValueError unless it stays inside (symlinks followed)."""
    if "\0" in value:
        raise ValueError(f"{shorten(repr(value))} contains a NUL character")
    pure = PurePosixPath(value.replace("\\", "/"))
    if pure.is_absolute() or Path(value).is_absolute() or value.startswith("~"):
        raise ValueError(f"{value!r} must be a path relative to the repository root, not absolute")
    if ".." in pure.parts:
        raise ValueError(f"{value!r} must not contain '..'")
    root = root.resolve()
    try:
        target = (root / value).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise ValueError(f"{value!r} cannot be resolved ({exc})") from None
    if target != root and root not in target.parents:
        raise ValueError(f"{value!r} leads outside the repository (through a symlink) to {target}")
    return target


def _load(path: Path) -> list[x509.Certificate]:
    size = path.stat().st_size
    if size > MAX_PEM_BYTES:
        raise ValueError(f"is {size} bytes; a certificate file holds a few KiB (at most {MAX_PEM_BYTES // 1024} KiB)")
    data = path.read_bytes()
    if b"PRIVATE KEY-----" in data:
        raise ValueError("holds a PRIVATE KEY: private keys never go in the repository (CPS keeps the key); "
                         "delete it, purge it from version control history, and put only the certificate here")
    if b"CERTIFICATE REQUEST-----" in data:
        raise ValueError("holds a CSR, not a certificate: have it signed and put the signed certificate here")
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ValueError("no PEM certificate in it (expected '-----BEGIN CERTIFICATE-----')")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ValueError(f"unreadable PEM certificate ({shorten(str(exc), 120)})") from None


def _key_name(public_key: object) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"an RSA {public_key.key_size}-bit key"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"an ECDSA {public_key.curve.name} key"
    names = {dsa.DSAPublicKey: "a DSA key", ed25519.Ed25519PublicKey: "an Ed25519 key", ed448.Ed448PublicKey: "an Ed448 key"}
    return next((n for cls, n in names.items() if isinstance(public_key, cls)), f"a {type(public_key).__name__}")


def _key_problem(key: str, cert: x509.Certificate) -> str | None:
    public_key = cert.public_key()
    wanted = rsa.RSAPublicKey if key == "rsa" else ec.EllipticCurvePublicKey
    if not isinstance(public_key, wanted):
        return f"does not hold an {key.upper()} key: it holds {_key_name(public_key)}"
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < MIN_RSA_BITS:
        return f"holds {_key_name(public_key)}; at least {MIN_RSA_BITS} bits are needed"
    return None


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> str | None:
    """None when ``parent`` signed ``child``, else why not."""
    if child.issuer != parent.subject:
        return f"issuer {child.issuer.rfc4514_string()!r} is not {parent.subject.rfc4514_string()!r}"
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return "signature does not verify with the issuer's key"
    return None


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _names_of(cert: x509.Certificate) -> set[str]:
    return set(dns_sans(cert))


def _check_pair(spec: ThirdPartyEnrollmentSpec, key: str, files: CertificateFiles, root: Path,
                uploaded: Collection[str], state_dir: Path | None) -> list[Finding]:
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
        if path.exists() and not path.is_file():
            what = "a directory" if path.is_dir() else "not a regular file"
            errors.append(Finding((*base, attr), f"{getattr(files, attr)} is {what}; give the path of a PEM file"))
    if errors:
        return errors
    absent = [attr for attr, path in paths.items() if not path.is_file()]
    if "certificate" in absent:
        return [Finding((*base, "certificate"), f"{NOTICE_WAITING}: {files.certificate} does not exist yet "
                        "(it appears once the CSR is signed)", "info")]
    try:
        certs = _load(paths["certificate"])
    except (ValueError, OSError) as exc:
        return [Finding((*base, "certificate"), f"{files.certificate}: {exc}")]
    if len(certs) != 1:
        return [Finding((*base, "certificate"), f"{files.certificate} holds {len(certs)} certificates; "
                        "put only the leaf here and the intermediates in trust_chain")]
    leaf = certs[0]
    why_not = _key_problem(key, leaf)
    if why_not is not None:
        return [Finding((*base, "certificate"), f"{files.certificate} {why_not}")]
    found: list[Finding] = []
    # Expiry is an error, as apply would refuse to upload the file, unless it is the very
    # certificate already uploaded (kept for the record): nothing will be sent from it, and one
    # stale file must not stop the plan of every other enrollment.
    uploaded_before = fingerprint(leaf) in uploaded
    expired_severity = "warning" if uploaded_before else "error"
    issued = _issued_csr(state_dir, spec.name, key)
    if issued is not None and public_key_der(issued[1]) != public_key_der(leaf):
        csr_shown = _shown(issued[0], root)
        if not uploaded_before:
            return [Finding((*base, "certificate"), f"{files.certificate}: its public key is not the one in the "
                            f"{key.upper()} CSR CPS issued ({csr_shown}): it was signed from another CSR; have "
                            f"{csr_shown} signed and put that certificate here (`reconcile csr {spec.name}` "
                            "fetches the current CSRs if CPS issued newer ones)")]
        found.append(Finding((*base, "certificate"), f"{NOTICE_WAITING}: {files.certificate} is the certificate "
                             f"uploaded before; CPS issued a new {key.upper()} CSR ({csr_shown}) to sign", "info"))
    if "trust_chain" in paths and "trust_chain" not in absent:
        try:
            chain = _load(paths["trust_chain"])
        except (ValueError, OSError) as exc:
            return [Finding((*base, "trust_chain"), f"{files.trust_chain}: {exc}")]
        if any(fingerprint(c) == fingerprint(leaf) for c in chain):
            what = "the certificate itself, which is self-signed" if _self_signed(leaf) else "the certificate itself"
            return [Finding((*base, "trust_chain"), f"{files.trust_chain} holds {what}: a trust chain holds the "
                            "certificates of the CA that signed it (intermediates), never the leaf; apply "
                            "would refuse to upload it")]
        for child, parent in zip([leaf, *chain], chain, strict=False):
            why = _issued_by(child, parent)
            if why is not None:
                what = "the certificate" if child is leaf else f"chain certificate {child.subject.rfc4514_string()!r}"
                found.append(Finding((*base, "trust_chain"), f"{files.trust_chain} does not match: {what}: {why}"))
                break
        now = datetime.now(UTC)
        for parent in chain:
            if parent.not_valid_after_utc <= now:
                found.append(Finding((*base, "trust_chain"), f"{files.trust_chain}: chain certificate "
                                     f"{parent.subject.rfc4514_string()!r} expired on {parent.not_valid_after_utc:%Y-%m-%d}",
                                     expired_severity))
                break
    # apply refuses to upload an expired certificate; say so now, before anything reaches CPS.
    if leaf.not_valid_after_utc <= datetime.now(UTC):
        expired = f"{files.certificate} expired on {leaf.not_valid_after_utc:%Y-%m-%d}"
        if uploaded_before:
            found.append(Finding((*base, "certificate"), f"{expired}; it is the certificate uploaded before "
                                 "(state records it), so nothing will be sent from it: put the next one here when "
                                 "CPS asks for it (reconcile csr)", "warning"))
        else:
            found.append(Finding((*base, "certificate"), f"{expired}; put a current certificate here (or remove "
                                 "the file to wait for a new one)"))
    if _self_signed(leaf) and not any(f.severity == "error" for f in found):
        found.append(Finding((*base, "certificate"), f"{files.certificate} is self-signed: browsers will not "
                             "trust it; have a CA sign the CSR", "warning"))
    if "trust_chain" in absent and not found:  # the certificate is sound; its chain is still to come
        return [Finding((*base, "trust_chain"), f"{NOTICE_WAITING}: {files.trust_chain} does not exist yet "
                        "(it appears once the CSR is signed)", "info")]
    missing = [n for n in spec.sans if n not in _names_of(leaf)]
    if missing and not found:
        found.append(Finding((*base, "certificate"), f"{NOTICE_WAITING}: {files.certificate} does not cover "
                             f"{', '.join(missing)} (sign the new CSR)", "info"))
    return found


def check_certificate_files(spec: ThirdPartyEnrollmentSpec, root: Path, uploaded: Collection[str] = (),
                            state_dir: Path | None = None) -> list[Finding]:
    """Findings for every configured key type's certificate files. ``uploaded``: SHA-256
    fingerprints (hex of the DER) of the certificates state records as uploaded for this spec;
    ``state_dir``: the state file's directory, whose ``csr/`` holds the CSRs CPS issued."""
    found: list[Finding] = []
    for key in ("rsa", "ecdsa"):
        files = getattr(spec.certificates, key)
        if files is not None:
            found.extend(_check_pair(spec, key, files, root, uploaded, state_dir))
    return found
