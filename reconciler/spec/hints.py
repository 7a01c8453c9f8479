"""Turning pydantic errors into messages for the person editing the YAML, with "did you mean".

``describe_validation_error`` maps each pydantic error to ``(path, message)``; the caller adds
the file and line. Messages name what was found and what would be accepted.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.spec.models import SPEC_TYPES
from reconciler.spec.yamlsource import shorten

__all__ = ["closest", "describe_validation_error", "model_at"]


def closest(word: str, options: typing.Iterable[str]) -> str | None:
    """The most similar option, if any is reasonably close (difflib ratio >= 0.6)."""
    if len(word) > 64:  # difflib is quadratic; no option is that long anyway
        return None
    matches = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    if not matches and word.lower() != word:
        matches = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _hint(word: str, options: typing.Iterable[str]) -> str:
    match = closest(word, options)
    return f"; did you mean {match!r}?" if match else ""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    if typing.get_origin(annotation) is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            found.extend(_models_in(arg))
    return found


def model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc`` (list indices are skipped)."""
    current: type[BaseModel] = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return None
        nested = _models_in(field.annotation)
        if not nested:
            return None
        current = nested[0]
    return current


_BOUNDS = {"greater_than": ("greater than", "gt"), "greater_than_equal": ("at least", "ge"),
           "less_than": ("less than", "lt"), "less_than_equal": ("at most", "le")}


def _describe_input(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return shorten(repr(value), 120)


def _message(error: Any, model: type[BaseModel]) -> str:
    kind = error["type"]
    loc = tuple(error["loc"])
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        field = str(loc[-1])
        if "secret" in field.lower() or field.lower() in {"password", "token", "key_secret"}:
            return (f"unknown field {field!r}: secrets never go in specs; put the secret in an environment "
                    "variable and name it in the *_env field (e.g. tsig_secret_env: RFC2136_TSIG_SECRET)")
        if "private" in field.lower() or field.lower() in {"key", "key_file", "keyfile"}:
            return (f"unknown field {field!r}: private keys never go in specs or the repository (CPS generates "
                    "and keeps the key; only certificate and trust_chain files are given)")
        if len(loc) == 1:
            owners = [kind for kind, cls in SPEC_TYPES.items() if cls is not model and field in cls.model_fields]
            if owners and hasattr(model, "model_fields") and "type" in model.model_fields:
                return f"unknown field {field!r} (only {' and '.join(owners)} enrollments have it)"
        parent = model_at(model, loc[:-1])
        options = list(parent.model_fields) if parent else []
        return f"unknown field {field!r}{_hint(field, options)}"
    if kind == "missing":
        return "required field is missing"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind in ("literal_error", "enum"):
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        listed = ", ".join(options)
        hint = _hint(value, options) if isinstance(value, str) else ""
        return f"{_describe_input(value)} is not one of: {listed}{hint}"
    if kind == "string_type":
        if isinstance(value, bool):
            return f"expected text, got {_describe_input(value)}; quote the value in YAML"
        if isinstance(value, int | float):
            # Not repeating the number: YAML 1.1 reads 02142 as octal 1122, which only confuses.
            return "expected text, got a number; quote the value in YAML ('02142'): unquoted digits are read as a number"
        return f"expected text, got {_describe_input(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_describe_input(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float", "float_type", "float_parsing"):
        return f"expected a number, got {_describe_input(value)}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping of fields, got {_describe_input(value)}"
    if kind == "list_type":
        return f"expected a list, got {_describe_input(value)}"
    if kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        return f"must be {op} {ctx.get(key)}, got {_describe_input(value)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_pattern_mismatch":
        return f"{_describe_input(value)} does not match the pattern {ctx.get('pattern')}"
    return f"{error['msg']} (got {_describe_input(value)})"


def describe_validation_error(exc: ValidationError, model: type[BaseModel]) -> list[tuple[tuple[str | int, ...], str]]:
    """Every error in ``exc`` as (path, message), in pydantic's order."""
    return [(tuple(e["loc"]), _message(e, model)) for e in exc.errors(include_url=False)]
