"""The schemas shipped with the sandbox are the official ones, faithfully read."""

from __future__ import annotations

import pytest

from reconciler.sandbox.schemas import SOURCES, build_from_reference, official_schemas
from tests.reference import CPS_V2

REFERENCE = CPS_V2


@pytest.mark.skipif(not (REFERENCE / "openapi.json").is_file(), reason="CPS reference tree not available")
def test_shipped_schemas_match_the_reference_tree() -> None:
    assert build_from_reference(REFERENCE) == official_schemas(), (
        "reconciler/sandbox/cps_schemas.json is stale: run python -m reconciler.sandbox.schemas " + str(REFERENCE))


def test_every_source_is_shipped_and_on_off_stayed_strings() -> None:
    schemas = official_schemas()
    assert set(schemas) == set(SOURCES)
    for name in ("enrollment.v11", "enrollment.v12"):
        ocsp = schemas[name]["properties"]["networkConfiguration"]["properties"]["ocspStapling"]
        assert ocsp["enum"] == ["on", "off", "not-set"]


def test_prose_is_stripped_but_properties_named_like_keywords_survive() -> None:
    change = official_schemas()["change.v2"]
    assert "description" not in change
    assert "description" in change["properties"]["statusInfo"]["properties"]
    assert official_schemas()["problem"]["required"] == ["type", "title", "detail", "instance"]
    assert "title" in official_schemas()["problem"]["properties"]
