"""The planner's inputs as plain data: what is wanted (:class:`Desired`) and what CPS holds
(:class:`Observed`). Both are built at the edges (from loaded specs, from a refresh) so that the
planner itself stays a pure function that tests feed with literals.

Views (``Desired.view``, ``ObservedEnrollment.view``) are the normalised, comparable form of an
enrollment that ``reconciler.cps.mapping.cps_view`` produces, keyed by spec field names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from reconciler.plan.model import Unmanaged


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Revision(_Value):
    """The checkout a plan is made from (see ``reconciler.revision``): its git commit and which of
    the commits state records (``applied_commit``) it contains. Empty outside git."""

    commit: str | None = None
    contains: frozenset[str] = frozenset()

    def lacks(self, commit: str | None) -> bool:
        """Whether ``commit`` (a last apply) is missing from this checkout: its specs are behind."""
        return self.commit is not None and commit is not None and commit not in self.contains


class Policy(_Value):
    """The spec settings that decide how far apply may take a workflow without a person."""

    prevent_destroy: bool = False
    wait_for_deployment: bool = True
    allow_duplicate_common_name: bool = False
    acknowledge_pre_verification_warnings: bool = False
    acknowledge_post_verification_warnings: bool = False
    auto_approve_warnings: tuple[str, ...] = ()
    change_management: bool = False
    acknowledge_change_management: bool = False
    publisher: str | None = None
    """DV challenge publisher (``manual``, ``hook``, ``edgedns``, ``rfc2136``); None for third-party."""
    challenge_method: str | None = None
    signer: bool = False
    """Third-party: a signer hook is configured."""
    certificate_files: tuple[str, ...] = ()
    """Third-party: key algorithms (``rsa``/``ecdsa``) whose signed certificate files exist."""
    renewal_days: float | None = None
    """Third-party: renew when the deployed certificate expires within this many days."""
    renewal_token: str | None = None
    """Third-party: a new value renews once."""
    deploy_not_before: str | None = None
    deploy_not_after: str | None = None
    """Deployment window sent with creates, updates and renewals (``YYYY-MM-DD``)."""


class Desired(_Value):
    """One enrollment as the specs want it."""

    name: str
    validation: str
    """``dv`` or ``third-party``."""
    contract_id: str
    common_name: str
    view: dict[str, Any]
    spec_hash: str
    policy: Policy = Policy()
    moved_from: str | None = None
    """The state entry this spec was renamed from (the spec's ``moved_from:``)."""
    file: str | None = None
    line: int | None = None


class ObservedChange(_Value):
    """A pending CPS change as read by refresh (``change.v2`` reduced to what planning needs)."""

    change_id: int
    change_type: str | None = None
    status: str | None = None
    state: str | None = None
    description: str | None = None
    error: str | None = None
    allowed_input: tuple[str, ...] = ()


class ObservedEnrollment(_Value):
    """One enrollment as CPS holds it now."""

    enrollment_id: int
    contract_id: str
    common_name: str
    view: dict[str, Any]
    fingerprint: str
    """SHA-256 of the enrollment document as read; a saved plan compares it at apply time."""
    changes: tuple[ObservedChange, ...] = ()
    """Pending changes, oldest first; the last one is the one the workflow is on."""
    certificate_not_before: datetime | None = None
    certificate_not_after: datetime | None = None
    """Validity of the deployed certificate (production, else staging), read only where a renewal
    window needs it and state does not record it."""
    auto_renewal_start: datetime | None = None
    """``autoRenewalStartTime``: when CPS starts renewing a DV/OV/EV certificate by itself (status shows it)."""

    @property
    def active_change(self) -> ObservedChange | None:
        return self.changes[-1] if self.changes else None


class Observed(_Value):
    """A snapshot of CPS as far as the plan needs it, keyed by spec name where bound."""

    bound: dict[str, ObservedEnrollment] = {}
    """Enrollments bound in state, by spec name."""
    gone: dict[str, int] = {}
    """State entries whose enrollment no longer exists: name -> enrollment id."""
    candidates: dict[str, tuple[ObservedEnrollment, ...]] = {}
    """Specs not yet bound: unbound enrollments in their contract with the same CN."""
    unmanaged: tuple[Unmanaged, ...] = ()
    contracts: tuple[str, ...] = ()
    requests: int = 0
    """CPS requests the refresh made (requests are the scarce resource)."""
    now: datetime | None = None
    """CPS's time when the refresh ended (its answers' ``Date``): renewal windows and expiry are
    judged by it, not by the runner's clock."""
