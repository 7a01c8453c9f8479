"""Third-party certificates: the CSRs CPS hands out, and the checks on what comes back.

Only a body that is not a usable certificate (unreadable PEM, a key of the wrong type, out of
date) is refused with 400, leaving the change waiting for a better one. As CPS does, a
certificate for another key than the CSR's, or one that leaves out names, is taken and stops at
``wait-review-third-party-cert`` with ``CSR_VS_CERTIFICATE_KEY_MISMATCH`` /
``CSR_VS_CERTIFICATE_MISSING_SAN_FROM_SAN_LIST_IN_CERTIFICATE`` warnings (apply never
acknowledges those by itself). Warning lines read ``<key type>: <CODE>: text``
where a code from Akamai's catalogue fits (the client's warning policy matches codes), and
``<key type>: text`` where none does. Softer findings (chain that does not lead to
the leaf, expiry within 30 days, extra names, SHA-1) become post-verification warnings that the
customer must acknowledge (``wait-review-third-party-cert``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from reconciler.sandbox.ca import key_pem_of
from reconciler.sandbox.enrollment_rules import all_names
from reconciler.sandbox.problems import ApiProblem, bad_request
from reconciler.sandbox.store import iso
from reconciler.x509names import dns_sans

Json = dict[str, Any]

EXPIRY_WARNING = timedelta(days=30)
_SUBJECT = (
    ("c", NameOID.COUNTRY_NAME),
    ("st", NameOID.STATE_OR_PROVINCE_NAME),
    ("l", NameOID.LOCALITY_NAME),
    ("o", NameOID.ORGANIZATION_NAME),
    ("ou", NameOID.ORGANIZATIONAL_UNIT_NAME),
)


def required_names(body: Json) -> list[str]:
    """Names the certificate must cover: the CN, plus the SANs unless ``thirdParty.excludeSans``."""
    if (body.get("thirdParty") or {}).get("excludeSans"):
        return [body["csr"]["cn"]]
    return all_names(body)


def make_csr(
    body: Json, algorithm: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None
) -> Json:
    """One CSR (stored form, private key included) with the enrollment's subject and names;
    a fresh key unless ``key`` is given."""
    if key is None:
        key = rsa.generate_private_key(65537, 2048) if algorithm == "RSA" else ec.generate_private_key(ec.SECP256R1())
    csr_fields = body["csr"]
    attributes = [x509.NameAttribute(oid, str(csr_fields[k])) for k, oid in _SUBJECT if csr_fields.get(k)]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, csr_fields["cn"]))
    names = [x509.DNSName(name) for name in required_names(body)]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(attributes))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    return {
        "keyAlgorithm": algorithm,
        "csr": csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        "key": key_pem_of(key),
    }


def make_csrs(body: Json) -> list[Json]:
    """RSA always; ECDSA too when the enrollment is dual-stacked."""
    algorithms = ["RSA", "ECDSA"] if body["enableMultiStackedCertificates"] else ["RSA"]
    return [make_csr(body, algorithm) for algorithm in algorithms]


def _spki(key: Any) -> bytes:
    der: bytes = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def _algorithm_of(key: Any) -> str | None:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ECDSA"
    return None


def _load_pems(text: str | None, what: str) -> list[x509.Certificate]:
    if not text or not text.strip():
        return []
    try:
        return x509.load_pem_x509_certificates(text.encode("ascii"))
    except ValueError:
        raise bad_request(f"The {what} is not readable PEM certificate text.") from None


def _names_of(cert: x509.Certificate) -> set[str]:
    return set(dns_sans(cert))


def signature_algorithm(cert: x509.Certificate) -> str | None:
    """The enrollment vocabulary (``SHA-256``/``SHA-1``) for a certificate's signature hash."""
    algorithm = cert.signature_hash_algorithm
    return {"sha256": "SHA-256", "sha1": "SHA-1"}.get(algorithm.name if algorithm else "")


def _non_standard_root(alg: str, chain: list[x509.Certificate], standard_roots: frozenset[bytes]) -> list[str]:
    """A chain that ends in a root (self-signed) the platform does not trust."""
    last = chain[-1]
    if last.issuer != last.subject or last.fingerprint(hashes.SHA256()) in standard_roots:
        return []
    return [f"{alg}: TRUST_CHAIN_TERMINATES_WITH_NON_STANDARD_CERTIFICATE: "
            "The trust chain terminates with a non-standard root certificate."]


def _chain_findings(alg: str, leaf: x509.Certificate, chain: list[x509.Certificate],
                    standard_roots: frozenset[bytes] = frozenset()) -> list[str]:
    if not chain:
        if leaf.issuer != leaf.subject:
            return [f"{alg}: TRUST_CHAIN_EMPTY_AND_CERTIFICATE_SIGNED_BY_NON_STANDARD_ROOT: "
                "The trust chain is empty and the certificate is signed by a non-standard root."]
        return []
    findings = []
    if any(c.fingerprint(hashes.SHA256()) == leaf.fingerprint(hashes.SHA256()) for c in chain):
        findings.append(f"{alg}: END_ENTITY_CERT_IN_TRUST_CHAIN: The end-entity certificate is included in the trust chain.")
        chain = [c for c in chain if c.fingerprint(hashes.SHA256()) != leaf.fingerprint(hashes.SHA256())]
    current = leaf
    for link in chain:
        try:
            current.verify_directly_issued_by(link)
        except (ValueError, TypeError, InvalidSignature):
            findings.append(
                f"{alg}: The trust chain does not lead to the certificate: "
                f"{link.subject.rfc4514_string()} did not issue {current.subject.rfc4514_string()}."
            )
            return findings
        current = link
    return findings + _non_standard_root(alg, chain, standard_roots)


