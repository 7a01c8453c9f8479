from __future__ import annotations

import pytest

from reconciler.cps.links import change_path, enrollment_id_from_link, enrollment_path, id_from_link


def test_id_is_last_segment() -> None:
    assert id_from_link("/cps/v2/enrollments/10002") == 10002
    assert id_from_link("/cps/v2/enrollments/10002/changes/10003") == 10003
    assert id_from_link("/cps/v2/enrollments/10002/") == 10002


def test_enrollment_id_inside_change_link() -> None:
    assert enrollment_id_from_link("/cps/v2/enrollments/10002/changes/10003") == 10002
    assert enrollment_id_from_link(change_path(7, 8)) == 7
    assert enrollment_path(7) == "/cps/v2/enrollments/7"


@pytest.mark.parametrize("bad", ["", "/cps/v2/enrollments", "/cps/v2/enrollments/abc"])
def test_non_numeric_links_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        id_from_link(bad)
    with pytest.raises(ValueError):
        enrollment_id_from_link(bad)
