"""JSON Schema -> Markdown: one section per object, one table row per field.

Used for every schema-shaped reference page (spec fields, reconcile.yaml, plan JSON keys, state
format), so they all read alike. A field row says its type, its default (``required`` when it has
none), its description and an example; the example is the schema's ``examples[0]``, else its
default, else its first allowed value, else blank
(and blank when it would only repeat the default). Object types link to their own section.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

Schema = dict[str, Any]


def prose(text: str) -> str:
    """One line of Markdown: angle brackets escaped outside `code spans` (they are literal there)."""
    parts = " ".join(text.split()).split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(parts))


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped, angle brackets as in prose."""
    return prose(text).replace("|", "\\|")


def code(value: Any) -> str:
    """A value as YAML flow in backticks (how it is written in a spec), safe in a table."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return "`" + text.replace("|", "\\|") + "`"


def anchor(name: str) -> str:
    """The id Python-Markdown's toc gives a heading that is just ``name``."""
    return "".join(ch for ch in name.lower() if ch.isalnum() or ch in "-_")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(prop: Schema) -> str:
    """A short, human type: ``string``, ``list of string``, ``[Contact](#contact) or null``..."""
    if "$ref" in prop:
        name = _ref_name(prop["$ref"])
        return f"[{name}](#{anchor(name)})"
    if "const" in prop:
        return code(prop["const"])
    if "enum" in prop:
        return " \\| ".join(code(v) for v in prop["enum"])
    if "oneOf" in prop or "anyOf" in prop:
        options = prop.get("oneOf") or prop.get("anyOf") or []
        return " or ".join(dict.fromkeys(type_of(o) for o in options))
    kind = prop.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array":
        items = prop.get("items")
        if isinstance(items, dict) and items:
            return f"list of {type_of(items)}"
        if "prefixItems" in prop:
            return "list"
        return "list"
    if kind == "object":
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"mapping of {type_of(extra)}"
        return "mapping"
    text = str(kind or "any")
    bounds = [f"{word} {prop[key]}" for key, word in (("minimum", "≥"), ("exclusiveMinimum", ">"),
                                                      ("maximum", "≤"), ("exclusiveMaximum", "<"))
              if key in prop]
    if "format" in prop:
        text += f" ({prop['format']})"
    if bounds:
        text += " (" + ", ".join(bounds) + ")"
    return text


def example_of(prop: Schema) -> str:
    if prop.get("examples"):
        return code(prop["examples"][0])
    if prop.get("default") is not None:
        return code(prop["default"])
    if prop.get("enum"):
        return code(prop["enum"][0])
    if "const" in prop:
        return code(prop["const"])
    return ""


def default_of(prop: Schema, required: bool) -> str:
    if required:
        return "required"
    if "default" not in prop:
        return "—"
    if prop["default"] is None:
        return "none"
    return code(prop["default"])


def refs_in(node: Any) -> Iterable[str]:
    """Every ``$ref`` name below ``node``, in document order."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield _ref_name(node["$ref"])
        for value in node.values():
            yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def object_table(obj: Schema) -> list[str]:
    lines = ["| field | type | default | description | example |", "|---|---|---|---|---|"]
    required = set(obj.get("required", ()))
    for name, prop in obj.get("properties", {}).items():
        description = prop.get("description") or ""
        default = default_of(prop, name in required)
        example = example_of(prop)
        lines.append(f"| `{name}` | {type_of(prop)} | {default} | {cell(description)} | "
                     f"{'' if example == default else example} |")
    return lines


def render_objects(schema: Schema, roots: list[tuple[str, Schema]]) -> list[str]:
    """Sections for ``roots`` (heading, object) and every definition they reach, breadth first."""
    defs: dict[str, Schema] = schema.get("$defs", {})
    queue = list(roots)
    seen = {title for title, _ in roots}
    lines: list[str] = []
    while queue:
        title, obj = queue.pop(0)
        lines += [f"## {title}", ""]
        if obj.get("description"):
            lines += [" ".join(obj["description"].split()), ""]
        if obj.get("properties"):
            lines += [*object_table(obj), ""]
        else:
            lines += [f"Type: {type_of(obj)}.", ""]
        for name in refs_in(obj.get("properties", {})):
            if name not in seen and name in defs:
                seen.add(name)
                queue.append((name, defs[name]))
    return lines
