"""Warning texts -> codes, and the acknowledge-or-wait decision."""

from __future__ import annotations

from reconciler.apply.warnings import decide, parse_warnings

POST = (
    "[WARNINGS]\n"
    "RSA: The certificate expires on 2030-01-01, in less than 30 days.\n"
    "ECDSA: The end-entity certificate is included in the trust chain.\n"
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
)


def test_codes_from_prose_explicit_and_bracketed() -> None:
    parsed = parse_warnings(POST)
    assert [w.code for w in parsed] == ["CERTIFICATE_EXPIRATION_TOO_SHORT", "END_ENTITY_CERT_IN_TRUST_CHAIN"]
    assert parsed[0].text.startswith("RSA: ")
    explicit = parse_warnings("SNI_DNS_OVERLAP: names overlap\n[OVERLAPPING_TRAFFIC_CLASS] traffic class\n")
    assert [w.code for w in explicit] == ["SNI_DNS_OVERLAP", "OVERLAPPING_TRAFFIC_CLASS"]
    sans = parse_warnings("SANs removed from the certificate require acknowledgement: a.example.com.")
    assert sans[0].code == "SANS_REMOVED_REQUIRE_ACKNOWLEDGEMENT"
    assert parse_warnings("Review the names being provisioned (x) before the change proceeds.")[0].code is None
    assert parse_warnings("") == [] and parse_warnings(None) == []


def test_decision() -> None:
    assert decide(POST, acknowledge_all=True, auto_approve=[]).acknowledge
    partial = decide(POST, acknowledge_all=False, auto_approve=["CERTIFICATE_EXPIRATION_TOO_SHORT"])
    assert not partial.acknowledge and [w.code for w in partial.blocking] == ["END_ENTITY_CERT_IN_TRUST_CHAIN"]
    both = decide(POST, acknowledge_all=False,
                  auto_approve=["CERTIFICATE_EXPIRATION_TOO_SHORT", "END_ENTITY_CERT_IN_TRUST_CHAIN"])
    assert both.acknowledge and not both.blocking
    unknown = decide("Something odd happened.", acknowledge_all=False, auto_approve=["ANY"])
    assert not unknown.acknowledge and unknown.blocking[0].code is None


def test_a_warning_shows_its_code_once() -> None:
    explicit, bracketed, prose, keyed, unknown = parse_warnings(
        "SANS_REMOVED_REQUIRE_ACKNOWLEDGEMENT: SANs removed: a.example.com\n"
        "[OVERLAPPING_TRAFFIC_CLASS] traffic class\n"
        "SANs removed from the certificate require acknowledgement: b.example.com.\n"
        "RSA: The end-entity certificate is included in the trust chain.\n"
        "Something odd happened.\n")
    assert str(explicit) == "SANS_REMOVED_REQUIRE_ACKNOWLEDGEMENT: SANs removed: a.example.com"
    assert str(bracketed) == "[OVERLAPPING_TRAFFIC_CLASS] traffic class"
    assert str(prose) == ("SANS_REMOVED_REQUIRE_ACKNOWLEDGEMENT: SANs removed from the certificate require "
                          "acknowledgement: b.example.com.")
    assert str(keyed) == "END_ENTITY_CERT_IN_TRUST_CHAIN: RSA: The end-entity certificate is included in the trust chain."
    assert str(unknown) == "UNRECOGNISED: Something odd happened."


def test_a_key_mismatch_or_missing_san_is_never_acknowledged_by_policy() -> None:
    from reconciler.apply.warnings import decide

    for line in ("RSA: CSR_VS_CERTIFICATE_KEY_MISMATCH: The public key of the certificate does not match.",
                 "ECDSA: CSR_VS_CERTIFICATE_MISSING_SAN_FROM_SAN_LIST_IN_CERTIFICATE: names left out: a.example.com",
                 "The public key of the certificate does not match the key of the CSR."):
        text = f"[WARNINGS]\n{line}\nCERTIFICATE_EXPIRATION_TOO_SHORT: soon\n"
        everything = ["CSR_VS_CERTIFICATE_KEY_MISMATCH", "CSR_VS_CERTIFICATE_MISSING_SAN_FROM_SAN_LIST_IN_CERTIFICATE",
                      "CERTIFICATE_EXPIRATION_TOO_SHORT"]
        decision = decide(text, acknowledge_all=True, auto_approve=everything)
        assert not decision.acknowledge
        assert [w.code for w in decision.blocking] in (["CSR_VS_CERTIFICATE_KEY_MISMATCH"],
                                                       ["CSR_VS_CERTIFICATE_MISSING_SAN_FROM_SAN_LIST_IN_CERTIFICATE"])
    assert decide("[WARNINGS]\nCERTIFICATE_EXPIRATION_TOO_SHORT: soon\n", acknowledge_all=True, auto_approve=[]).acknowledge
