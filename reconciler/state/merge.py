"""Merging two branches' states: three-way, by lineage, entry and entry history. Pure (no I/O).

Git merges the file layout by itself whenever the branches changed different entries. What is
left to this module is what git cannot know: the *same* entry changed on both sides (or the
header of two states born separately). It resolves what has one sensible answer and refuses
only real contradictions, every one of them listed, so the person decides with the facts.

==============================================  ================================================
both sides ...                                   merged
==============================================  ================================================
hold the same entry                              that entry
one side left the entry as in the base           the other side's entry (changed or removed)
removed it, or one removed and the other only    removed
  refreshed it (``last_refresh``)
one removed it, the other changed it             **refused** (decide: keep or ``state rm``)
bind it to different enrollment ids, contracts   **refused**: two enrollments claim one name
  or common names (each changed from the base)
changed other fields                             field by field against the base: a field one
                                                 side changed takes that side's value; a field
                                                 both changed takes the newer fact: the change
                                                 with the higher id (same id: later seen), an
                                                 intent over none (later ``at`` of two), the
                                                 latest ``last_refresh``, ``prevent_destroy``
                                                 if either sets it, and for the spec hash,
                                                 fingerprints and challenges the side whose
                                                 entry was written last (``updated_at``)
==============================================  ================================================

The merged entry's revision is past both sides' (``max + 1``) and its ``updated_at`` the later
one, so the merged state's serial is above both parents' and a plan saved on either branch before
the merge is stale after it. Headers must share the lineage (else: **refused**, two histories).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.state.model import ChangeInFlight, Intent, State, StateEntry

_IDENTITY = ("enrollment_id", "contract_id", "common_name")
_BY_WRITE = ("spec_hash", "certificate_fingerprints", "challenges")


@dataclass
class MergeResult:
    """The merged entries (None: removed) and the contradictions that stop the merge."""

    entries: dict[str, StateEntry | None] = field(default_factory=dict)
    contradictions: list[str] = field(default_factory=list)


def merge_headers(base: State | None, ours: State, theirs: State) -> tuple[State | None, list[str]]:
    """The merged header fields (lineage, serial_base), or the contradiction."""
    if ours.lineage != theirs.lineage:
        return None, [f"the two states have different lineages ({ours.lineage} here, {theirs.lineage} on the "
                      "other side): they were started separately, not branched from one state"]
    base_serial = base.serial_base if base is not None else ours.serial_base
    merged_base = ours.serial_base + theirs.serial_base - base_serial
    return ours.model_copy(update={"serial_base": max(1, merged_base), "entries": {}}), []


def merge_entries(base: Mapping[str, StateEntry], ours: Mapping[str, StateEntry],
                  theirs: Mapping[str, StateEntry]) -> MergeResult:
    """Merge every entry name of the three sides (see the module docstring's table)."""
    result = MergeResult()
    for name in sorted(set(base) | set(ours) | set(theirs)):
        merged, problems = merge_entry(name, base.get(name), ours.get(name), theirs.get(name))
        result.entries[name] = merged
        result.contradictions += problems
    return result


def merge_entry(name: str, base: StateEntry | None, ours: StateEntry | None,
                theirs: StateEntry | None) -> tuple[StateEntry | None, list[str]]:
    if ours == theirs:
        return ours, []
    if _same(ours, base):
        return theirs, []
    if _same(theirs, base):
        return ours, []
    if ours is None or theirs is None:
        kept = ours if ours is not None else theirs
        assert kept is not None
        if base is not None and _refreshed_only(base, kept):
            return None, []
        where = "here" if ours is not None else "on the other side"
        return kept, [f"{name}: removed on one side and changed {where} (enrollment {kept.enrollment_id}); "
                      f"keep it, or forget it with `reconcile state rm {name}`, then merge again"]
    return _both_changed(name, base, ours, theirs)


def _same(a: StateEntry | None, b: StateEntry | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.content() == b.content()


def _refreshed_only(base: StateEntry, entry: StateEntry) -> bool:
    return {**base.content(), "last_refresh": None} == {**entry.content(), "last_refresh": None}


def _both_changed(name: str, base: StateEntry | None, ours: StateEntry,
                  theirs: StateEntry) -> tuple[StateEntry | None, list[str]]:
    b = base.model_dump() if base is not None else {}
    o, t = ours.model_dump(), theirs.model_dump()
    newer = o if _when(ours) >= _when(theirs) else t
    merged: dict[str, Any] = {}
    problems: list[str] = []
    for key in StateEntry.model_fields:
        if key in ("revision", "updated_at"):
            continue
        ov, tv = o[key], t[key]
        if ov == tv:
            merged[key] = ov
        elif key in b and b[key] == ov:
            merged[key] = tv
        elif key in b and b[key] == tv:
            merged[key] = ov
        elif key in _IDENTITY:
            if base is None and key == "enrollment_id" and (ov is None or tv is None):
                merged[key] = ov if ov is not None else tv  # one side created it, the other had not yet
            else:
                merged[key] = ov
                problems.append(f"{name}: {key} is {ov} here and {tv} on the other side: two different "
                                "enrollments claim this name; keep one (`reconcile state mv`/`rm`), then merge again")
        else:
            merged[key] = _newer_fact(key, ov, tv, newer[key])
    merged["revision"] = max(ours.revision, theirs.revision) + 1
    merged["updated_at"] = max((d for d in (ours.updated_at, theirs.updated_at) if d is not None), default=None)
    return StateEntry.model_validate(merged), problems


def _when(entry: StateEntry) -> tuple[float, int]:
    return (entry.updated_at.timestamp() if entry.updated_at is not None else 0.0, entry.revision)


def _newer_fact(key: str, ours: Any, theirs: Any, newer: Any) -> Any:
    if key == "change":
        o, t = (ChangeInFlight.model_validate(v) if v is not None else None for v in (ours, theirs))
        if o is None or t is None:
            return newer
        if o.change_id != t.change_id:
            return ours if o.change_id > t.change_id else theirs
        return ours if _later(o.updated_at, t.updated_at) else theirs
    if key == "intent":
        if ours is None or theirs is None:
            return ours if ours is not None else theirs  # an intent makes the next run look first
        return ours if Intent.model_validate(ours).at >= Intent.model_validate(theirs).at else theirs
    if key == "last_refresh":
        return ours if _later(ours, theirs) else theirs
    if key == "prevent_destroy":
        return bool(ours or theirs)
    assert key in _BY_WRITE, key
    return newer


def _later(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return b is None
    return a >= b
