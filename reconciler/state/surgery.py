"""State surgery: the pure edits behind ``reconcile state mv`` and ``state rm``.

Each function takes a :class:`State` and returns the edited copy, or raises :class:`StateError`
when the edit would lose information. The CLI runs them under the state lock and writes the
result (a new serial, the previous file kept as the backup); nothing here talks to CPS.

===================  ==========================================================================
edit                 refused when
===================  ==========================================================================
``move(OLD, NEW)``   OLD has no entry; NEW already has one (a move never overwrites a binding);
                     NEW is not a valid spec name
``forget(NAME)``     NAME has no entry; an operation is in flight on it (an intent: the
                     enrollment it may have created would be lost; or a CPS change apply is
                     driving) unless ``force``
===================  ==========================================================================
"""

from __future__ import annotations

from reconciler.errors import StateError
from reconciler.spec.checks import check_slug
from reconciler.state.model import State, StateEntry


def entry(state: State, name: str) -> StateEntry:
    """The entry ``name``, or a StateError naming the entries there are."""
    found = state.entry(name)
    if found is None:
        known = ", ".join(sorted(state.entries)) or "none"
        raise StateError(f"no state entry named {name!r} (entries: {known})")
    return found


def move(state: State, old: str, new: str) -> State:
    """Bind ``new`` to what ``old`` was bound to, and forget ``old``."""
    found = entry(state, old)
    try:
        check_slug(new)
    except ValueError as exc:
        raise StateError(f"cannot move to {new!r}: {exc}") from None
    if old == new:
        raise StateError(f"{old!r} is already named {new!r}")
    target = state.entry(new)
    if target is not None:
        bound = (f"is already bound to enrollment {target.enrollment_id}" if target.enrollment_id is not None
                 else "already has an entry")
        raise StateError(f"{new!r} {bound}; moving {old!r} onto it would lose that binding "
                         f"(`reconcile state rm {new}` first if it is really unwanted)")
    return state.without_entry(old).with_entry(new, found)


def forget(state: State, name: str, *, force: bool = False) -> State:
    """Forget ``name`` (its enrollment stays in CPS, unmanaged)."""
    found = entry(state, name)
    if force:
        return state.without_entry(name)
    if found.intent is not None:
        raise StateError(f"{name!r} has an operation in flight ({found.intent.op} since "
                         f"{found.intent.at.isoformat(timespec='seconds')}); forgetting it could lose an "
                         "enrollment CPS already made: run apply to settle it, or pass --force")
    if found.change is not None:
        raise StateError(f"{name!r} has CPS change {found.change.change_id} in flight "
                         f"({found.change.status or found.change.change_type or 'pending'}); forgetting it "
                         "loses what apply knows of it (uploaded certificates, the renewal token used): let "
                         "apply finish it, or pass --force")
    return state.without_entry(name)


__all__ = ["entry", "forget", "move"]
