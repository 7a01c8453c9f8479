"""Spec-room fixtures: a minimal valid spec as a dict, for tests to vary."""

from __future__ import annotations

from typing import Any

import pytest

CONTACT = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1-555-0100"}
ORG = {"name": "Example Inc", "phone": "+1-555-0100", "address_line_one": "1 Main St", "city": "Cambridge",
       "region": "MA", "postal_code": "02142", "country_code": "US"}


def make_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "www-example-com", "type": "dv", "contract_id": "ctr_1-ABC",
        "common_name": "www.example.com", "sans": ["example.com"],
        "admin_contact": dict(CONTACT), "tech_contact": dict(CONTACT), "organization": dict(ORG),
    }
    spec.update(overrides)
    return spec


@pytest.fixture(name="make_spec")
def make_spec_fixture() -> Any:
    """Factory: ``make_spec(**overrides)`` -> a fresh, valid DV spec dict."""
    return make_spec
