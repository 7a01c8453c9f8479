"""JSON Schemas for editors (yaml-language-server) and CI, generated from the pydantic models.

The spec schema accepts a document holding one enrollment or a list of them. Fields that
reconcile.yaml ``defaults`` can supply (contacts, organization, contract, ...) are not marked
required, because a spec relying on shared defaults is complete only after merging; only
``name``, ``type`` and ``common_name`` are. ``reconcile validate`` checks the merged result.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from reconciler.config import Config
from reconciler.spec.models import DvEnrollmentSpec, EnrollmentSpec, ThirdPartyEnrollmentSpec

__all__ = ["config_json_schema", "spec_json_schema"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
ALWAYS_REQUIRED = ("name", "type", "common_name")


def spec_json_schema() -> dict[str, Any]:
    """Schema of one spec file document: an enrollment or a list of enrollments."""
    adapter: TypeAdapter[Any] = TypeAdapter(EnrollmentSpec | list[EnrollmentSpec])  # type: ignore[operator,arg-type]
    schema = adapter.json_schema()
    for model in (DvEnrollmentSpec, ThirdPartyEnrollmentSpec):
        definition = schema.get("$defs", {}).get(model.__name__)
        if definition is not None:
            definition["required"] = [f for f in definition.get("required", []) if f in ALWAYS_REQUIRED]
    return {"$schema": DRAFT, "title": "cps-reconciler enrollment spec",
            "description": "One enrollment (type dv or third-party) or a list of them. "
                           "Files are jinja2 templates rendered before parsing.", **schema}


def config_json_schema() -> dict[str, Any]:
    """Schema of reconcile.yaml (``root`` and ``file`` are implied by its location)."""
    schema = Config.model_json_schema()
    for implied in ("root", "file"):
        schema.get("properties", {}).pop(implied, None)
    schema["required"] = [r for r in schema.get("required", []) if r not in ("root", "file")]
    if not schema["required"]:
        del schema["required"]
    return {"$schema": DRAFT, "title": "cps-reconciler reconcile.yaml", **schema}
