"""Third-party changes in the engine: real CSRs out, real certificates in, checked for real."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from reconciler.sandbox.ca import CertificateAuthority
from reconciler.sandbox.engine import Engine
from reconciler.sandbox.problems import ApiProblem

from .test_engine_support import (
    CONTRACT,
    START,
    ack,
    assert_valid,
    ids,
    make_engine,
    run_until_input,
    status_of,
    third_party_body,
)

CUSTOMER_CA = CertificateAuthority("Customer CA", now=START - timedelta(days=1))


def _spki(key: Any) -> bytes:
    der: bytes = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def _waiting_for_upload(engine: Engine, body: dict[str, Any]) -> tuple[int, int, dict[str, str]]:
    eid, cid = ids(engine.create_enrollment(CONTRACT, body)[1])
    assert run_until_input(engine, eid, cid) == (
        "wait-upload-third-party",
        "awaiting-input",
        ["third-party-certificate"],
    )
    change = engine.get_change(eid, cid)
    assert change["allowedInput"][0]["requiredToProceed"] is True
    assert change["allowedInput"][0]["info"].endswith("/input/info/third-party-csr")
    assert change["allowedInput"][0]["update"].endswith("/input/update/third-party-cert-and-trust-chain")
    csrs = assert_valid("csr.v2", engine.get_input_info(eid, cid, "third-party-csr"))["csrs"]
    return eid, cid, {c["keyAlgorithm"]: c["csr"] for c in csrs}


def _upload(engine: Engine, eid: int, cid: int, items: list[dict[str, Any]]) -> dict[str, Any]:
    return engine.post_input_update(eid, cid, "third-party-cert-and-trust-chain", {"certificatesAndTrustChains": items})


def _signed(csrs: dict[str, str], days: int = 90, **kwargs: Any) -> list[dict[str, Any]]:
    items = []
    for algorithm, csr in csrs.items():
        leaf, chain = CUSTOMER_CA.sign_csr(csr, days=days, now=START, **kwargs)
        items.append({"keyAlgorithm": algorithm, "certificate": leaf, "trustChain": chain})
    return items


def test_dual_stack_third_party_from_create_to_deployed() -> None:
    engine = make_engine()
    body = third_party_body()
    eid, cid, csrs = _waiting_for_upload(engine, body)
    assert sorted(csrs) == ["ECDSA", "RSA"]
    requests = {alg: x509.load_pem_x509_csr(pem.encode()) for alg, pem in csrs.items()}
    rsa_key, ec_key = requests["RSA"].public_key(), requests["ECDSA"].public_key()
    assert isinstance(rsa_key, rsa.RSAPublicKey) and rsa_key.key_size == 2048
    assert isinstance(ec_key, ec.EllipticCurvePublicKey) and ec_key.curve.name == "secp256r1"
    for csr in requests.values():
        assert csr.is_signature_valid
        subject = {a.oid: a.value for a in csr.subject}
        assert subject[NameOID.COMMON_NAME] == "shop.example.com"
        assert subject[NameOID.ORGANIZATION_NAME] == "Example Inc"
        assert subject[NameOID.ORGANIZATIONAL_UNIT_NAME] == "Web"
        assert (subject[NameOID.COUNTRY_NAME], subject[NameOID.STATE_OR_PROVINCE_NAME]) == ("US", "MA")
        assert subject[NameOID.LOCALITY_NAME] == "Cambridge"
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sorted(sans.get_values_for_type(x509.DNSName)) == [
            "m.example.com",
            "pay.example.com",
            "shop.example.com",
        ]
    history = assert_valid("change-history.v5", engine.get_change_history(eid))["changes"][0]
    assert history["primaryCertificate"]["certificate"] is None and history["primaryCertificate"]["csr"]

    assert _upload(engine, eid, cid, _signed(csrs)) == {"change": f"/cps/v2/enrollments/{eid}/changes/{cid}"}
    assert status_of(engine, eid, cid) == ("verify-third-party-cert", "running", [])
    with pytest.raises(ApiProblem) as late:
        engine.get_input_info(eid, cid, "third-party-csr")
    assert late.value.status == 404
    with pytest.raises(ApiProblem) as twice:
        _upload(engine, eid, cid, _signed(csrs))
    assert (twice.value.status, twice.value.slug) == (409, "invalid-enrollment-state")

    assert run_until_input(engine, eid, cid)[0] == "wait-ack-change-management"
    info = assert_valid("change-management-info.v6", engine.get_input_info(eid, cid, "change-management-info"))
    assert [c["keyAlgorithm"] for c in info["pendingState"]["pendingCertificates"]] == ["RSA", "ECDSA"]
    assert {c["certificateType"] for c in info["pendingState"]["pendingCertificates"]} == {"third-party"}
    ack(engine, eid, cid, "change-management-ack")
    assert run_until_input(engine, eid, cid) == ("complete", "completed", [])

    production = assert_valid("deployment.v8", engine.get_deployment(eid, "production"))
    deployed = [production["primaryCertificate"], *production["multiStackedCertificates"]]
    assert [c["keyAlgorithm"] for c in deployed] == ["RSA", "ECDSA"]
    for cert in deployed:
        leaf = x509.load_pem_x509_certificate(cert["certificate"].encode())
        expected = rsa_key if cert["keyAlgorithm"] == "RSA" else ec_key
        assert _spki(leaf.public_key()) == _spki(expected)
        leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(cert["trustChain"].encode()))
        assert cert["signatureAlgorithm"] == "SHA-256"
    enrollment = assert_valid("enrollment.v12", engine.get_enrollment(eid))
    assert enrollment["autoRenewalStartTime"] is None  # third-party renewals are the customer's
    assert enrollment["signatureAlgorithm"] is None and enrollment["enableMultiStackedCertificates"] is True
    certs = assert_valid("certificate-history.v2", engine.get_certificate_history(eid))["certificates"]
    assert len(certs[0]["multiStackedCertificates"]) == 1


@pytest.mark.parametrize(("other_key", "sans", "code"), [
    (True, ["m.example.com", "pay.example.com"], "CSR_VS_CERTIFICATE_KEY_MISMATCH"),
    (False, ["m.example.com"], "CSR_VS_CERTIFICATE_MISSING_SAN_FROM_SAN_LIST_IN_CERTIFICATE"),
])
def test_a_key_or_name_mismatch_is_taken_and_stops_with_a_warning(other_key: bool, sans: list[str],
                                                                  code: str) -> None:
    """As CPS does: not a 400, but the change stops for review with the catalogue's code."""
    engine = make_engine()
    eid, cid, csrs = _waiting_for_upload(engine, third_party_body(multi=False))
    if other_key:
        key = rsa.generate_private_key(65537, 2048)
        leaf, chain = CUSTOMER_CA.issue(key.public_key(), "shop.example.com", sans, now=START)
    else:
        leaf, chain = CUSTOMER_CA.sign_csr(csrs["RSA"], now=START, sans=sans)
    _upload(engine, eid, cid, [{"keyAlgorithm": "RSA", "certificate": leaf, "trustChain": chain}])
    assert run_until_input(engine, eid, cid)[0] == "wait-review-third-party-cert"
    text = assert_valid("warnings.v1", engine.get_input_info(eid, cid, "post-verification-warnings"))["warnings"]
    assert any(line.startswith(f"RSA: {code}: ") for line in text.splitlines()), text


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"days": 30, "not_before": START - timedelta(days=60)}, "expired"),
        ({"not_before": START + timedelta(days=2)}, "not valid before"),
    ],
)
def test_unusable_certificates_are_refused(kwargs: dict[str, Any], fragment: str) -> None:
    engine = make_engine()
    eid, cid, csrs = _waiting_for_upload(engine, third_party_body(multi=False))
    leaf, chain = CUSTOMER_CA.sign_csr(csrs["RSA"], **{"now": START, **kwargs})
    with pytest.raises(ApiProblem) as refused:
        _upload(engine, eid, cid, [{"keyAlgorithm": "RSA", "certificate": leaf, "trustChain": chain}])
    assert refused.value.status == 400 and fragment in refused.value.detail


