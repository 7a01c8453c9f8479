"""Fixtures for the CPS client tests: official request schemas and enrollment bodies.

Request schemas come from Akamai's published definitions: ``openapi.json`` (request bodies per
media type) and ``latest-parts/schemas/enrollment.v12.yaml``, read from the reference tree when it
is present (``tests/reference.py``: ../shared/reference beside the repository), else from the copy the
sandbox ships (``reconciler/sandbox/cps_schemas.json``, generated from the same files and checked
against them by the sandbox's tests), so a clean clone still validates.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from tests.reference import CPS_V2

REFERENCE = CPS_V2
SHIPPED = Path(__file__).resolve().parents[2] / "reconciler" / "sandbox" / "cps_schemas.json"
PREFIX = "application/vnd.akamai.cps."


class _Yaml12(yaml.SafeLoader):
    """Keeps ``on``/``off`` strings (PyYAML's YAML 1.1 resolver makes them booleans)."""


_Yaml12.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _short(media_type: str) -> str:
    return media_type.split(";")[0].strip().removeprefix(PREFIX).removesuffix("+json")


@cache
def _reference_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    spec = json.loads((REFERENCE / "openapi.json").read_text())
    for operations in spec["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                for media, content in operation["requestBody"]["content"].items():
                    schemas.setdefault(_short(media), content["schema"])
    with (REFERENCE / "latest-parts/schemas/enrollment.v12.yaml").open() as handle:
        schemas["enrollment.v12"] = yaml.load(handle, Loader=_Yaml12)  # noqa: S506 - a SafeLoader subclass
    return schemas


@cache
def request_schema(media_type: str) -> dict[str, Any]:
    name = _short(media_type)
    if (REFERENCE / "openapi.json").is_file():
        return copy.deepcopy(_reference_schemas()[name])
    return copy.deepcopy(json.loads(SHIPPED.read_text())[name])


def validate_request_body(media_type: str, body: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` fits the official schema."""
    OAS30Validator(request_schema(media_type)).validate(body)


@pytest.fixture
def validate_body() -> Callable[[str, Any], None]:
    return validate_request_body


def contact(first: str) -> dict[str, Any]:
    return {"firstName": first, "lastName": "Example", "title": "Engineer", "organizationName": "Example Inc",
            "email": f"{first.lower()}@example.com", "phone": "+1-617-555-0100", "addressLineOne": "1 Main St",
            "addressLineTwo": None, "city": "Cambridge", "region": "MA", "postalCode": "02142",
            "country": "US"}


def dv_body(cn: str = "www.example.com", sans: list[str] | None = None, **overrides: Any) -> dict[str, Any]:
    """A complete DV enrollment body (enrollment.v12), as the spec mapping would build it."""
    body: dict[str, Any] = {
        "ra": "lets-encrypt", "validationType": "dv", "certificateType": "san",
        "changeManagement": False, "enableMultiStackedCertificates": False,
        "signatureAlgorithm": "SHA-256", "certificateChainType": "default",
        "csr": {"cn": cn, "sans": sans if sans is not None else [cn], "c": "US", "st": "MA",
                "l": "Cambridge", "o": "Example Inc", "ou": "Web", "preferredTrustChain": None},
        "org": {"name": "Example Inc", "addressLineOne": "1 Main St", "addressLineTwo": None,
                "city": "Cambridge", "region": "MA", "postalCode": "02142", "country": "US",
                "phone": "+1-617-555-0100"},
        "adminContact": contact("Ada"), "techContact": contact("Tim"),
        "networkConfiguration": {"geography": "core", "secureNetwork": "enhanced-tls", "sniOnly": True,
                                 "quicEnabled": False, "disallowedTlsVersions": ["TLSv1", "TLSv1_1"],
                                 "mustHaveCiphers": "ak-akamai-2020q1", "preferredCiphers": "ak-akamai-2020q1",
                                 "ocspStapling": "on",
                                 "dnsNameSettings": {"cloneDnsNames": True, "dnsNames": None}},
    }
    body.update(overrides)
    return body


def third_party_body(cn: str = "shop.example.com", sans: list[str] | None = None, *,
                     dual_stack: bool = True, **overrides: Any) -> dict[str, Any]:
    """A complete third-party enrollment body (enrollment.v12)."""
    body = dv_body(cn, sans, ra="third-party", validationType="third-party", certificateType="third-party",
                   enableMultiStackedCertificates=dual_stack, thirdParty={"excludeSans": False},
                   changeManagement=True)
    # CPS reads these back as null for third-party, but the schema's enums (OpenAPI 3.0, nullable
    # without null in the enum) refuse a null, so a strict request leaves them out.
    body.pop("signatureAlgorithm")
    body["csr"].pop("preferredTrustChain")
    body.update(overrides)
    return body
