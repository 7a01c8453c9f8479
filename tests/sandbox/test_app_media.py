"""Media negotiation and down-conversion, and request-body validation, as pure functions."""

from __future__ import annotations

import pytest

from reconciler.sandbox import media
from reconciler.sandbox.problems import ApiProblem
from reconciler.sandbox.schemas import official_schemas, validate_request
from reconciler.sandbox.versions import schema_version

V = media.media_type


def test_accept_picks_the_version_asked_for() -> None:
    assert media.negotiate_accept(V("enrollment.v11"), media.ENROLLMENT) == "enrollment.v11"
    assert media.negotiate_accept(V("enrollment.v12"), media.ENROLLMENT) == "enrollment.v12"


def test_accept_tolerates_parameters_case_and_lists() -> None:
    header = f"application/json, {V('enrollment.v11').upper()}; charset=utf-8, {V('enrollment.v12')}"
    assert media.negotiate_accept(header, media.ENROLLMENT) == "enrollment.v11"


@pytest.mark.parametrize("header", [None, "", "*/*", "application/json", V("enrollment.v0"),
                                    V("enrollment.v13"), V("enrollments.v12")])
def test_unserved_accept_is_406(header: str | None) -> None:
    with pytest.raises(ApiProblem) as caught:
        media.negotiate_accept(header, media.ENROLLMENT)
    assert caught.value.status == 406
    assert V("enrollment.v12") in caught.value.detail


def test_content_type_with_charset_is_accepted_and_unserved_is_415() -> None:
    assert media.negotiate_content_type(V("enrollment.v11") + "; charset=utf-8", media.ENROLLMENT) == "enrollment.v11"
    for header in (None, "application/json", V("enrollment.v13")):
        with pytest.raises(ApiProblem) as caught:
            media.negotiate_content_type(header, media.ENROLLMENT)
        assert caught.value.status == 415


def test_served_set_is_exactly_the_contract() -> None:
    # Every version the official definitions declare (headers/, the operation definitions, the
    # published schemas); tests/sandbox/test_conformance_versions.py drives each one.
    def family(entity: str, *numbers: int) -> set[str]:
        return {f"{entity}.v{n}" for n in numbers}

    assert media.ALL_SERVED == (
        family("enrollment", *range(1, 13)) | family("enrollments", *range(1, 13)) | family("change", 1, 2, 3, 4, 5)
        | family("deployment", 3, 6, 7, 8) | family("deployments", *range(1, 9))
        | family("change-management-info", 1, 2, 4, 5, 6) | family("dv-challenges", 1, 2) | family("csr", 1, 2)
        | family("certificate-and-trust-chain", 1, 2) | family("change-history", 1, 2, 3, 4, 5)
        | family("certificate-history", 1, 2)
        | {"warnings.v1", "acknowledgement.v1", "acknowledgement-with-hash.v1", "dv-history.v1",
           "deployment-schedule.v1", "enrollment-status.v1", "change-id.v1"})
    assert {schema_version(v) for v in media.ALL_SERVED} <= set(official_schemas())


def test_down_conversion_fits_the_older_schema_without_touching_the_original() -> None:
    enrollment = {"id": 1, "networkConfiguration": {"fipsMode": True, "sniOnly": True}}
    assert media.convert(enrollment, "enrollment.v11") == {"id": 1, "networkConfiguration": {"sniOnly": True}}
    assert enrollment["networkConfiguration"]["fipsMode"] is True  # type: ignore[index]
    assert media.convert(enrollment, "enrollment.v12") is enrollment
    listing = {"enrollments": [enrollment, enrollment]}
    assert all("fipsMode" not in e["networkConfiguration"]
               for e in media.convert(listing, "enrollments.v11")["enrollments"])
    info = {"pendingState": {"pendingNetworkConfiguration": {"fipsMode": None, "sniOnly": True,
                                                             "dnsNameSettings": {"dnsNames": None}}}}
    # v5 cannot say dnsNames: null (v6 made it nullable): left out.
    assert media.convert(info, "change-management-info.v5")["pendingState"]["pendingNetworkConfiguration"] == {
        "sniOnly": True, "dnsNameSettings": {}}
    change = {"statusInfo": None, "allowedInput": []}
    assert media.convert(change, "change.v1") == change


def test_request_validation_names_the_failing_field() -> None:
    assert validate_request("acknowledgement.v1", {"acknowledgement": "acknowledge"}) is None
    message = validate_request("acknowledgement.v1", {"acknowledgement": "maybe"})
    assert message is not None and message.startswith("acknowledgement: 'maybe' is not one of")
    assert validate_request("acknowledgement.v1", {"acknowledgement": "deny", "extra": 1}) is not None
    assert validate_request("deployment-schedule.v1", {"notBefore": None, "notAfter": None}) is None


def test_enrollment_validation_keeps_on_off_strings_and_admits_integer_ids() -> None:
    body = {"id": 10000, "ra": "lets-encrypt", "validationType": "dv", "certificateType": "san",
            "changeManagement": False, "enableMultiStackedCertificates": False, "signatureAlgorithm": None,
            "csr": {"cn": "www.example.com"},
            "networkConfiguration": {"geography": "core", "quicEnabled": False, "secureNetwork": "enhanced-tls",
                                     "sniOnly": True, "ocspStapling": "on"}}
    assert validate_request("enrollment.v12", body) is None
    body["networkConfiguration"]["ocspStapling"] = True  # type: ignore[index]
    assert "ocspStapling" in (validate_request("enrollment.v12", body) or "")
