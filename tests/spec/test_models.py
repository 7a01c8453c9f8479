from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from reconciler.spec.models import DvEnrollmentSpec, EnrollmentSpec, ThirdPartyEnrollmentSpec

ANY_SPEC: TypeAdapter[Any] = TypeAdapter(EnrollmentSpec)


def test_defaults_and_normalisation(make_spec: Any) -> None:
    spec = ANY_SPEC.validate_python(make_spec(common_name="WWW.Example.com", sans=["Bücher.example.com"]))
    assert isinstance(spec, DvEnrollmentSpec)
    assert spec.common_name == "www.example.com"
    # unicode becomes punycode; the CN is appended (never prepended, so user indices stay put)
    assert spec.sans == ["xn--bcher-kva.example.com", "www.example.com"]
    assert spec.secure_network == "enhanced-tls" and spec.sni_only is True and spec.geography == "core"
    assert spec.validation.method == "dns-01" and spec.validation.publisher == "manual"
    assert spec.network_configuration.disallowed_tls_versions == ["TLSv1", "TLSv1_1"]
    assert spec.signature_algorithm == "SHA-256"


def test_common_name_is_added_when_sans_is_omitted(make_spec: Any) -> None:
    data = make_spec()
    del data["sans"]
    assert ANY_SPEC.validate_python(data).sans == ["www.example.com"]


def test_third_party_default_certificate_paths_follow_name_and_dual_stack(make_spec: Any) -> None:
    spec = ANY_SPEC.validate_python(make_spec(type="third-party", name="shop"))
    assert isinstance(spec, ThirdPartyEnrollmentSpec)
    assert spec.dual_stack is True
    assert spec.certificates.rsa is not None and spec.certificates.rsa.certificate == "certs/shop/rsa.pem"
    assert spec.certificates.ecdsa is not None and spec.certificates.ecdsa.trust_chain == "certs/shop/ecdsa-chain.pem"
    single = ThirdPartyEnrollmentSpec.model_validate(make_spec(type="third-party", name="shop", dual_stack=False))
    assert single.certificates.ecdsa is None


def test_unknown_field_is_an_error(make_spec: Any) -> None:
    with pytest.raises(ValidationError) as info:
        DvEnrollmentSpec.model_validate(make_spec(sni_onyl=True))
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_validation_is_dv_only_and_signer_third_party_only(make_spec: Any) -> None:
    with pytest.raises(ValidationError):
        ThirdPartyEnrollmentSpec.model_validate(make_spec(type="third-party", validation={"method": "dns-01"}))
    with pytest.raises(ValidationError):
        DvEnrollmentSpec.model_validate(make_spec(signer={"command": "x"}))


def test_ocsp_stapling_accepts_yaml_booleans(make_spec: Any) -> None:
    spec = DvEnrollmentSpec.model_validate(make_spec(network_configuration={"ocsp_stapling": False}))
    assert spec.network_configuration.ocsp_stapling == "off"


@pytest.mark.parametrize("field,value", [
    ("name", "Not A Slug"), ("common_name", "exa mple.com"), ("sans", ["a..example.com"]),
    ("secure_network", "enhanced"), ("geography", "mars"),
])
def test_bad_values_rejected(make_spec: Any, field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        ANY_SPEC.validate_python(make_spec(**{field: value}))


def test_bad_email_rejected(make_spec: Any) -> None:
    spec = make_spec()
    spec["admin_contact"]["email"] = "not-an-email"
    with pytest.raises(ValidationError, match="not a valid email"):
        ANY_SPEC.validate_python(spec)


def test_models_are_frozen(make_spec: Any) -> None:
    spec = ANY_SPEC.validate_python(make_spec())
    with pytest.raises(ValidationError):
        spec.name = "other"