def test_an_ecdsa_upload_without_an_ecdsa_csr_is_refused() -> None:
    engine = make_engine()
    eid, cid, csrs = _waiting_for_upload(engine, third_party_body(multi=False))
    items = _signed(csrs)
    items[0]["keyAlgorithm"] = "ECDSA"
    with pytest.raises(ApiProblem) as refused:
        _upload(engine, eid, cid, items)
    assert refused.value.status == 400


def test_softer_findings_become_post_verification_warnings() -> None:
    engine = make_engine()
    eid, cid, csrs = _waiting_for_upload(engine, third_party_body(multi=False))
    leaf, _ = CUSTOMER_CA.sign_csr(
        csrs["RSA"], days=10, now=START, sans=["shop.example.com", "m.example.com", "pay.example.com", "x.example.com"]
    )
    _upload(engine, eid, cid, [{"keyAlgorithm": "RSA", "certificate": leaf, "trustChain": None}])
    assert run_until_input(engine, eid, cid) == (
        "wait-review-third-party-cert",
        "awaiting-input",
        ["post-verification-warnings-acknowledgement"],
    )
    text = assert_valid("warnings.v1", engine.get_input_info(eid, cid, "post-verification-warnings"))["warnings"]
    lines = text.splitlines()
    assert lines[0] == "[WARNINGS]"
    assert any("x.example.com" in line for line in lines)
    assert any(line.startswith("RSA: CERTIFICATE_EXPIRATION_TOO_SHORT: ") for line in lines)
    assert any(line.startswith("RSA: TRUST_CHAIN_EMPTY_AND_CERTIFICATE_SIGNED_BY_NON_STANDARD_ROOT: ") for line in lines)
    ack(engine, eid, cid, "post-verification-warnings-ack")
    assert run_until_input(engine, eid, cid)[0] == "wait-ack-change-management"
    staged = engine.get_deployment(eid, "staging")["primaryCertificate"]
    assert staged["trustChain"] is None


