"""State file models: plain, immutable data, safe to commit (never a secret in here).

The state binds each spec ``name`` to the CPS enrollment it manages and records how far that
enrollment's workflow got, so that an interrupted apply resumes instead of starting over:

- ``intent`` is written *before* a non-idempotent call (create, upload, delete). If the run dies
  after the call but before the answer was recorded, the next run sees the intent and looks the
  enrollment up (by CN and contract) before it would create again.
- ``change`` is the CPS change in flight and what it waits for.
- ``spec_hash`` is the hash of the spec last applied successfully; a plan whose spec hash still
  matches but whose live enrollment differs reports the difference as drift.
- ``revision`` and ``updated_at`` are the entry's own history: the store raises the revision and
  stamps the time whenever the entry's content changes (callers never set them). Merging two
  branches' states compares them (``reconciler/state/merge.py``), and the state's ``serial`` is
  derived from them, so that a change to one entry touches nothing shared with the others.

Every model is frozen; derive new values with ``model_copy(update=...)`` or the ``with_*``
helpers, then hand them to :class:`reconciler.state.store.StateStore`.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 2
"""2: a header file plus one file per entry (see ``reconciler/state/layout.py``); 1: one file."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)  # docs: field descriptions


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
    applied_commit: str | None = None
    """The git commit of the checkout that spec was applied from (None outside git): a plan from a
    checkout that does not contain it is behind and must not revert that apply."""
    prevent_destroy: bool = False
    """Copied from the last applied spec, so deleting the spec file does not lift the protection."""
    intent: Intent | None = None
    change: ChangeInFlight | None = None
    certificate_fingerprints: dict[str, str] = Field(default_factory=dict)
    """Uploaded certificates: key algorithm (``rsa``/``ecdsa``) -> SHA-256 hex of the DER."""
    certificate_not_before: datetime | None = None
    certificate_not_after: datetime | None = None
    """Validity of the uploaded certificates (latest start, earliest end): a third-party renewal
    window is judged against it without a request to CPS."""
    certificate_uploaded_at: datetime | None = None
    """When (CPS's clock) they were uploaded: a certificate already inside its renewal window when
    uploaded would be renewed for ever."""
    renewal_applied: str | None = None
    """The spec's ``renewal.token`` last applied: the same token never renews twice."""
    challenges: tuple[PublishedChallenge, ...] = ()
    last_refresh: datetime | None = None
    replaced_by: str | None = None
    """Set on the entry of an enrollment being replaced: the spec name of its successor. The
    enrollment is deleted (or, with ``prevent_destroy``, released) only once that successor's
    certificate is deployed (see ``reconciler.plan.succession``)."""
    revision: int = 0
    """Raised by the store each time this entry's content changes (1 once first written)."""
    updated_at: datetime | None = None
    """When the store last wrote a change to this entry."""

    def content(self) -> dict[str, Any]:
        """What the entry says, without its history (``revision``, ``updated_at``)."""
        return self.model_dump(exclude={"revision", "updated_at"})


def new_lineage() -> str:
    """A fresh lineage id: fixed when a state file is born, so two histories never mix."""
    return str(uuid.uuid4())


class State(_Frozen):
    """The whole state: format version, lineage, serial and the entries by spec name."""

    format_version: int = FORMAT_VERSION
    lineage: str = Field(default_factory=new_lineage)
    serial: int = 0
    """0: no state stored yet. Otherwise ``serial_base`` plus the sum of the entries' revisions:
    every write that changes an entry raises it, a merge of two branches raises it past both, and
    nothing shared by all entries churns. A saved plan records it to notice later writes."""
    serial_base: int = 1
    """The part of ``serial`` not carried by entries: 1 for a state born in format 2, the old
    serial for a migrated format-1 file. Fixed for the life of a lineage."""
    entries: dict[str, StateEntry] = Field(default_factory=dict)

    def entry(self, name: str) -> StateEntry | None:
        return self.entries.get(name)

    def with_entry(self, name: str, entry: StateEntry) -> State:
        """A copy with ``name`` bound to ``entry`` (added or replaced)."""
        return self.model_copy(update={"entries": {**self.entries, name: entry}})

    def without_entry(self, name: str) -> State:
        """A copy with ``name`` forgotten (no-op when absent)."""
        return self.model_copy(update={"entries": {k: v for k, v in self.entries.items() if k != name}})

    def stamped(self, previous: State, now: datetime) -> State:
        """This state with the history of its entries brought forward from ``previous``.

        An entry whose content differs from ``previous``'s gets the next revision and ``now``; an
        unchanged one keeps its history (whatever the caller put there). ``serial`` follows.
        """
        entries = {}
        for name, entry in self.entries.items():
            before = previous.entries.get(name)
            if before is not None and before.content() == entry.content():
                history = {"revision": before.revision, "updated_at": before.updated_at}
            else:
                history = {"revision": (before.revision if before is not None else 0) + 1, "updated_at": now}
            entries[name] = entry if all(getattr(entry, k) == v for k, v in history.items()) \
                else entry.model_copy(update=history)
        return self.model_copy(update={"entries": entries,
                                       "serial": self.serial_base + sum(e.revision for e in entries.values())})

    def managed_count(self) -> int:
        """Entries bound to an existing enrollment: the base for the mass-change thresholds."""
        return sum(1 for e in self.entries.values() if e.enrollment_id is not None)

    def to_json(self) -> str:
        """Canonical JSON text (sorted keys, stable across runs, newline-terminated)."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
