"""State file models: plain, immutable data, safe to commit (never a secret in here).

The state binds each spec ``name`` to the CPS enrollment it manages and records how far that
enrollment's workflow got, so that an interrupted apply resumes instead of starting over:

- ``intent`` is written *before* a non-idempotent call (create, upload, delete). If the run dies
  after the call but before the answer was recorded, the next run sees the intent and looks the
  enrollment up (by CN and contract) before it would create again.
- ``change`` is the CPS change in flight and what it waits for.
- ``spec_hash`` is the hash of the spec last applied successfully; a plan whose spec hash still
  matches but whose live enrollment differs reports the difference as drift.

Every model is frozen; derive new values with ``model_copy(update=...)`` or the ``with_*``
helpers, then hand them to :class:`reconciler.state.store.StateStore`.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Intent(_Frozen):
    """A non-idempotent operation about to be attempted (recorded before the call).

    ``op`` is one of ``creating``, ``updating``, ``uploading``, ``deleting``, ``cancelling`` (free
    text is accepted so the executor can add steps without a format bump). ``detail`` holds plain,
    non-secret facts that help the resume, e.g. ``{"fingerprints": {...}}`` for an upload.
    """

    op: str
    common_name: str
    contract_id: str
    at: datetime
    detail: dict[str, Any] = Field(default_factory=dict)


class ChangeInFlight(_Frozen):
    """The CPS change this enrollment is going through, as last seen by reconciler."""

    change_id: int
    change_type: str | None = None
    status: str | None = None
    state: str | None = None
    waiting_for: tuple[str, ...] = ()
    """``allowedInput`` types the change offered when last read (empty: it waits on CPS)."""
    updated_at: datetime | None = None


class PublishedChallenge(_Frozen):
    """A DV challenge reconciler published (so it stays visible, and can be cleaned up)."""

    domain: str
    type: str
    """``dns-01`` or ``http-01``."""
    record_name: str
    """``_acme-challenge.<domain>.`` for DNS, the full URL path for HTTP."""
    value: str
    """TXT value or HTTP response body: a public proof, not a secret."""
    publisher: str
    change_id: int | None = None
    published_at: datetime | None = None


class StateEntry(_Frozen):
    """Everything reconciler remembers about one managed enrollment, keyed by spec name."""

    enrollment_id: int | None = None
    """None until CPS answered the create (an ``intent`` says whether one may be under way)."""
    contract_id: str
    common_name: str
    spec_hash: str | None = None
    """Hash of the spec last applied successfully; None while never applied in full."""
    prevent_destroy: bool = False
    """Copied from the last applied spec, so deleting the spec file does not lift the protection."""
    intent: Intent | None = None
    change: ChangeInFlight | None = None
    certificate_fingerprints: dict[str, str] = Field(default_factory=dict)
    """Uploaded certificates: key algorithm (``rsa``/``ecdsa``) -> SHA-256 hex of the DER."""
    challenges: tuple[PublishedChallenge, ...] = ()
    last_refresh: datetime | None = None


def new_lineage() -> str:
    """A fresh lineage id: fixed when a state file is born, so two histories never mix."""
    return str(uuid.uuid4())


class State(_Frozen):
    """The whole state file: format version, lineage, serial and the entries by spec name."""

    format_version: int = FORMAT_VERSION
    lineage: str = Field(default_factory=new_lineage)
    serial: int = 0
    """Bumped by every write; a saved plan records it to notice later writes."""
    entries: dict[str, StateEntry] = Field(default_factory=dict)

    def entry(self, name: str) -> StateEntry | None:
        return self.entries.get(name)

    def with_entry(self, name: str, entry: StateEntry) -> State:
        """A copy with ``name`` bound to ``entry`` (added or replaced)."""
        return self.model_copy(update={"entries": {**self.entries, name: entry}})

    def without_entry(self, name: str) -> State:
        """A copy with ``name`` forgotten (no-op when absent)."""
        return self.model_copy(update={"entries": {k: v for k, v in self.entries.items() if k != name}})

    def managed_count(self) -> int:
        """Entries bound to an existing enrollment: the base for the mass-change thresholds."""
        return sum(1 for e in self.entries.values() if e.enrollment_id is not None)

    def to_json(self) -> str:
        """Canonical JSON text (sorted keys, stable across runs, newline-terminated)."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
