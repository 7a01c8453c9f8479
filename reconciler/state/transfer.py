"""Moving a whole state: ``state pull`` / ``state push`` (one JSON document) and ``state migrate``.

=================================================  ===========================================
situation                                          outcome
=================================================  ===========================================
push into an empty store                           stored exactly as given (lineage, serial and
                                                   each entry's revision kept)
push of the same lineage at the stored serial      written like any change: the edited entries
(pulled, edited, pushed)                           get their next revision, the serial follows
push of the same lineage at another serial         refused: the store moved since the pull (or
                                                   the document is older): pull again
push of another lineage                            refused: another state's history
push whose serial does not follow from its         refused: edited by hand or damaged
entries
migrate into an empty target                       stored exactly as given; read back and
                                                   compared before it is reported done
migrate into a target of the same lineage          the target is brought to the source's
                                                   version, unless it is ahead (a higher
                                                   serial): refused, it was used after an
                                                   earlier migration
migrate into a target of another lineage           refused, nothing written
=================================================  ===========================================

Both stores are locked for the whole migration (source first), so no run writes either meanwhile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from reconciler.errors import StateError
from reconciler.state.model import State
from reconciler.state.store import StateStore, check_consistent


def parse_document(raw: bytes, where: str) -> State:
    """A state document (``reconcile state pull``'s output), checked for consistency."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{where}: not a JSON document ({exc})") from None
    if not isinstance(data, dict) or "lineage" not in data or "serial" not in data:
        raise StateError(f"{where}: not a state document (no lineage and serial); `reconcile state pull` "
                         "writes one")
    try:
        state = State.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise StateError(f"{where}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    check_consistent(state, where)
    return state


def push(store: StateStore, pushed: State, where: str) -> State:
    """Write ``pushed`` to ``store`` under its lock (see the module table); returns what is stored."""
    with store.lock("state push"):
        current = store.read()
        if current.serial == 0:
            return store.replace(pushed)
        if pushed.lineage != current.lineage:
            raise StateError(f"{where} has lineage {pushed.lineage}, but state {store.location} has "
                             f"{current.lineage}: it belongs to another state; refusing to push it")
        if pushed.serial != current.serial:
            raise StateError(f"{where} is at serial {pushed.serial}, but state {store.location} is at serial "
                             f"{current.serial}: it changed since this document was pulled; pull again "
                             "(reconcile state pull), redo the edit and push that")
        if pushed == current:
            return current
        return store.write(pushed)


@dataclass(frozen=True)
class Migrated:
    """What ``migrate`` did."""

    state: State
    copied: bool
    """False when the target already held exactly this state."""


def migrate(source: StateStore, target: StateStore) -> Migrated:
    """Copy ``source``'s state into ``target`` under both locks (see the module table)."""
    with source.lock("state migrate"), target.lock("state migrate"):
        state = source.read()
        if state.serial == 0:
            raise StateError(f"state {source.location} holds no state: nothing to migrate")
        there = target.read()
        if there.serial:
            if there.lineage != state.lineage:
                raise StateError(f"state {target.location} already holds another state (lineage {there.lineage}, "
                                 f"serial {there.serial}; migrating lineage {state.lineage}): refusing to overwrite "
                                 "it; pick another target (workspace) or remove that state first")
            if there == state:
                return Migrated(state, copied=False)
            if there.serial > state.serial:
                raise StateError(f"state {target.location} is ahead of {source.location} (serial {there.serial} "
                                 f"> {state.serial}, same lineage): it was written after an earlier migration; "
                                 "migrate the other way, or check which one runs use")
        target.replace(state)
        back = target.backend.read()
        if back != state:
            raise StateError(f"state {target.location} reads back differently from what was migrated into it; "
                             f"{source.location} is unchanged")
        return Migrated(state, copied=True)
