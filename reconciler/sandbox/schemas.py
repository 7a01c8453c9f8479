"""The official CPS schemas the sandbox serves, and request-body validation against them.

``cps_schemas.json`` (next to this module) holds, per media type the sandbox serves, the schema
from Akamai's published OpenAPI definitions with ``$ref``s inlined and prose stripped. It is
generated from the reference tree by ``python -m reconciler.sandbox.schemas CPS_V2_DIR`` and a
test checks that it still matches the reference. The files are OpenAPI 3.0 schemas; request
validation converts them to JSON Schema (``nullable`` becomes a ``null`` type, and a ``null``
enum member) so that ``jsonschema`` can check them.
"""

from __future__ import annotations

import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

SCHEMA_FILE = Path(__file__).with_name("cps_schemas.json")

# media type -> schema file, relative to the cps-v2 reference directory: every version the
# definitions ship a schema for (``versions.SCHEMA_OF`` maps declared versions without one).
_LATEST = {"enrollment.v12", "enrollments.v12", "deployment.v8", "deployments.v8", "change-management-info.v6"}
_VERSIONS = {
    "enrollment": (1, 2, 3, 4, 7, 9, 10, 11, 12), "enrollments": (1, 2, 3, 4, 7, 9, 10, 11, 12),
    "enrollment-status": (1,), "change": (1, 2), "change-id": (1,), "deployment": (1, 2, 3, 6, 7, 8),
    "deployments": (1, 2, 3, 6, 7, 8), "deployment-schedule": (1,), "change-management-info": (1, 2, 4, 5, 6),
    "dv-challenges": (1, 2), "csr": (1, 2), "certificate-and-trust-chain": (1, 2), "warnings": (1,),
    "acknowledgement": (1,), "acknowledgement-with-hash": (1,), "change-history": (3, 5),
    "certificate-history": (1, 2), "dv-history": (1,),
}
SOURCES: dict[str, str] = {
    f"{entity}.v{n}": f"{'latest-parts/' if f'{entity}.v{n}' in _LATEST else ''}schemas/{entity}.v{n}.yaml"
    for entity, numbers in _VERSIONS.items() for n in numbers
}
SOURCES["problem"] = "latest-parts/schemas/problem.yaml"

_PROSE = {"description", "example", "examples", "x-akamai", "externalDocs", "title"}


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML reads ``on``/``off``/``yes``/``no`` as booleans (YAML 1.1); the CPS files mean strings."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _strip(node: Any, in_properties: bool = False) -> Any:
    if isinstance(node, dict):
        return {
            key: _strip(value, in_properties=(key == "properties" and not in_properties))
            for key, value in node.items()
            if in_properties or key not in _PROSE
        }
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def _load_resolved(path: Path) -> Any:
    def resolve(node: Any, base: Path) -> Any:
        if isinstance(node, dict):
            if set(node) == {"$ref"}:
                target = (base.parent / node["$ref"]).resolve()
                return resolve(yaml.load(target.read_text(encoding="utf-8"), Loader=_Yaml12Loader), target)
            return {key: resolve(value, base) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item, base) for item in node]
        return node

    return resolve(yaml.load(path.read_text(encoding="utf-8"), Loader=_Yaml12Loader), path)


def build_from_reference(reference_dir: Path) -> dict[str, Any]:
    """Read the served schemas out of an official ``cps-v2`` tree (the generator of SCHEMA_FILE)."""
    return {
        name: _strip(_load_resolved(reference_dir / relative)) for name, relative in sorted(SOURCES.items())
    }


@cache
def official_schemas() -> dict[str, Any]:
    """The vendored OpenAPI 3.0 schemas, keyed by ``<entity>.v<N>`` (and ``problem``)."""
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema draft 4 (``nullable`` admits ``null``, also in enums)."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: to_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _request_schema(entity_version: str) -> dict[str, Any]:
    schema: dict[str, Any] = to_json_schema(official_schemas()[entity_version])
    if entity_version.startswith("enrollment."):
        # Clients PUT what they GET, and the id is an integer on the wire although the definition
        # says string (CPS-API.md section 12.2).
        schema["properties"]["id"] = {"type": ["string", "integer", "null"]}
    return schema


@cache
def _validator(entity_version: str) -> Draft4Validator:
    return Draft4Validator(_request_schema(entity_version))


def validate_request(entity_version: str, body: Any) -> str | None:
    """Check a request body against the schema of its Content-Type version.

    Returns ``None`` when valid, else one message naming the failing location, like
    ``networkConfiguration.sniOnly: 'yes' is not of type 'boolean'``.
    """
    error = best_match(_validator(entity_version).iter_errors(body))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


def main(argv: list[str]) -> int:
    """Regenerate SCHEMA_FILE from a reference tree: ``python -m reconciler.sandbox.schemas DIR``."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m reconciler.sandbox.schemas CPS_V2_DIR\n")
        return 2
    data = build_from_reference(Path(argv[0]))
    SCHEMA_FILE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
