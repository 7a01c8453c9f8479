"""The CPS domain logic of the sandbox: enrollments, changes and their workflow on a virtual clock.

JSON in, JSON out, in the newest media versions' shapes; errors are ``ApiProblem``. No HTTP and
no file I/O: the app validates request bodies against the schemas before calling, and persists
``snapshot()`` after mutating calls (restoring with ``Engine.from_snapshot`` or
``Engine(..., data=snapshot)``). Every public method first runs the transitions that are due by
``clock.now()``, so workflows advance lazily, exactly as far as virtual time allows.

Choices where CPS's behaviour is not public (CPS-API.md tags them [sandbox]):
- Create: 409 ``conflict`` for a duplicate CN on the contract (unless ``allow_duplicate_cn``) and
  for a second create within ``create_throttle_seconds`` on the same contract.
- Update: 400 for changes to ``csr.cn``, ``sniOnly``, ``secureNetwork``, ``ra``,
  ``validationType``, ``certificateType``. A body equal to the stored one answers 200 with no
  change even while a change is pending. ``allow_cancel_pending_changes`` cancels the pending
  change and reopens one that covers it (a cancelled certificate change is reopened as a
  certificate change with fresh challenges or CSRs). An edit of a DV enrollment inside its
  auto-renewal window (20 days before expiry) answers 409 unless ``renewal_date_check_override``.
- Delete: 200 and immediate removal when nothing was ever deployed and no deploy date is given;
  otherwise 202 and removal ``durations.deletion`` later (GET keeps working until then).
- Cancel (explicit, or a ``deny`` acknowledgement) restores the body the change's PUT replaced.
- Third-party uploads that are not usable certificates (unreadable PEM, wrong key type, out of
  date) answer 400; a key or name mismatch is a post-verification warning, as in CPS.
- A change-management acknowledgement whose ``hash`` differs from the current info answers 409.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from reconciler.sandbox import views
from reconciler.sandbox.ca import CertificateAuthority
from reconciler.sandbox.clock import VirtualClock
from reconciler.sandbox.engine_config import Durations, EngineConfig, ValidationPolicy
from reconciler.sandbox.enrollment_rules import check, classify, is_dv, normalise, refuse_immutable
from reconciler.sandbox.looking import TxtLookup
from reconciler.sandbox.problems import conflict, invalid_state, not_found, pending_change
from reconciler.sandbox.store import (
    Json,
    Store,
    bare_contract,
    change_link,
    enrollment_link,
    iso,
    parse,
    schedule_time,
    wire,
)
from reconciler.sandbox.store import pending_change as current_change
from reconciler.sandbox.workflow import CERTIFICATE_CHANGES, NETWORK_CHANGE, Workflow, change_view

__all__ = ["Durations", "Engine", "EngineConfig", "ValidationPolicy"]


class Engine:
    """Emulated CPS v2: enrollments scoped by contract, change workflows, deployments, history."""

    def __init__(
        self,
        config: EngineConfig,
        clock: VirtualClock,
        ca: CertificateAuthority,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.ca = ca
        stored = None
        if data is not None:
            stored = {k: v for k, v in copy.deepcopy(data).items() if k not in ("clock", "ca")}
        self.store = Store(stored)
        self.workflow = Workflow(config, ca, self.store)

    @classmethod
    def from_snapshot(cls, config: EngineConfig, data: dict[str, Any], *, speed: float | None = None) -> Engine:
        """Restore an engine, its clock (resuming at the saved virtual time) and its CA."""
        clock = VirtualClock.from_json(data["clock"], speed=speed)
        return cls(config, clock, CertificateAuthority.from_json(data["ca"]), data)

    def set_txt_lookup(self, lookup: TxtLookup | None) -> None:
        """Answer dns-01 checks (policy ``dns``) from ``lookup(name) -> TXT values`` instead of a
        resolver, e.g. from the sandbox's own Edge DNS record sets."""
        self.workflow.txt_lookup = lookup

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-serialisable: enrollments, changes, counters, clock and CA."""
        data = self.store.copy_data()
        data["clock"] = self.clock.to_json()
        data["ca"] = self.ca.to_json()
        return data

    def _now(self) -> datetime:
        now = self.clock.now()
        self.workflow.run_due(now)
        return now

    def advance(self, seconds: float) -> None:
        """Move the virtual clock and run every transition that became due."""
        self.clock.advance(seconds)
        self._now()

    # -- enrollments ---------------------------------------------------------------------------

    def _view(self, record: Json) -> Json:
        return views.enrollment_view(record, self.config.max_sans, self.workflow.renewal_start(record))

    def list_enrollments(self, contract_id: str | None) -> list[dict[str, Any]]:
        """The contract's enrollments, or every enrollment when ``contract_id`` is None."""
        self._now()
        contract = bare_contract(contract_id) if contract_id is not None else None
        records = [r for r in self.store.enrollments.values() if contract is None or r["contract"] == contract]
        return [self._view(r) for r in sorted(records, key=lambda r: int(r["id"]))]

    def get_enrollment(self, enrollment_id: int) -> dict[str, Any]:
        self._now()
        return self._view(self.store.enrollment(enrollment_id))

    def _pre_warnings(self, body: Json, removed: list[str] | None = None) -> list[str]:
        warnings = []
        if removed:
            warnings.append(
                "SANS_REMOVED_REQUIRE_ACKNOWLEDGEMENT: SANs removed from the certificate need acknowledgement: "
                + ", ".join(removed)
                + ". These names will no longer be covered once the change deploys."
            )
        if self.config.pre_verification_warnings:
            warnings.append(
                f"Review the names being provisioned ({', '.join(body['csr']['sans'])}) before the change proceeds."
            )
        return warnings

    def create_enrollment(
        self,
        contract_id: str,
        body: dict[str, Any],
        *,
        allow_duplicate_cn: bool = False,
        deploy_not_after: str | None = None,
        deploy_not_before: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        now = self._now()
        contract = bare_contract(contract_id)
        stored = normalise(body)
        check(stored, self.config.max_sans)
        schedule = {
            "notBefore": schedule_time(deploy_not_before, "deploy-not-before"),
            "notAfter": schedule_time(deploy_not_after, "deploy-not-after"),
        }
        cn = stored["csr"]["cn"].lower()
        if not allow_duplicate_cn:
            for other in self.store.enrollments.values():
                if other["contract"] == contract and other["body"]["csr"]["cn"].lower() == cn:
                    raise conflict(
                        f"Enrollment {other['id']} on contract {contract} already uses CN {stored['csr']['cn']}; "
                        "pass allow-duplicate-cn=true to create another.",
                        title="Duplicate common name.",
                    )
        last = self.store.data["last_create"].get(contract)
        throttle = self.config.create_throttle_seconds
        if throttle > 0 and last is not None and (now - parse(last)).total_seconds() < throttle:
            wait = throttle - (now - parse(last)).total_seconds()
            raise conflict(
                f"Only one enrollment can be created every {throttle:.0f} seconds on contract {contract}; "
                f"retry in {wait:.0f} seconds.",
                title="Enrollment creation throttled.",
            )
        enrollment_id = self.store.new_enrollment_id()
        record: Json = {
            "id": enrollment_id,
            "contract": contract,
            "body": stored,
            "slot": self.store.new_slot(),
            "created": iso(now),
            "delete_at": None,
            "changes": {},
            "deployments": {"production": None, "staging": None},
            "certificate_sets": {},
            "validated_domains": {},
        }
        self.store.add(record)
        self.store.data["last_create"][contract] = iso(now)
        change = self.workflow.open(
            record, "new-certificate", now, schedule=schedule, pre_warnings=self._pre_warnings(stored)
        )
        return 202, self._status(enrollment_id, [change])

    def _status(self, enrollment_id: int, changes: list[Json]) -> Json:
        return {
            "enrollment": enrollment_link(enrollment_id),
            "changes": [change_link(enrollment_id, int(c["id"])) for c in changes],
        }

    def update_enrollment(
        self,
        enrollment_id: int,
        body: dict[str, Any],
        *,
        allow_cancel_pending_changes: bool = False,
        allow_staging_bypass: bool = False,
        force_renewal: bool = False,
        renewal_date_check_override: bool = False,
        allow_missing_certificate_addition: bool = False,
        deploy_not_after: str | None = None,
        deploy_not_before: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        now = self._now()
        record = self.store.enrollment(enrollment_id)
        if record["delete_at"] is not None:
            raise invalid_state(f"Enrollment {enrollment_id} is being deleted.")
        new = normalise(body)
        edit = classify(record["body"], new)
        refuse_immutable(edit)
        check(new, self.config.max_sans)
        schedule = {
            "notBefore": schedule_time(deploy_not_before, "deploy-not-before"),
            "notAfter": schedule_time(deploy_not_after, "deploy-not-after"),
        }
        deployments = record["deployments"]
        live = deployments["production"] or deployments["staging"]
        missing_key = (
            allow_missing_certificate_addition
            and not is_dv(new)
            and new["enableMultiStackedCertificates"]
            and live is not None
            and not any(c["keyAlgorithm"] == "ECDSA" for c in live["certificates"])
        )
        if not edit.anything and not force_renewal and not missing_key:
            return 200, self._status(enrollment_id, [])
        renewal_start = self.workflow.renewal_start(record)
        if renewal_start is not None and now >= renewal_start and not renewal_date_check_override:
            raise conflict(
                f"Enrollment {enrollment_id} is inside its auto-renewal window (since {iso(renewal_start)}); "
                "pass renewal-date-check-override=true to edit it anyway (the renewal may then come too late "
                "and leave an expired certificate on the network).",
                title="Inside the auto-renewal window.",
            )
        pending = current_change(record)
        cancelled_type = None
        if pending is not None:
            if not allow_cancel_pending_changes:
                raise pending_change(
                    f"Change {pending['id']} is pending on enrollment {enrollment_id}; "
                    "pass allow-cancel-pending-changes=true to cancel it."
                )
            self.workflow.cancel(record, pending, now, revert=False)
            cancelled_type = pending["type"]
        kind = self._change_kind(edit.certificate_kind, force_renewal, missing_key, cancelled_type, bool(edit.network))
        if kind in CERTIFICATE_CHANGES and live is None:
            kind = "new-certificate"
        if kind == NETWORK_CHANGE and live is None:
            kind = None
        previous, record["body"] = record["body"], new
        if kind is None:
            return 200, self._status(enrollment_id, [])
        change = self.workflow.open(
            record,
            kind,
            now,
            previous_body=previous,
            schedule=schedule,
            staging_bypass=allow_staging_bypass,
            pre_warnings=self._pre_warnings(new, edit.sans_removed) if kind != NETWORK_CHANGE else [],
        )
        return 202, self._status(enrollment_id, [change])

    @staticmethod
    def _change_kind(
        certificate_kind: str | None, force_renewal: bool, missing_key: bool, cancelled: str | None, network: bool
    ) -> str | None:
        if force_renewal:
            return certificate_kind or "renewal"
        if certificate_kind:
            return certificate_kind
        if missing_key:
            return "modify-certificate"
        if cancelled in CERTIFICATE_CHANGES:
            return cancelled  # the superseded certificate change must still happen
        if network or cancelled == NETWORK_CHANGE:
            return NETWORK_CHANGE
        return None

    def delete_enrollment(
        self,
        enrollment_id: int,
        *,
        allow_cancel_pending_changes: bool = False,
        deploy_not_after: str | None = None,
        deploy_not_before: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        now = self._now()
        record = self.store.enrollment(enrollment_id)
        if record["delete_at"] is not None:
            return 202, self._status(enrollment_id, [])
        pending = current_change(record)
        if pending is not None:
            if not allow_cancel_pending_changes:
                raise pending_change(
                    f"Change {pending['id']} is pending on enrollment {enrollment_id}; "
                    "pass allow-cancel-pending-changes=true to delete anyway."
                )
            self.workflow.cancel(record, pending, now, revert=False)
        not_before = schedule_time(deploy_not_before, "deploy-not-before")
        schedule_time(deploy_not_after, "deploy-not-after")
        deployed = record["deployments"]["production"] or record["deployments"]["staging"]
        if not deployed and not_before is None and deploy_not_after is None:
            self.store.remove(enrollment_id)
            return 200, self._status(enrollment_id, [])
        start = max(now, parse(not_before)) if not_before else now
        record["delete_at"] = iso(start + timedelta(seconds=self.config.durations.deletion))
        return 202, self._status(enrollment_id, [])

    # -- changes -------------------------------------------------------------------------------

    def get_change(self, enrollment_id: int, change_id: int) -> dict[str, Any]:
        self._now()
        _, change = self.store.change(enrollment_id, change_id)
        return change_view(enrollment_id, change)

    def cancel_change(self, enrollment_id: int, change_id: int) -> dict[str, Any]:
        now = self._now()
        record, change = self.store.change(enrollment_id, change_id)
        if change["state"] == "completed":
            raise invalid_state(f"Change {change_id} is already complete and cannot be cancelled.")
        if change["state"] != "cancelled":
            self.workflow.cancel(record, change, now, revert=True)
        return {"change": change_link(enrollment_id, change_id)}

    def get_input_info(
        self, enrollment_id: int, change_id: int, info_type: str, shape: str = "default"
    ) -> dict[str, Any]:
        self._now()
        record, change = self.store.change(enrollment_id, change_id)
        return copy.deepcopy(self.workflow.info(record, change, info_type, shape))

    def post_input_update(
        self, enrollment_id: int, change_id: int, update_type: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        now = self._now()
        record, change = self.store.change(enrollment_id, change_id)
        self.workflow.update(record, change, update_type, body, now)
        return {"change": change_link(enrollment_id, change_id)}

    def get_deployment_schedule(self, enrollment_id: int, change_id: int) -> dict[str, Any]:
        self._now()
        _, change = self.store.change(enrollment_id, change_id)
        return {"notBefore": wire(change["schedule"]["notBefore"]), "notAfter": wire(change["schedule"]["notAfter"])}

    def put_deployment_schedule(self, enrollment_id: int, change_id: int, body: dict[str, Any]) -> dict[str, Any]:
        now = self._now()
        _, change = self.store.change(enrollment_id, change_id)
        if change["state"] in ("completed", "cancelled"):
            raise invalid_state(f"Change {change_id} is {change['state']}; its schedule cannot change.")
        change["schedule"] = {
            "notBefore": schedule_time(body.get("notBefore"), "notBefore"),
            "notAfter": schedule_time(body.get("notAfter"), "notAfter"),
        }
        change["updated"] = iso(now)
        not_before = change["schedule"]["notBefore"]
        if not_before and change["status"] == "deploy-production" and change["due"]:  # staging is never held
            later = parse(not_before) + timedelta(seconds=self.config.durations.production)
            change["due"] = iso(max(parse(change["due"]), later))
        return {"change": change_link(enrollment_id, change_id)}

    # -- deployments and history ---------------------------------------------------------------

    def get_deployments(self, enrollment_id: int) -> dict[str, Any]:
        self._now()
        return views.deployments_view(self.store.enrollment(enrollment_id))

    def get_deployment(self, enrollment_id: int, network: str) -> dict[str, Any]:
        self._now()
        record = self.store.enrollment(enrollment_id)
        deployment = record["deployments"].get(network) if network in ("production", "staging") else None
        if deployment is None:
            raise not_found(f"Nothing is deployed on {network} for enrollment {enrollment_id}.")
        return views.deployment_view(deployment)

    def get_change_history(self, enrollment_id: int, include_all: bool = False) -> dict[str, Any]:
        self._now()
        return views.change_history(self.store.enrollment(enrollment_id), include_all)

    def get_certificate_history(self, enrollment_id: int, include_all: bool = False) -> dict[str, Any]:
        self._now()
        return views.certificate_history(self.store.enrollment(enrollment_id), include_all)

    def get_dv_history(self, enrollment_id: int) -> dict[str, Any]:
        self._now()
        return views.dv_history(self.store.enrollment(enrollment_id))