def test_a_chain_that_does_not_lead_to_the_leaf_is_a_warning() -> None:
    engine = make_engine()
    eid, cid, csrs = _waiting_for_upload(engine, third_party_body(multi=False))
    leaf, _ = CUSTOMER_CA.sign_csr(csrs["RSA"], now=START)
    unrelated = CertificateAuthority("Unrelated", now=START).intermediate_pem
    _upload(engine, eid, cid, [{"keyAlgorithm": "RSA", "certificate": leaf, "trustChain": unrelated}])
    assert run_until_input(engine, eid, cid)[0] == "wait-review-third-party-cert"
    assert "does not lead" in engine.get_input_info(eid, cid, "post-verification-warnings")["warnings"]


def test_exclude_sans_keeps_other_names_out_of_the_csr() -> None:
    engine = make_engine()
    body = third_party_body(multi=False, thirdParty={"excludeSans": True})
    eid, cid, csrs = _waiting_for_upload(engine, body)
    csr = x509.load_pem_x509_csr(csrs["RSA"].encode())
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["shop.example.com"]
    _upload(engine, eid, cid, _signed(csrs))  # covering the CN alone is enough
    assert status_of(engine, eid, cid)[0] == "verify-third-party-cert"


def test_a_chain_ending_in_a_non_standard_root_is_a_warning_and_a_standard_one_is_not() -> None:
    engine = make_engine()
    eid, cid, csrs = _waiting_for_upload(engine, third_party_body(multi=False))
    leaf, chain = CUSTOMER_CA.sign_csr(csrs["RSA"], now=START)
    _upload(engine, eid, cid, [{"keyAlgorithm": "RSA", "certificate": leaf, "trustChain": chain + CUSTOMER_CA.root_pem}])
    assert run_until_input(engine, eid, cid)[0] == "wait-review-third-party-cert"
    text = engine.get_input_info(eid, cid, "post-verification-warnings")["warnings"]
    assert "RSA: TRUST_CHAIN_TERMINATES_WITH_NON_STANDARD_CERTIFICATE: " in text
    # The sandbox's own CA plays the public ones: a chain ending in its root raises nothing.
    engine = make_engine()
    eid, cid, csrs = _waiting_for_upload(engine, third_party_body(multi=False))
    leaf, chain = engine.ca.sign_csr(csrs["RSA"], now=START)
    _upload(engine, eid, cid, [{"keyAlgorithm": "RSA", "certificate": leaf, "trustChain": chain + engine.ca.root_pem}])
    assert run_until_input(engine, eid, cid)[0] != "wait-review-third-party-cert"
