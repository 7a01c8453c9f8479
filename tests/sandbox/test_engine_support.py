"""Shared helpers for the engine tests: request bodies, a frozen-clock engine, workflow drivers,
and validation against the official CPS schemas (the copy the sandbox ships, on/off kept as
strings). The tests at the bottom check the helpers themselves."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from functools import cache
from typing import Any

from jsonschema import Draft4Validator

from reconciler.sandbox.ca import CertificateAuthority
from reconciler.sandbox.clock import VirtualClock
from reconciler.sandbox.engine import Engine, EngineConfig
from reconciler.sandbox.schemas import official_schemas, to_json_schema

START = datetime(2030, 1, 1, tzinfo=UTC)
CONTRACT = "1-TEST"


@cache
def validator(entity: str) -> Draft4Validator:
    """A validator for the newest version of a document the engine produces, from the official
    schemas the sandbox ships (test_conformance_schemas proves them equal to the reference tree)."""
    schema = copy.deepcopy(to_json_schema(official_schemas()[entity]))
    # CPS-API.md 12.2: the enrollment id is declared a string but is an integer on the wire.
    target = schema["properties"]["enrollments"]["items"] if entity.startswith("enrollments.") else schema
    if entity.startswith("enrollment"):
        target["properties"]["id"] = {"type": ["integer"]}
    if entity == "dv-challenges.v2":  # CPS-API.md 5.4: challenge statuses are lower-case ACME words
        status = schema["properties"]["dv"]["items"]["properties"]["challenges"]["items"]["properties"]["status"]
        status["enum"] = [*status["enum"], "pending", "processing", "valid", "invalid"]
    return Draft4Validator(schema)


def assert_valid(entity: str, body: Any) -> Any:
    errors = sorted(validator(entity).iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{entity}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    return body


def contact(first: str) -> dict[str, Any]:
    return {
        "firstName": first,
        "lastName": "Example",
        "title": "Engineer",
        "organizationName": "Example Inc",
        "email": f"{first.lower()}@example.com",
        "phone": "+1 555 0100",
        "addressLineOne": "1 Main Street",
        "addressLineTwo": None,
        "city": "Cambridge",
        "region": "MA",
        "postalCode": "02142",
        "country": "US",
    }


def dv_body(cn: str = "www.example.com", sans: list[str] | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ra": "lets-encrypt",
        "validationType": "dv",
        "certificateType": "san",
        "signatureAlgorithm": "SHA-256",
        "changeManagement": True,
        "enableMultiStackedCertificates": False,
        "csr": {"cn": cn, "sans": ["api.example.com"] if sans is None else sans, "c": "US", "o": "Example Inc"},
        "networkConfiguration": {
            "geography": "core",
            "secureNetwork": "enhanced-tls",
            "sniOnly": True,
            "quicEnabled": False,
            "mustHaveCiphers": "ak-akamai-2020q1",
            "preferredCiphers": "ak-akamai-2020q1",
            "disallowedTlsVersions": ["TLSv1", "TLSv1_1"],
        },
        "org": {
            "name": "Example Inc",
            "addressLineOne": "1 Main Street",
            "addressLineTwo": None,
            "city": "Cambridge",
            "region": "MA",
            "postalCode": "02142",
            "country": "US",
            "phone": "+1 555 0100",
        },
        "adminContact": contact("Ada"),
        "techContact": contact("Tim"),
    }
    body.update(overrides)
    return body


def third_party_body(
    cn: str = "shop.example.com", sans: list[str] | None = None, multi: bool = True, **overrides: Any
) -> dict[str, Any]:
    body = dv_body(cn, ["m.example.com", "pay.example.com"] if sans is None else sans)
    body.update(
        ra="third-party",
        validationType="third-party",
        certificateType="third-party",
        signatureAlgorithm=None,
        enableMultiStackedCertificates=multi,
        thirdParty={"excludeSans": False},
    )
    body["csr"].update(st="MA", l="Cambridge", ou="Web")
    body.update(overrides)
    return body


def make_engine(**config: Any) -> Engine:
    """An engine on a frozen clock (speed 0) at START; throttle off and DV acknowledgements
    trusted (``trust-ack``) unless asked for: these tests drive the workflow by acknowledging;
    the ones about validation by looking say ``validation_policy``."""
    config.setdefault("create_throttle_seconds", 0)
    config.setdefault("validation_policy", "trust-ack")
    clock = VirtualClock(speed=0, start=START)
    return Engine(EngineConfig(**config), clock, CertificateAuthority(now=START))


def ids(status: dict[str, Any]) -> tuple[int, int]:
    """(enrollment id, change id) from an enrollment-status.v1 body."""
    return int(status["enrollment"].rsplit("/", 1)[1]), int(status["changes"][0].rsplit("/", 1)[1])


def status_of(engine: Engine, eid: int, cid: int) -> tuple[str, str, list[str]]:
    change = assert_valid("change.v2", engine.get_change(eid, cid))
    info = change["statusInfo"]
    return info["status"], info["state"], [i["type"] for i in change["allowedInput"]]


def run_until_input(engine: Engine, eid: int, cid: int, limit: int = 300) -> tuple[str, str, list[str]]:
    """Advance the clock a minute at a time until the change waits for input or ends."""
    for _ in range(limit):
        status, state, inputs = status_of(engine, eid, cid)
        if state != "running":
            return status, state, inputs
        engine.advance(60)
    raise AssertionError(f"change {cid} still running: {status}")


def ack(engine: Engine, eid: int, cid: int, segment: str, answer: str = "acknowledge") -> None:
    out = engine.post_input_update(eid, cid, segment, {"acknowledgement": answer})
    assert_valid("change-id.v1", out)
    assert out == {"change": f"/cps/v2/enrollments/{eid}/changes/{cid}"}


def complete_dv(engine: Engine, eid: int, cid: int) -> None:
    """Drive a DV change from wherever it is to complete (acknowledging every step)."""
    for _ in range(20):
        status, state, inputs = run_until_input(engine, eid, cid)
        if state == "completed":
            return
        assert state == "awaiting-input", (status, state)
        segment = {
            "lets-encrypt-challenges": "lets-encrypt-challenges-completed",
            "pre-verification-warnings-acknowledgement": "pre-verification-warnings-ack",
            "post-verification-warnings-acknowledgement": "post-verification-warnings-ack",
            "change-management": "change-management-ack",
        }[inputs[0]]
        ack(engine, eid, cid, segment)
    raise AssertionError("change did not complete")


def copy_body(body: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(body)


# -- tests of the helpers ------------------------------------------------------------------------


def test_schema_loader_keeps_on_off_strings() -> None:
    schema = validator("deployment.v8").schema
    assert schema["properties"]["networkConfiguration"]["properties"]["ocspStapling"]["enum"] == [
        "on",
        "off",
        "not-set",
    ]


def test_schema_validator_rejects_a_wrong_document() -> None:
    assert list(validator("change-id.v1").iter_errors({"change": 5}))
    assert not list(validator("change-id.v1").iter_errors({"change": "/cps/v2/enrollments/1/changes/2"}))


def test_request_bodies_are_valid_v12_enrollments() -> None:
    assert_valid("enrollment.v12", dv_body())
    assert_valid("enrollment.v12", third_party_body())
