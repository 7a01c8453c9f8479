"""One exception tree for the whole tool.

    ReconcileError                  root; the CLI maps families to exit codes
    ├── ConfigError                 reconcile.yaml or .edgerc unusable
    ├── SpecError                   one or more bad specs (carries SpecIssue list)
    ├── StateError                  state file unreadable, corrupt or mismatched
    │   ├── StateLocked             another run holds the lock (names the holder)
    │   └── StalePlan               a saved plan no longer matches state or CPS
    ├── UnsafePlan                  thresholds exceeded, protected delete, --force needed
    ├── WorkflowError               a CPS change cannot proceed (error state, mismatch)
    │   └── CertificateMismatch     local certificate does not fit the CSR
    ├── PublisherError              a DV challenge publisher or signer hook failed
    └── CpsApiError                 CPS answered with an error (status, problem body)
        ├── AuthenticationError     401/403 from the gateway; never retried
        ├── NotFound                404
        ├── Conflict                409
        ├── RateLimited             429 after retries ran out
        └── TransportError          no usable answer (connection, timeout, truncated body)

Exceptions carry data and build their message from it, so that callers can
inspect fields instead of parsing text. Messages never contain credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ReconcileError(Exception):
    """Root of every error this tool raises on purpose."""


class ConfigError(ReconcileError):
    """The configuration (reconcile.yaml, .edgerc, flags) cannot be used."""


@dataclass(frozen=True)
class SpecIssue:
    """One problem in one spec file, located as precisely as the loader can."""

    file: str
    line: int | None
    field: str
    message: str
    severity: str = "error"  # "error" | "warning" | "info"
    column: int | None = None
    """1-based, when known (template syntax errors): shown as ``file:line:column``."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        if self.line is not None and self.column is not None:
            where += f":{self.column}"
        prefix = f"{where}: {self.field}: " if self.field else f"{where}: "
        return prefix + self.message


class SpecError(ReconcileError):
    """Specs failed to load or validate; ``issues`` holds every problem found."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class StateError(ReconcileError):
    """The state file cannot be trusted or used as asked."""


class StateLocked(StateError):
    """Another run holds the state lock."""

    def __init__(self, path: str, holder: dict[str, Any] | None) -> None:
        self.path = path
        self.holder = holder or {}
        who = ", ".join(f"{k}={v}" for k, v in self.holder.items()) or "unknown holder"
        super().__init__(
            f"state {path} is locked ({who}); wait for that run to finish, "
            "or pass --lock-timeout SECONDS to wait for it"
        )


class StalePlan(StateError):
    """A saved plan was made against a state or CPS that has since moved."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("saved plan is stale:\n  " + "\n  ".join(reasons) + "\nrun `reconcile plan` again")


class UnsafePlan(ReconcileError):
    """The plan is refused by a safety rule unless the user consents (--force, --allow-delete)."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("plan refused by safety rules:\n  " + "\n  ".join(reasons))


class WorkflowError(ReconcileError):
    """A CPS change cannot proceed without a person (error state, refused input)."""

    def __init__(self, enrollment: str, message: str) -> None:
        self.enrollment = enrollment
        super().__init__(f"{enrollment}: {message}")


class CertificateMismatch(WorkflowError):
    """A local certificate does not match the CSR CPS issued; never uploaded."""


class PublisherError(ReconcileError):
    """A DV challenge publisher, cleanup hook or signer hook failed."""


@dataclass
class Problem:
    """An ``application/problem+json`` body (CPS or gateway), tolerant of missing fields."""

    type: str | None = None
    title: str | None = None
    detail: str | None = None
    instance: str | None = None
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Any) -> Problem:
        if not isinstance(body, dict):
            return cls(detail=str(body)[:500] if body else None)
        known = {k: body.get(k) for k in ("type", "title", "detail", "instance")}
        status = body.get("status")
        extra = {k: v for k, v in body.items() if k not in known and k != "status"}
        return cls(
            **{k: (str(v) if v is not None else None) for k, v in known.items()},
            status=status if isinstance(status, int) else None,
            extra=extra,
        )


class CpsApiError(ReconcileError):
    """CPS (or the Akamai gateway in front of it) answered with an error."""

    retryable: bool = False

    def __init__(self, method: str, path: str, status: int | None, problem: Problem | None = None,
                 message: str | None = None) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.problem = problem or Problem()
        text = message or self.problem.detail or self.problem.title or "request failed"
        code = f" {status}" if status is not None else ""
        title = f" {self.problem.title}:" if self.problem.title and message is None and self.problem.detail else ""
        super().__init__(f"CPS{code}{title} {text} ({method} {path})")

    @property
    def request_id(self) -> str | None:
        rid = self.problem.extra.get("requestId")
        return str(rid) if rid is not None else None


class AuthenticationError(CpsApiError):
    """401/403: credentials rejected. Never retried."""


class NotFound(CpsApiError):
    """404: no such enrollment, change, or input not (or no longer) offered."""


class Conflict(CpsApiError):
    """409: pending change, wrong workflow step, create throttle, duplicate CN."""


class RateLimited(CpsApiError):
    """429 that persisted after the retry budget ran out."""

    retryable = True


class TransportError(CpsApiError):
    """No usable answer: connection failure, timeout, truncated or malformed body."""

    retryable = True


class WriteOutcomeUnknown(CpsApiError):
    """A write was sent and no usable answer came back, so it may or may not have been applied.

    Raised instead of repeating the write blindly: the caller re-reads what the write was meant to
    change (the change's ``allowedInput``, the enrollment) and only then decides to send it again.
    """

    retryable = True

    @classmethod
    def of(cls, error: CpsApiError) -> WriteOutcomeUnknown:
        return cls(error.method, error.path, error.status, error.problem,
                   message=f"{_reason(error)}; the write may or may not have been applied")


def _reason(error: CpsApiError) -> str:
    return error.problem.detail or error.problem.title or str(error).removeprefix("CPS ").rsplit(" (", 1)[0]
