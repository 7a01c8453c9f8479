"""Renames: a spec whose enrollment is bound in state under another name.

Identity lives in state, not in spec names: renaming a spec's ``name:`` must move its binding,
never create a second enrollment and delete the first. Worked out from specs and state alone
(state records each entry's contract and CN), so that refresh can include the old entries in its
scope; the planner then checks the candidates CPS shows before it trusts a detected move.

===============================================  =============================================
situation (NEW: a spec without a bound entry)    result
===============================================  =============================================
``moved_from: OLD``, OLD in state, no spec OLD   move OLD -> NEW
``moved_from: OLD``, a spec named OLD exists     conflict: both cannot own the enrollment
``moved_from: OLD``, OLD not in state            nothing (a warning): already moved, or lost
exactly one entry without a spec, bound, not     move OLD -> NEW (detected)
being replaced, with NEW's CN and contract,
and no other new spec matching it
several such entries, or one matching several    ambiguous: refused until ``moved_from`` says
new specs                                        which
===============================================  =============================================

A spec that is already bound ignores ``moved_from`` (it is history once the move is applied,
like Terraform's ``moved`` blocks).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler.plan.inputs import Desired
from reconciler.state.model import State, StateEntry


@dataclass(frozen=True)
class Moves:
    """The renames specs and state imply."""

    moves: dict[str, str] = field(default_factory=dict)
    """New spec name -> the state entry it takes over."""
    detected: frozenset[str] = frozenset()
    """New names whose move was inferred (no ``moved_from``)."""
    ambiguous: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """New spec name -> every state entry it could have been renamed from."""
    conflicts: dict[str, str] = field(default_factory=dict)
    """New spec name -> why its ``moved_from`` cannot be honoured."""
    warnings: tuple[str, ...] = ()

    @property
    def sources(self) -> frozenset[str]:
        """State entries some spec takes over (or may: ambiguous ones are left alone too)."""
        return frozenset(self.moves.values()) | frozenset(n for ns in self.ambiguous.values() for n in ns)


def _unbound(entry: StateEntry | None) -> bool:
    return entry is None or (entry.enrollment_id is None and entry.intent is None)


def _same_enrollment(d: Desired, entry: StateEntry) -> bool:
    return (entry.contract_id == d.contract_id and entry.common_name.lower() == d.common_name.lower())


def find_moves(desired: Iterable[Desired], state: State) -> Moves:
    """Every rename the specs ask for or imply (see the module table)."""
    specs = {d.name: d for d in desired}
    orphans = {n: e for n, e in state.entries.items()
               if n not in specs and e.enrollment_id is not None and e.replaced_by is None
               and (e.intent is None or e.intent.op != "deleting")}
    moves: dict[str, str] = {}
    conflicts: dict[str, str] = {}
    warnings: list[str] = []
    looking: list[Desired] = []
    for d in specs.values():
        if not _unbound(state.entry(d.name)):
            continue
        if d.moved_from is None:
            looking.append(d)
        elif d.moved_from in specs:
            conflicts[d.name] = (f"moved_from: {d.moved_from} names a spec that still exists; one enrollment "
                                 "cannot belong to both")
        elif d.moved_from in orphans:
            moves[d.name] = d.moved_from
        elif d.moved_from in state.entries:
            conflicts[d.name] = f"moved_from: {d.moved_from} names a state entry with no enrollment to take over"
        else:
            warnings.append(f"{d.name}: moved_from: {d.moved_from} is not in state (already moved, or the state "
                            "was lost); planning it as a new spec")
            looking.append(d)
    taken = set(moves.values())
    matches = {d.name: tuple(sorted(n for n, e in orphans.items() if n not in taken and _same_enrollment(d, e)))
               for d in looking}
    claims: dict[str, int] = {}
    for olds in matches.values():
        for old in olds:
            claims[old] = claims.get(old, 0) + 1
    ambiguous: dict[str, tuple[str, ...]] = {}
    detected: set[str] = set()
    for name, olds in matches.items():
        if len(olds) == 1 and claims[olds[0]] == 1:
            moves[name] = olds[0]
            detected.add(name)
        elif olds:
            ambiguous[name] = olds
    return Moves(moves=moves, detected=frozenset(detected), ambiguous=ambiguous, conflicts=conflicts,
                 warnings=tuple(warnings))


__all__ = ["Moves", "find_moves"]
