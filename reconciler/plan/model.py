"""The plan as data: immutable, ordered, serialisable. Every rendering and the saved plan file come
from :meth:`Plan.to_data`; nothing downstream re-reads CPS to describe a plan.

Identity and order: an :class:`Action` is identified by ``(name, kind)``; one enrollment may carry
more than one action (``move`` or ``adopt`` then ``update``), which the executor runs in plan order.
Actions of different enrollments are independent, except that a ``delete`` or ``release`` waits for
its ``successors`` (see ``reconciler.plan.succession``). Kinds sort by a fixed rank: move/create/
adopt/replace, update/update-network, continue, in-progress, delete/release.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from reconciler.errors import UnsafePlan

PLAN_FORMAT_VERSION = 1

ActionKind = Literal["move", "create", "adopt", "replace", "update", "update-network", "renew", "continue",
                     "in-progress", "delete", "release"]
FieldClass = Literal["certificate", "network", "metadata", "immutable"]
WaitsOn = Literal["cps", "apply", "person"]

KIND_RANK: dict[str, int] = {
    "move": 0, "create": 0, "adopt": 0, "replace": 0, "update": 1, "update-network": 1, "renew": 1,
    "continue": 2, "in-progress": 3, "delete": 4, "release": 4,
}
CHANGE_KINDS = frozenset({"move", "create", "adopt", "replace", "update", "update-network", "renew", "continue",
                          "delete", "release"})
"""Kinds that make apply do something in CPS or state; ``in-progress`` only waits on CPS."""


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)  # docs: field descriptions


class FieldChange(_Value):
    """One changed field, named by its spec path (``network_configuration.ocsp_stapling``)."""

    path: str
    old: Any = None
    new: Any = None
    field_class: FieldClass


class PendingInfo(_Value):
    """The CPS change in flight on an enrollment and who it waits on."""

    change_id: int
    change_type: str | None = None
    status: str | None = None
    state: str | None = None
    description: str | None = None
    waiting_for: tuple[str, ...] = ()
    """``allowedInput`` types offered (``lets-encrypt-challenges``, ``change-management``...)."""
    waits_on: WaitsOn = "cps"
    """``apply``: apply can give the input; ``person``: a person must; ``cps``: nothing to give."""


class LiveFacts(_Value):
    """What the plan assumed about CPS for one enrollment; a saved plan is stale if any moved."""

    enrollment_id: int | None = None
    enrollment_hash: str | None = None
    change_id: int | None = None
    change_status: str | None = None
    same_cn_ids: tuple[int, ...] = ()
    """Enrollments with the spec's CN in its contract, not bound in state (create/adopt rest on it)."""


