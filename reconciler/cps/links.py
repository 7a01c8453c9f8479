"""CPS returns links as paths (``/cps/v2/enrollments/10002/changes/10003``); ids are their last
segment, which is how every official client reads them (CPS-API.md section 4)."""

from __future__ import annotations


def id_from_link(path: str) -> int:
    """The integer id at the end of a CPS link path; ``ValueError`` when there is none."""
    segment = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if not segment.isdigit():
        raise ValueError(f"CPS link has no numeric id at its end: {path!r}")
    return int(segment)


def enrollment_id_from_link(path: str) -> int:
    """The enrollment id inside any link below ``/enrollments/{id}``."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    try:
        segment = parts[parts.index("enrollments") + 1]
    except (ValueError, IndexError):
        raise ValueError(f"CPS link names no enrollment: {path!r}") from None
    if not segment.isdigit():
        raise ValueError(f"CPS link names no enrollment: {path!r}")
    return int(segment)


def enrollment_path(enrollment_id: int) -> str:
    return f"/cps/v2/enrollments/{enrollment_id}"


def change_path(enrollment_id: int, change_id: int) -> str:
    return f"/cps/v2/enrollments/{enrollment_id}/changes/{change_id}"
