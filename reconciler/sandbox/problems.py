"""Errors the sandbox engine raises; the app renders them as ``application/problem+json``.

CPS names its errors by a slug in ``https://<host>/cps/v2/error-types/<slug>``. The engine only
knows the slug, a title and a detail; the host, ``instance`` id and media type are the app's job.
"""

from __future__ import annotations


class ApiProblem(Exception):
    """A CPS error answer: HTTP status, error-type slug, title and human detail."""

    def __init__(self, status: int, slug: str, title: str, detail: str = "") -> None:
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        super().__init__(f"{status} {slug}: {title}" + (f" ({detail})" if detail else ""))

    def to_dict(self) -> dict[str, object]:
        """The parts of the problem body the engine knows (the app adds ``type`` and ``instance``)."""
        return {"status": self.status, "slug": self.slug, "title": self.title, "detail": self.detail}


def not_found(detail: str) -> ApiProblem:
    """404 for an unknown enrollment, change, deployment, or an input not currently allowed."""
    return ApiProblem(404, "not-found", "Not Found", detail)


def bad_request(detail: str) -> ApiProblem:
    """400 for a semantically invalid request (the app has already checked the schema)."""
    return ApiProblem(400, "bad-request", "Bad Request", detail)


def conflict(detail: str, slug: str = "conflict", title: str = "Conflict") -> ApiProblem:
    """409 for a state conflict (duplicate CN, create throttle, ...)."""
    return ApiProblem(409, slug, title, detail)


def invalid_state(detail: str) -> ApiProblem:
    """409 for an input update sent while the change does not wait for it."""
    return ApiProblem(409, "invalid-enrollment-state", "Invalid enrollment state.", detail)


def pending_change(detail: str = "There is a pending change on the enrollment.") -> ApiProblem:
    """409 like the official example: a write while a change is pending, without permission to cancel."""
    return ApiProblem(409, "cannot-cancel-pending-change", "Cannot cancel pending change.", detail)
