"""A successor before its predecessor: which specs must serve an enrollment's names before it goes.

An enrollment that is to leave reconciler's hands (deleted, or released when ``prevent_destroy``
keeps it in CPS) may only go once every spec that takes over any of its names serves them from a
deployed certificate. Otherwise those names have no certificate in between: an outage.

=====================================  ======================================================
situation                              rule
=====================================  ======================================================
a spec covers some of its names        that spec is a *successor*: the enrollment goes only
(CN or SAN, compared lower-case)       after the successor's certificate is deployed
state says ``replaced_by: NAME``       NAME is a successor whatever the names say
a successor's own action is blocked    the enrollment stays (blocked too): its names would
                                       otherwise be left uncovered
names no spec covers                   *dropped*: the plan says they leave the network
=====================================  ======================================================

The planner orders by these rules; the executor checks them again live before it deletes (it
reads each successor's deployment and looks for every name there, see
``reconciler.x509names.covers``), so a plan made with stale facts cannot break them either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.plan.inputs import Desired

RETIRED_SEPARATOR = "@"
"""Separates a replaced spec's name from its old enrollment id in state (``www@10001``); spec
names cannot contain it, so a retired entry never collides with a spec."""


def retired_name(name: str, enrollment_id: int) -> str:
    """The state name an enrollment keeps while its replacement under ``name`` is on its way."""
    return f"{name}{RETIRED_SEPARATOR}{enrollment_id}"


def view_names(view: Mapping[str, Any]) -> frozenset[str]:
    """The host names an enrollment view covers: its CN and SANs, lower-case."""
    cn = str(view.get("common_name") or "").lower()
    sans = {str(s).lower() for s in view.get("sans") or ()}
    return frozenset(sans | ({cn} if cn else set()))


@dataclass(frozen=True)
class Succession:
    """Who takes over the names of one enrollment that is to go."""

    successors: tuple[str, ...]
    """Spec names, sorted, that must serve their certificate before the enrollment goes."""
    covered: frozenset[str]
    """Names of the enrollment some successor covers."""
    dropped: frozenset[str]
    """Names of the enrollment no spec covers: they leave the network with it."""


def succession(names: frozenset[str], desired: Iterable[Desired], *, replaced_by: str | None = None,
               exclude: Iterable[str] = ()) -> Succession:
    """The successors of an enrollment covering ``names`` among ``desired`` (``exclude``: specs
    that are this very enrollment, e.g. the one it is moved to)."""
    skip = set(exclude)
    successors: set[str] = set()
    covered: set[str] = set()
    for d in desired:
        if d.name in skip:
            continue
        overlap = names & view_names(d.view)
        if overlap or d.name == replaced_by:
            successors.add(d.name)
            covered |= overlap
    return Succession(tuple(sorted(successors)), frozenset(covered), names - covered)


__all__ = ["RETIRED_SEPARATOR", "Succession", "retired_name", "succession", "view_names"]
