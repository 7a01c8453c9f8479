from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.spec.hints import closest, describe_validation_error, model_at
from reconciler.spec.models import (
    ClientMutualAuthentication,
    Contact,
    DvEnrollmentSpec,
    NetworkConfiguration,
    ThirdPartyEnrollmentSpec,
)


def test_closest() -> None:
    assert closest("sni_onyl", ["sni_only", "sans"]) == "sni_only"
    assert closest("zzz", ["sni_only", "sans"]) is None
    assert closest("SANS", ["sans"]) == "sans"


def test_model_at_walks_optional_and_nested_models() -> None:
    assert model_at(DvEnrollmentSpec, ("admin_contact",)) is Contact
    assert model_at(DvEnrollmentSpec, ("network_configuration",)) is NetworkConfiguration
    assert model_at(DvEnrollmentSpec, ("network_configuration", "client_mutual_authentication")) \
        is ClientMutualAuthentication
    assert model_at(DvEnrollmentSpec, ("sans", 0)) is None and model_at(DvEnrollmentSpec, ("nope",)) is None


def _messages(model: Any, data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return {".".join(map(str, loc)): msg for loc, msg in describe_validation_error(info.value, model)}


def test_messages(make_spec: Any) -> None:
    spec = make_spec(sni_only=[1], sans=["ok.example.com", 5], geography=None, csrr={},
                     network_configuration={"quic_enabled": "perhaps", "ocsp_stapling": "of"}, signer={})
    spec["admin_contact"]["phone"] = True
    messages = _messages(DvEnrollmentSpec, spec)
    assert messages["sni_only"] == "expected true or false, got a list"
    assert messages["sans.1"].startswith("expected text, got a number")
    assert messages["geography"] == "nothing (null) is not one of: core, china+core, russia+core"
    assert messages["csrr"] == "unknown field 'csrr'; did you mean 'csr'?"
    assert messages["network_configuration.quic_enabled"] == "expected true or false, got 'perhaps'"
    assert messages["network_configuration.ocsp_stapling"].endswith("did you mean 'off'?")
    assert messages["signer"] == "unknown field 'signer' (only third-party enrollments have it)"
    assert messages["admin_contact.phone"] == "expected text, got the boolean true; quote the value in YAML"


def test_missing_and_wrong_container(make_spec: Any) -> None:
    spec = make_spec(type="third-party", organization="Example", certificates={"rsa": {}})
    del spec["common_name"]
    messages = _messages(ThirdPartyEnrollmentSpec, spec)
    assert messages["common_name"] == "required field is missing"
    assert messages["organization"] == "expected a mapping of fields, got 'Example'"
    assert messages["certificates.rsa.certificate"] == "required field is missing"
