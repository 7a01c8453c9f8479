"""A number with a unit, as people write them in YAML (``10m``, ``30d``): one reading for the config's
durations and the specs' renewal windows. A bare number is in the base unit."""

from __future__ import annotations

import re
from collections.abc import Mapping

_QUANTITY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)?\s*")


def parse_quantity(value: object, units: Mapping[str, float], what: str) -> object:
    """``value`` in the base unit when it is a string such as ``"10m"`` (``units`` maps each suffix
    to base units); anything but a string passes through for pydantic to check. ``what`` says in
    the error what was expected, with examples."""
    if not isinstance(value, str):
        return value
    match = _QUANTITY.fullmatch(value)
    unit = match.group(2) if match else None
    if match is None or (unit is not None and unit not in units):
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise ValueError(f"{shown!r} is not {what}")
    return float(match.group(1)) * (units[unit] if unit is not None else 1.0)


__all__ = ["parse_quantity"]
