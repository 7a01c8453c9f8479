"""Refresh: read what CPS holds, spending as few requests as possible (they are the scarce resource).

Per run: one ``list_enrollments`` per contract involved (the list carries full enrollments), one
``get_change`` per *pending* change of an enrollment the plan cares about (sent with the list when
state knows the change, after it otherwise; plus one per change state knows that has ended), and one
``get_enrollment`` only for a state entry missing from its contract's list (to tell "deleted" from
"moved"). Everything runs concurrently; the client's pool and pacer bound it. Refresh never waits
for CPS to finish anything and never writes.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from reconciler.cps.client import enrollment_wire
from reconciler.cps.mapping import observed_view
from reconciler.cps.models import Change, Deployment, Enrollment
from reconciler.errors import NotFound
from reconciler.heap import no_full_collections
from reconciler.plan.inputs import Desired, Observed, ObservedChange, ObservedEnrollment
from reconciler.plan.model import Unmanaged, canonical_json
from reconciler.plan.moves import find_moves
from reconciler.plan.safety import select_targets
from reconciler.state.model import State, StateEntry
from reconciler.x509names import validity_of


class RefreshClient(Protocol):
    """The part of :class:`reconciler.cps.client.CpsClient` refresh uses."""

    async def list_enrollments_wire(self, contract_id: str) -> list[dict[str, Any]]: ...

    async def get_enrollment(self, eid: int) -> Enrollment: ...

    async def get_change(self, eid: int, cid: int) -> Change: ...

    async def get_production_deployment(self, eid: int) -> Deployment | None: ...

    async def get_staging_deployment(self, eid: int) -> Deployment | None: ...


def _wire(enrollment: Enrollment | dict[str, Any]) -> dict[str, Any]:
    if isinstance(enrollment, BaseModel):
        return enrollment.to_wire()
    return dict(enrollment)


def fingerprint(wire: dict[str, Any]) -> str:
    """SHA-256 of an enrollment document as read (any change in CPS changes it)."""
    return hashlib.sha256(canonical_json(wire).encode("utf-8")).hexdigest()


def _enrollment_id(wire: dict[str, Any]) -> int:
    if wire.get("id") is not None:
        return int(wire["id"])
    return int(str(wire["location"]).rstrip("/").rsplit("/", 1)[-1])


def _pending_ids(wire: dict[str, Any]) -> list[int]:
    return [int(str(p["location"]).rstrip("/").rsplit("/", 1)[-1]) for p in wire.get("pendingChanges") or []]


def _change_type(wire: dict[str, Any], cid: int) -> str | None:
    for p in wire.get("pendingChanges") or []:
        if str(p.get("location", "")).rstrip("/").endswith(f"/{cid}"):
            kind = p.get("changeType")
            return str(kind) if kind is not None else None
    return None


def _cn(wire: dict[str, Any]) -> str:
    # Read from the list as sent: an enrollment nothing here manages is never validated, so a
    # malformed one must not stop the plan (it shows as unmanaged, without a CN).
    csr = wire.get("csr")
    cn = csr.get("cn") if isinstance(csr, dict) else None
    return cn.lower() if isinstance(cn, str) else ""


def _observed_change(wire: dict[str, Any], cid: int, change: Change) -> ObservedChange:
    info = change.status_info
    error = info.error.description or info.error.code if info and info.error else None
    return ObservedChange(change_id=cid, change_type=_change_type(wire, cid),
                          status=info.status if info else None, state=info.state if info else None,
                          description=info.description if info else None, error=error,
                          allowed_input=tuple(a.type for a in change.allowed_input))


class _Refresh:
    def __init__(self, client: RefreshClient, desired: Sequence[Desired], state: State,
                 targets: Sequence[str]) -> None:
        self.client = client
        names, _ = select_targets([*(d.name for d in desired), *state.entries], targets)
        self.names = set(names)
        # A targeted spec renamed from another entry needs that entry's enrollment read too.
        moves = find_moves(desired, state)
        self.names |= {old for new, old in moves.moves.items() if new in self.names}
        self.names |= {old for new, olds in moves.ambiguous.items() if new in self.names for old in olds}
        self.desired = [d for d in desired if d.name in self.names]
        self.windows = {d.name for d in self.desired if d.validation == "third-party" and d.policy.renewal_days}
        self.state = state
        self.requests = 0
        self._reads: dict[int, list[asyncio.Task[Change]]] = {}
        self._early: dict[tuple[int, int], asyncio.Task[Change]] = {}

    async def _list(self, contract: str) -> list[dict[str, Any]]:
        """As sent: ids and pending changes are read from it at once; each enrollment in scope is
        validated later, while the change reads are on the wire (``enrollment_wire``)."""
        self.requests += 1
        return await self.client.list_enrollments_wire(contract)

    async def _get(self, eid: int) -> dict[str, Any] | None:
        self.requests += 1
        try:
            return _wire(await self.client.get_enrollment(eid))
        except NotFound:
            return None

    def _start_reads(self, wire: dict[str, Any]) -> None:
        """Send the change reads of one enrollment now (once, however often it is in scope)."""
        eid = _enrollment_id(wire)
        if eid in self._reads:
            return
        try:
            pending = _pending_ids(wire)
        except (KeyError, TypeError, ValueError, AttributeError):
            # Malformed as sent: validation says how (TransportError), as it did for the whole list.
            pending = _pending_ids(enrollment_wire(wire))
        reads = []
        for cid in pending:
            early = self._early.pop((eid, cid), None)
            if early is None:
                self.requests += 1
                early = asyncio.ensure_future(self.client.get_change(eid, cid))
            reads.append(early)
        self._reads[eid] = reads

    def _start_early_reads(self, entries: dict[str, StateEntry]) -> None:
        """Read the changes state last saw in flight without waiting for the list.

        A change read needs the change id, which only the list gives for changes begun outside
        this tool (a renewal, an edit in Control Center): those reads wait on the list. Changes
        apply started are in state, so their reads go out with the list and the round trip the
        list costs is not paid twice. A change the list no longer shows pending was read for
        nothing (one request): that is the price of not waiting.
        """
        for entry in entries.values():
            if entry.enrollment_id is None or entry.change is None:
                continue
            key = (entry.enrollment_id, entry.change.change_id)
            if key not in self._early:
                self.requests += 1
                self._early[key] = asyncio.ensure_future(self.client.get_change(*key))

    async def _settle_unused(self) -> None:
        """Early reads of changes no longer pending: not waited for (one still being retried is
        stopped), and their errors (a change that ended may be gone) do not matter."""
        unused = list(self._early.values())
        self._early.clear()
        for task in unused:
            task.cancel()
        await asyncio.gather(*unused, return_exceptions=True)

    async def _observe(self, wire: dict[str, Any], contract: str, view: dict[str, Any],
                       print_: str) -> ObservedEnrollment:
        eid = _enrollment_id(wire)
        ids = _pending_ids(wire)
        changes = await asyncio.gather(*self._reads[eid])
        return ObservedEnrollment(
            enrollment_id=eid, contract_id=contract, common_name=_cn(wire), view=view, fingerprint=print_,
            auto_renewal_start=wire.get("autoRenewalStartTime"),
            changes=tuple(_observed_change(wire, cid, ch) for cid, ch in zip(ids, changes, strict=True)))

    async def _with_validity(self, bound: dict[str, ObservedEnrollment],
                             entries: dict[str, StateEntry]) -> dict[str, ObservedEnrollment]:
        """The deployed certificate's validity, for third-party specs with a renewal window whose
        state entry does not record it (an enrollment imported, or uploaded before state kept it):
        one deployment read each, none for the rest."""
        wanted = [n for n, o in bound.items() if n in self.windows and not o.changes
                  and entries[n].certificate_not_after is None]
        read = await asyncio.gather(*(self._deployed_validity(bound[n].enrollment_id) for n in wanted))
        for name, (not_before, not_after) in zip(wanted, read, strict=True):
            bound[name] = bound[name].model_copy(update={"certificate_not_before": not_before,
                                                          "certificate_not_after": not_after})
        return bound

    async def _deployed_validity(self, eid: int) -> tuple[datetime | None, datetime | None]:
        for fetch in (self.client.get_production_deployment, self.client.get_staging_deployment):
            self.requests += 1
            deployment = await fetch(eid)
            pems = [c.certificate for c in deployment.certificates if c.certificate] if deployment else []
            if pems:
                return validity_of(pems)
        return None, None

    async def run(self) -> Observed:
        try:
            return await self._run()
        except BaseException:
            pending = [*(t for ts in self._reads.values() for t in ts), *self._early.values()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)  # retrieved: none logged as lost
            raise

    async def _run(self) -> Observed:
        entries = {n: e for n, e in self.state.entries.items() if n in self.names}
        contracts = sorted({d.contract_id for d in self.desired} | {e.contract_id for e in entries.values()})
        listing = [asyncio.ensure_future(self._list(c)) for c in contracts]  # first in the client's queue
        self._start_early_reads(entries)
        try:
            lists = await asyncio.gather(*listing)
        except BaseException:
            for task in listing:
                task.cancel()
            await asyncio.gather(*listing, return_exceptions=True)
            raise
        listed: dict[int, tuple[str, dict[str, Any]]] = {
            _enrollment_id(w): (c, w) for c, ws in zip(contracts, lists, strict=True) for w in ws}
        # Every enrollment any state entry binds, targeted or not, is somebody's: never offered twice.
        claimed = {e.enrollment_id for e in self.state.entries.values() if e.enrollment_id is not None}

        bound_wires: dict[str, tuple[str, dict[str, Any]]] = {}
        for name, entry in entries.items():
            if entry.enrollment_id in listed:
                bound_wires[name] = listed[entry.enrollment_id]
        candidate_wires: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for d in self.desired:
            bound_entry = entries.get(d.name)
            if bound_entry is not None and bound_entry.enrollment_id is not None:
                continue
            same = [(c, w) for eid, (c, w) in sorted(listed.items())
                    if c == d.contract_id and eid not in claimed and _cn(w) == d.common_name.lower()]
            if same:
                candidate_wires[d.name] = same
        # The change reads had to wait for the list (they need its ids): they are the critical
        # path, so they go out before any other work (views, fingerprints, lookups of missing
        # entries), which then runs while they are on the wire.
        for _, wire in [*bound_wires.values(), *(cw for ws in candidate_wires.values() for cw in ws)]:
            self._start_reads(wire)

        gone: dict[str, int] = {}
        missing = {n: e for n, e in entries.items() if e.enrollment_id is not None
                   and e.enrollment_id not in listed}
        fetched = await asyncio.gather(*(self._get(e.enrollment_id) for e in missing.values()
                                         if e.enrollment_id is not None))
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        for (name, entry), got in zip(missing.items(), fetched, strict=True):
            if got is None:
                gone[name] = entry.enrollment_id  # type: ignore[assignment]
            else:
                found[name] = (entry.contract_id, got)
                self._start_reads(got)
        bound_wires = {**found, **bound_wires}

        offered = {_enrollment_id(w) for ws in candidate_wires.values() for _, w in ws}
        unmanaged = tuple(Unmanaged(enrollment_id=eid, common_name=_cn(w), contract_id=c)
                          for eid, (c, w) in sorted(listed.items()) if eid not in claimed and eid not in offered)

        bound_names = list(bound_wires)
        to_observe = [*bound_wires.values(), *((c, w) for ws in candidate_wires.values() for c, w in ws)]
        fetched_ids = {_enrollment_id(w) for _, w in found.values()}  # validated by get_enrollment
        views: list[tuple[dict[str, Any], dict[str, Any], str]] = []
        for contract, wire in to_observe:
            # A look at the network between two enrollments (~50 µs of work each): an answer that
            # arrives meanwhile is read, and the next read sent, at once. Every 64 enrollments
            # (~3 ms) cost 3-4 % at N = 500 and 1,000, the whole first round waiting behind them.
            await asyncio.sleep(0)
            if _enrollment_id(wire) not in fetched_ids:
                wire = enrollment_wire(wire)  # as listed, unvalidated until now
            views.append((wire, observed_view(wire, contract_id=contract), fingerprint(wire)))
        observed = await asyncio.gather(*(self._observe(w, c, v, f)
                                          for (c, _), (w, v, f) in zip(to_observe, views, strict=True)))
        bound = dict(zip(bound_names, observed[:len(bound_names)], strict=True))
        bound = await self._with_validity(bound, entries)
        candidates: dict[str, tuple[ObservedEnrollment, ...]] = {}
        cand_names = [n for n, ws in candidate_wires.items() for _ in ws]
        for name, obs in zip(cand_names, observed[len(bound_names):], strict=True):
            candidates[name] = (*candidates.get(name, ()), obs)
        await self._settle_unused()
        clock = getattr(self.client, "cps_now", None)
        return Observed(bound=bound, gone=gone, candidates=candidates, unmanaged=unmanaged,
                        contracts=tuple(contracts), requests=self.requests, now=clock() if clock else None)


async def refresh(client: RefreshClient, desired: Sequence[Desired], state: State, *,
                  targets: Sequence[str] = ()) -> Observed:
    """Read CPS for the specs and state entries in scope (``targets`` narrows it) into a snapshot."""
    with no_full_collections():
        return await _Refresh(client, desired, state, targets).run()