def verify_upload(body: Json, csrs: list[Json], items: list[Json], now: datetime,
                  standard_roots: frozenset[bytes] = frozenset()) -> tuple[list[Json], list[str]]:
    """Check uploaded certificates against the change's CSRs. ``standard_roots``: SHA-256
    fingerprints of the roots the platform trusts (the sandbox's own CA plays the public ones).

    Returns ``(certificates in stored form, soft findings)``; raises a 400 ``ApiProblem`` for a
    hard mismatch. Stored form: keyAlgorithm, certificate, trustChain, expiry, csr,
    signatureAlgorithm.
    """
    if not items:
        raise bad_request("Upload at least one certificate.")
    by_algorithm = {csr["keyAlgorithm"]: csr for csr in csrs}
    seen: set[str] = set()
    stored: list[Json] = []
    findings: list[str] = []
    for item in items:
        alg = str(item.get("keyAlgorithm"))
        if alg in seen:
            raise bad_request(f"Two {alg} certificates were uploaded; send one per key type.")
        seen.add(alg)
        if alg not in by_algorithm:
            raise bad_request(f"This change has no {alg} CSR (the enrollment is not dual-stacked).")
        certs = _load_pems(item.get("certificate"), f"{alg} certificate")
        if not certs:
            raise bad_request(f"The {alg} certificate is empty.")
        leaf, extra = certs[0], certs[1:]
        chain = extra + _load_pems(item.get("trustChain"), f"{alg} trust chain")
        _hard_checks(alg, leaf, now)
        findings.extend(_match_findings(body, by_algorithm[alg], alg, leaf))
        names = _names_of(leaf)
        unexpected = sorted(names - {n.lower() for n in all_names(body)})
        if unexpected:
            findings.append(f"{alg}: The certificate has names the enrollment does not list: {', '.join(unexpected)}.")
        if leaf.not_valid_after_utc - now < EXPIRY_WARNING:
            findings.append(
                f"{alg}: CERTIFICATE_EXPIRATION_TOO_SHORT: The certificate expires on "
                f"{leaf.not_valid_after_utc:%Y-%m-%d}, in less than 30 days."
            )
        if signature_algorithm(leaf) == "SHA-1":
            findings.append(f"{alg}: The certificate is signed with SHA-1.")
        findings.extend(_chain_findings(alg, leaf, chain, standard_roots))
        stored.append(
            {
                "keyAlgorithm": alg,
                "certificate": leaf.public_bytes(serialization.Encoding.PEM).decode("ascii"),
                "trustChain": "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in chain)
                or None,
                "expiry": iso(leaf.not_valid_after_utc),
                "csr": by_algorithm[alg]["csr"],
                "signatureAlgorithm": signature_algorithm(leaf),
            }
        )
    stored.sort(key=lambda c: 0 if c["keyAlgorithm"] == "RSA" else 1)
    return stored, findings


def _match_findings(body: Json, csr_record: Json, alg: str, leaf: x509.Certificate) -> list[str]:
    """What CPS accepts and then stops on for review: a leaf for another key, names left out."""
    csr = x509.load_pem_x509_csr(csr_record["csr"].encode("ascii"))
    findings = []
    if _spki(leaf.public_key()) != _spki(csr.public_key()):
        findings.append(f"{alg}: CSR_VS_CERTIFICATE_KEY_MISMATCH: The public key of the certificate does not "
                        f"match the public key of the {alg} CSR of this change.")
    names = _names_of(leaf)
    missing = [n for n in required_names(body) if n.lower() not in names]
    if missing:
        findings.append(f"{alg}: CSR_VS_CERTIFICATE_MISSING_SAN_FROM_SAN_LIST_IN_CERTIFICATE: The certificate "
                        f"does not include these names of the CSR: {', '.join(missing)}.")
    return findings


def _hard_checks(alg: str, leaf: x509.Certificate, now: datetime) -> None:
    key_alg = _algorithm_of(leaf.public_key())
    if key_alg != alg:
        raise _refuse(f"The certificate uploaded as {alg} has a {key_alg or 'unsupported'} key.")
    if leaf.not_valid_before_utc > now:
        raise _refuse(f"The {alg} certificate is not valid before {leaf.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}.")
    if leaf.not_valid_after_utc <= now:
        raise _refuse(f"The {alg} certificate expired on {leaf.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}.")


def _refuse(detail: str) -> ApiProblem:
    return bad_request(detail)


def warnings_text(findings: list[str]) -> str:
    """``warnings.v1`` text for post-verification findings: ``[WARNINGS]`` then one per line."""
    return "[WARNINGS]\n" + "".join(f"{line}\n" for line in findings)
