"""The journal: every step the executor takes, recorded in the state file as soon as it is taken.

The workflow never touches the state store directly; it tells the journal what happened
(``intent`` before a non-idempotent call, ``change_seen`` after each read, ``uploaded`` after an
upload, ...) and the journal turns that into an atomic state write. That is what makes a crash
at any point resumable: the next run reads where the last one got.

Two kinds of record (the difference matters only while the store holds the lock in an event loop):

- **Written through** (on disk before the method returns): ``intent`` and the records that settle
  an intent: ``created``, ``change_opened``, ``uploaded``, ``clear_intent``, ``forget``; and the
  renames a later step relies on: ``move``, ``retire``.
- **Deferred** (handed to a writer thread at the end of the event-loop turn; on disk with the
  next written-through record, at ``flush`` or when the lock is released): ``bind``, ``unbind``,
  ``change_seen``, ``finished_spec``, ``challenges_published``, ``finished``. Losing one to a
  crash equals crashing a moment earlier, a state resume already handles: ``bind``/``unbind``
  precede a written-through intent; ``change_seen`` caches a read; ``finished_spec`` and
  ``finished`` are re-recorded when the rerun finds the change done (``_settle_unchanged``) or
  follows it to the end; and the challenge ledger (``publishers/ledger.py``, written and fsynced
  before and after publishing) is the crash-safe record of what was published, so a rerun neither
  publishes twice nor forgets a cleanup. With a hundred enrollments at once these are most of
  the writes; coalescing them, off the event loop, keeps a large apply from spending its time
  waiting on fsync.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from reconciler.apply import workfiles
from reconciler.apply.publishers.base import ChallengeRecord
from reconciler.cps.models import Change
from reconciler.errors import StateError
from reconciler.state import surgery
from reconciler.state.model import ChangeInFlight, Intent, PublishedChallenge, State, StateEntry
from reconciler.state.store import StateStore, entry_change


def _now() -> datetime:
    return datetime.now(UTC)


class StateJournal:
    """Records workflow steps of named enrollments into a :class:`StateStore`, one write per step."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def entry(self, name: str) -> StateEntry | None:
        return self.store.read().entry(name)

    def _update(self, name: str, **fields: Any) -> None:
        self.store.update(entry_change(name, fields))

    def _defer(self, name: str, **fields: Any) -> None:
        self.store.update(entry_change(name, fields), defer=True)

    def flush(self) -> None:
        """Write deferred records now (the end of a run; the lock's release does it too)."""
        self.store.flush()

    # -- binding ---------------------------------------------------------------------------------

    def bind(self, name: str, *, contract_id: str, common_name: str, prevent_destroy: bool,
             enrollment_id: int | None = None, renewal_applied: str | None = None) -> None:
        """Create or refresh the entry for ``name`` (keeps what it already knows; ``renewal_applied``:
        the spec's renewal token an adopted enrollment starts from, so adopting never renews)."""
        def change(state: Any) -> Any:
            current = state.entry(name)
            if current is None:
                entry = StateEntry(contract_id=contract_id, common_name=common_name,
                                   prevent_destroy=prevent_destroy, enrollment_id=enrollment_id,
                                   renewal_applied=renewal_applied)
            else:
                entry = current.model_copy(update={
                    "contract_id": contract_id, "common_name": common_name, "prevent_destroy": prevent_destroy,
                    "enrollment_id": enrollment_id if enrollment_id is not None else current.enrollment_id,
                    "renewal_applied": renewal_applied if renewal_applied is not None else current.renewal_applied})
            return state.with_entry(name, entry)
        self.store.update(change, defer=True)

    def unbind(self, name: str) -> None:
        """Drop a (gone) enrollment id before creating a new one, so a crash resumes as a create."""
        entry = self.entry(name)
        if entry is not None and (entry.enrollment_id is not None or entry.change is not None):
            self._defer(name, enrollment_id=None, change=None, certificate_fingerprints={}, challenges=())

    def forget(self, name: str) -> None:
        """The entry is gone for good: drop it from state, and its working files with it."""
        self.store.remove_entry(name)
        workfiles.forget(self.store.path.parent, name)

    def move(self, old: str, new: str) -> None:
        """A renamed spec: ``new`` takes over ``old``'s binding and working files (nothing in CPS)."""
        self.store.update(lambda state: surgery.move(state, old, new))
        workfiles.rename(self.store.path.parent, old, new)

    def retire(self, name: str, enrollment_id: int, retired: str) -> None:
        """Before a replacement's create: the old enrollment moves to ``retired``, marked as replaced
        by ``name``, in the same write that frees ``name`` for the new enrollment, so a crash leaves
        either the old binding or both halves, never an enrollment nobody remembers."""
        def change(state: State) -> State:
            entry = surgery.entry(state, name)
            if entry.enrollment_id != enrollment_id:
                raise StateError(f"{name} is bound to enrollment {entry.enrollment_id}, not {enrollment_id}: "
                                 "plan again")
            old = entry.model_copy(update={"replaced_by": name, "intent": None})
            return state.without_entry(name).with_entry(retired, old)
        self.store.update(change)
        workfiles.rename(self.store.path.parent, name, retired)  # the new enrollment starts clean

    # -- intents ---------------------------------------------------------------------------------

    def intent(self, name: str, op: str, detail: Mapping[str, Any] | None = None) -> None:
        """Record an operation about to be attempted (before the call; see state model)."""
        entry = self.entry(name)
        assert entry is not None, f"intent for unbound {name}"
        self._update(name, intent=Intent(op=op, common_name=entry.common_name, contract_id=entry.contract_id,
                                         at=_now(), detail=dict(detail or {})))

    def clear_intent(self, name: str) -> None:
        self._update(name, intent=None)

    # -- workflow progress -----------------------------------------------------------------------

    def created(self, name: str, enrollment_id: int, change_id: int | None, change_type: str | None, *,
                renewal_applied: str | None = None) -> None:
        """CPS answered the create (or the orphan was found): bind the id, clear the intent (the
        spec's ``renewal_applied`` counts as used: the first certificate comes after it)."""
        change = ChangeInFlight(change_id=change_id, change_type=change_type, updated_at=_now()) \
            if change_id is not None else None
        self._update(name, enrollment_id=enrollment_id, intent=None, change=change, renewal_applied=renewal_applied)

    def change_opened(self, name: str, change_id: int | None, change_type: str | None, *,
                      renewal_applied: str | None = None) -> None:
        """CPS answered an update (``renewal_applied``: the token a renewal applied, never used again)."""
        change = ChangeInFlight(change_id=change_id, change_type=change_type, updated_at=_now()) \
            if change_id is not None else None
        fields: dict[str, Any] = {"intent": None, "change": change}
        if renewal_applied is not None:
            fields["renewal_applied"] = renewal_applied
        self._update(name, **fields)

    def change_seen(self, name: str, change_id: int, change: Change) -> None:
        """What the change looked like when last read (status, state, offered inputs)."""
        entry = self.entry(name)
        previous = entry.change if entry is not None else None
        seen = ChangeInFlight(
            change_id=change_id,
            change_type=previous.change_type if previous and previous.change_id == change_id else None,
            status=change.status, state=change.state,
            waiting_for=tuple(a.type for a in change.allowed_input), updated_at=_now())
        if previous is not None and previous.model_copy(update={"updated_at": None}) == \
                seen.model_copy(update={"updated_at": None}):
            return  # nothing moved: spare the state file a write per poll
        self._defer(name, change=seen)

    def challenges_published(self, name: str, change_id: int, publisher: str,
                             records: Iterable[ChallengeRecord]) -> None:
        published = tuple(
            PublishedChallenge(domain=r.domain, type=r.type, record_name=r.record_name or r.path,
                               value=r.value, publisher=publisher, change_id=change_id, published_at=_now())
            for r in records)
        entry = self.entry(name)
        kept = tuple(c for c in (entry.challenges if entry else ()) if c.change_id == change_id
                     and (c.domain, c.type, c.value) not in {(p.domain, p.type, p.value) for p in published})
        self._defer(name, challenges=kept + published)

    def uploaded(self, name: str, fingerprints: Mapping[str, str], validity: Mapping[str, str] | None = None) -> None:
        """The upload was accepted: remember what went up (and ``validity``: ISO ``not_before`` and
        ``not_after`` of the certificates, when known), clear the intent."""
        fields: dict[str, Any] = {"certificate_fingerprints": dict(fingerprints), "intent": None}
        if validity:
            fields.update(certificate_not_before=validity.get("not_before"),
                          certificate_not_after=validity.get("not_after"),
                          certificate_uploaded_at=validity.get("uploaded_at"))
        self._update(name, **fields)

    def finished_spec(self, name: str, spec_hash: str | None, commit: str | None = None) -> None:
        """CPS accepted the spec (create or update answered): it is what the enrollment should be
        (``commit``: the checkout it came from)."""
        if spec_hash is not None:
            self._defer(name, spec_hash=spec_hash, applied_commit=commit)

    def finished(self, name: str, spec_hash: str | None, commit: str | None = None, *,
                 renewal_applied: str | None = None) -> None:
        """The change is done (deployed, or nothing left to wait for): the spec is applied
        (``renewal_applied``: a new certificate came after the spec's token, which is now used)."""
        fields: dict[str, Any] = {"change": None, "intent": None}
        if spec_hash is not None:
            fields.update(spec_hash=spec_hash, applied_commit=commit)
        if renewal_applied is not None:
            fields["renewal_applied"] = renewal_applied
        self._defer(name, **fields)