class Action(_Value):
    """One thing apply will do to one enrollment (or, in ``Plan.blocked``, would do if allowed)."""

    name: str
    kind: ActionKind
    reason: str
    """Machine reason: ``new``, ``adopt-existing``, ``resume-create``, ``spec-changed``, ``drift``,
    ``metadata-only``, ``enrollment-gone``, ``awaiting-input``, ``waiting-on-cps``,
    ``removed-from-specs``, ``gone-from-cps``, ``immutable-field``, ``pending-change``, ``renamed``,
    ``moved-from``, ``replaced``, ``several-same-cn``, ``ambiguous-rename``, ..."""
    summary: str
    """One line for people."""
    contract_id: str | None = None
    common_name: str | None = None
    validation: str | None = None
    """``dv`` or ``third-party``."""
    enrollment_id: int | None = None
    changes: tuple[FieldChange, ...] = ()
    steps: tuple[str, ...] = ()
    new_certificate: bool = False
    cancels_change: int | None = None
    """Id of the pending change this action cancels; set only when ``--cancel-pending`` allowed it."""
    pending: PendingInfo | None = None
    facts: LiveFacts | None = None
    spec_hash: str | None = None
    """Hash of the spec this action applies (record it in state once the action completed)."""
    spec_file: str | None = None
    entry_name: str | None = None
    """The state entry this action's enrollment is bound under when the plan was made, where it
    differs from ``name`` (a move's old name; a replaced enrollment's spec name)."""
    moved_from: str | None = None
    """``move``: the state entry renamed to ``name``."""
    allow_duplicate_cn: bool = False
    """``create``/``replace``: send ``allow-duplicate-cn`` (the spec allows it, or the enrollment this
    one replaces still holds the CN until the new one is deployed)."""
    deploy_not_before: str | None = None
    deploy_not_after: str | None = None
    """Deployment window sent with a create, update or renewal (``YYYY-MM-DD``)."""
    successors: tuple[str, ...] = ()
    """``delete``/``release``: specs that must serve this enrollment's names first."""
    handover: tuple[str, ...] = ()
    """``delete``/``release``: this enrollment's names the successors take over (apply checks each
    is served before the enrollment goes)."""
    dropped_names: tuple[str, ...] = ()
    """``delete``: names no spec covers; they leave the network with this enrollment."""
    blocked: str | None = None
    """Why this action will not run (only in ``Plan.blocked``)."""
    remedy: str | None = None
    """How to allow it."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.kind)

    @property
    def sort_key(self) -> tuple[int, str, int]:
        return (KIND_RANK[self.kind], self.name, list(KIND_RANK).index(self.kind))

    @property
    def is_change(self) -> bool:
        return self.kind in CHANGE_KINDS


class Drift(_Value):
    """An enrollment changed outside reconciler (or deleted) since the last apply."""

    name: str
    kind: Literal["changed", "gone"]
    enrollment_id: int | None = None
    changes: tuple[FieldChange, ...] = ()
    message: str


class Unmanaged(_Value):
    """An enrollment in a refreshed contract that no spec or state entry claims."""

    enrollment_id: int
    common_name: str
    contract_id: str


class PlanSettings(_Value):
    """The consent flags the plan was made with (apply must not widen them)."""

    allow_delete: bool = False
    force: bool = False
    cancel_pending: bool = False


class Plan(_Value):
    """An ordered, reviewable plan; apply executes ``actions`` as they are."""

    format_version: int = PLAN_FORMAT_VERSION
    created_at: str | None = None
    commit: str | None = None
    """The git commit of the checkout the plan was made from (recorded with what apply applies)."""
    refreshed: bool = True
    state_lineage: str
    state_serial: int
    settings: PlanSettings = PlanSettings()
    targets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()
    blocked: tuple[Action, ...] = ()
    drift: tuple[Drift, ...] = ()
    unmanaged: tuple[Unmanaged, ...] = ()
    unchanged: tuple[str, ...] = ()
    unsafe: tuple[str, ...] = ()
    """Safety thresholds exceeded without ``--force``: apply refuses the whole plan."""

    # -- questions ---------------------------------------------------------------------------

    @property
    def changes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.is_change)

    @property
    def in_progress(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind == "in-progress")

    @property
    def has_changes(self) -> bool:
        """True when apply would change something, or something differs but is blocked."""
        return bool(self.changes or self.blocked)

    def counts(self) -> dict[str, int]:
        by_kind = Counter(a.kind for a in self.actions)
        return {
            "create": by_kind["create"],
            "adopt": by_kind["adopt"],
            "move": by_kind["move"],
            "replace": by_kind["replace"],
            "renew": by_kind["renew"],
            "update": by_kind["update"] + by_kind["update-network"],
            "delete": by_kind["delete"],
            "release": by_kind["release"],
            "continue": by_kind["continue"],
            "in_progress": by_kind["in-progress"],
            "blocked": len(self.blocked),
        }

    def summary_line(self) -> str:
        c = self.counts()
        extra = "".join(f"{c[kind]} to {kind}, " for kind in ("move", "adopt", "replace", "renew") if c[kind])
        release = f", {c['release']} to release" if c["release"] else ""
        blocked = f", {c['blocked']} blocked" if c["blocked"] else ""
        return (f"Plan: {c['create']} to create, {extra}{c['update']} to update, "
                f"{c['delete']} to delete{release}, {c['continue']} to continue{blocked}.")

    def actions_for(self, name: str) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.name == name)

    def ensure_safe(self) -> None:
        """Raise :class:`UnsafePlan` if a safety threshold was exceeded without ``--force``."""
        if self.unsafe:
            raise UnsafePlan(list(self.unsafe))

    # -- serialisation -----------------------------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        """The plan as plain JSON data (the one source for renderings, plan files and checksum)."""
        data = self.model_dump(mode="json")
        data["summary"] = {**self.counts(), "line": self.summary_line(), "has_changes": self.has_changes}
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Plan:
        body = {k: v for k, v in data.items() if k not in ("summary", "checksum")}
        return cls.model_validate(body)

    def checksum(self) -> str:
        return data_checksum(self.to_data())


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def data_checksum(data: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of ``data`` without its ``checksum`` key."""
    body = {k: v for k, v in data.items() if k != "checksum"}
    return "sha256:" + hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
