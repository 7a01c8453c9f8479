"""reconciler.quantities: the one reading of "10m" and "30d" that config durations and renewal windows share."""

from __future__ import annotations

import pytest

from reconciler.quantities import parse_quantity

UNITS = {"m": 60.0, "h": 3600.0}


@pytest.mark.parametrize(("raw", "seen"), [("10m", 600.0), (" 1.5h ", 5400.0), ("90", 90.0), (90, 90), (None, None)])
def test_units_scale_and_other_types_pass_through(raw: object, seen: object) -> None:
    assert parse_quantity(raw, UNITS, "a duration") == seen


@pytest.mark.parametrize("raw", ["10x", "m10", "-5m", "", "ten minutes", "9" * 60 + "q"])
def test_anything_else_is_refused_saying_what_was_expected(raw: str) -> None:
    with pytest.raises(ValueError, match="is not a duration") as caught:
        parse_quantity(raw, UNITS, "a duration")
    assert len(str(caught.value)) < 80
