"""The per-enrollment step machine: follow one CPS change from wherever it is to deployed.

The loop reads the change, and for each ``allowedInput`` either supplies it (publishing DV
challenges, uploading third-party certificates, acknowledging warnings or change management) or
stops with a clear "waiting for ..." outcome; while CPS works on its own it polls with backoff.
It never looks at status names to decide what to do (CPS-API.md 5.1), only to describe. A 404 on
an input's info means the change moved on (re-read it); a 409 on an input update was already
retried by the client and means the same. Once the change completes, with
``wait_for_deployment`` it polls production until it serves the new certificate, all within
the run's deadline (``--timeout``).
"""

from __future__ import annotations

from collections import Counter

from cryptography import x509

from reconciler.apply.ack_step import (
    CHANGE_MANAGEMENT,
    POST_WARNINGS,
    PRE_WARNINGS,
    acknowledge_change_management,
    acknowledge_warnings,
)
from reconciler.apply.context import Outcome, Stop, WorkflowContext
from reconciler.apply.dv_step import LETS_ENCRYPT, DvStep
from reconciler.apply.upload_step import THIRD_PARTY, UploadStep
from reconciler.cps.models import Change, Deployment
from reconciler.errors import NotFound
from reconciler.spec.models import DvEnrollmentSpec, ThirdPartyEnrollmentSpec
from reconciler.x509names import dns_sans, fingerprint

# Inputs in the order a change can offer them; warnings first so that a held change moves.
_ORDER = {PRE_WARNINGS: 0, LETS_ENCRYPT: 1, THIRD_PARTY: 1, POST_WARNINGS: 2, CHANGE_MANAGEMENT: 3}
_VALIDATION_INPUTS = frozenset({LETS_ENCRYPT, THIRD_PARTY})
# How often one input may be given for one change before apply suspects a loop.
_MAX_SUBMISSIONS = 6


def _is_deploying(change: Change) -> bool:
    # Description only: deployment steps have no published names (the sandbox's start with deploy).
    return "deploy" in (change.status or "")


def _names(pem: str) -> set[str]:
    return set(dns_sans(x509.load_pem_x509_certificate(pem.encode())))


class EnrollmentWorkflow:
    """Drives one change of one enrollment; ``run()`` returns an :class:`Outcome`, never raises
    for workflow conditions (waiting, CPS error state), but lets real errors propagate."""

    def __init__(self, ctx: WorkflowContext, enrollment_id: int, change_id: int | None) -> None:
        self.ctx = ctx
        self.enrollment_id = enrollment_id
        self.change_id = change_id
        self.dv = DvStep(ctx, enrollment_id) if isinstance(ctx.spec, DvEnrollmentSpec) else None
        self.upload = UploadStep(ctx, enrollment_id) if isinstance(ctx.spec, ThirdPartyEnrollmentSpec) else None
        self.notes: list[str] = []

    async def run(self) -> Outcome:
        try:
            outcome = await self._follow_change() if self.change_id is not None else None
            if outcome is not None:
                return outcome
            if self.dv is not None:
                self.notes += await self.dv.cleanup_if_done(None, None)
            if self.ctx.wait_for_deployment:
                return await self._await_deployment()
            return self.ctx.outcome("done", "applied", self.notes)
        except Stop as stop:
            if self.notes:
                return Outcome(stop.outcome.name, stop.outcome.status, stop.outcome.message,
                               stop.outcome.details + tuple(self.notes))
            return stop.outcome

    # -- the change ------------------------------------------------------------------------------

    async def _read_change(self, change_id: int) -> Change | None:
        """The change, or None when CPS no longer lists it as pending (it finished)."""
        try:
            return await self.ctx.client.get_change(self.enrollment_id, change_id)
        except NotFound:
            try:
                enrollment = await self.ctx.client.get_enrollment(self.enrollment_id)
            except NotFound:
                raise self.ctx.fail(f"enrollment {self.enrollment_id} no longer exists in CPS") from None
            if change_id in enrollment.pending_change_ids:
                raise
            return None

    async def _follow_change(self) -> Outcome | None:
        """Walk the change; None once it completed (deployment wait follows), else an outcome."""
        ctx = self.ctx
        assert self.change_id is not None
        change_id = self.change_id
        delay = ctx.poll.initial
        submissions: Counter[str] = Counter()
        saw_validation = False
        past_validation = not ctx.expect_new_certificate
        while True:
            change = await self._read_change(change_id)
            if change is None:
                return None
            ctx.journal.change_seen(ctx.name, change_id, change)
            if self.dv is not None:
                self.notes += await self.dv.cleanup_if_done(change_id, change)
            if self.upload is not None:
                self.upload.settle(change_id, change.allowed(THIRD_PARTY) is not None)
            state = change.state
            if state == "completed":
                return None
            if state == "cancelled":
                raise ctx.fail(f"change {change_id} was cancelled in CPS; run plan and apply again")
            if state == "error":
                error = change.status_info.error if change.status_info else None
                what = f"{error.code}: {error.description}" if error and error.code else (change.status or "error")
                raise ctx.fail(f"change {change_id} failed in CPS ({what})",
                               ["cancel it (apply --cancel-pending with the spec change, or Control Center) "
                                "and apply again"])
            description = (change.status_info.description if change.status_info else None) or ""
            ctx.step(change.status or state or "running", description)
            advanced = False
            offered = sorted((a.type for a in change.allowed_input), key=lambda t: _ORDER.get(t, 9))
            for input_type in offered:
                saw_validation |= input_type in _VALIDATION_INPUTS
                past_validation |= input_type in (POST_WARNINGS, CHANGE_MANAGEMENT)
                advanced = await self._give(input_type, change_id)
                if advanced:
                    submissions[input_type] += 1
                    if submissions[input_type] > _MAX_SUBMISSIONS:
                        raise ctx.fail(f"CPS keeps asking for {input_type} on change {change_id}")
                    break
            if advanced:
                delay = ctx.poll.initial
            else:
                if saw_validation and not set(offered) & _VALIDATION_INPUTS:
                    past_validation = True
                past_validation |= _is_deploying(change)
                if not ctx.wait_for_deployment and (past_validation or ctx.single_pass):
                    return ctx.outcome("submitted", f"CPS is on it ({change.status or state}); not waiting",
                                       self.notes)
            if ctx.time_left <= 0:
                return ctx.outcome("timeout", f"timed out; change {change_id} is still {change.status or state}",
                                   ["run apply again to keep following it, or raise --timeout"])
            await ctx.poll.sleep(min(ctx.poll.jittered(delay), max(0.0, ctx.time_left)))
            if not advanced:
                delay = ctx.poll.next(delay)

    async def _give(self, input_type: str, change_id: int) -> bool:
        ctx = self.ctx
        if input_type == LETS_ENCRYPT and self.dv is not None:
            return await self.dv.answer(change_id)
        if input_type == THIRD_PARTY and self.upload is not None:
            return await self.upload.answer(change_id)
        if input_type in (PRE_WARNINGS, POST_WARNINGS):
            return await acknowledge_warnings(ctx, self.enrollment_id, change_id, input_type)
        if input_type == CHANGE_MANAGEMENT:
            return await acknowledge_change_management(ctx, self.enrollment_id, change_id)
        raise ctx.wait(f"waiting for input {input_type} on change {change_id} (apply cannot give it)")

    # -- deployment --------------------------------------------------------------------------------

    def _is_new(self, deployment: Deployment) -> bool:
        pems = [c.certificate for c in deployment.certificates if c.certificate]
        if not pems:
            return False
        if not self.ctx.expect_new_certificate:
            return True
        served = {fingerprint(x509.load_pem_x509_certificate(p.encode())): p for p in pems}
        entry = self.ctx.journal.entry(self.ctx.name)
        expected = set(entry.certificate_fingerprints.values()) if self.upload is not None and entry else set()
        if expected:
            return expected <= set(served)
        # DV, or an adopted third-party enrollment whose uploads state never saw: a certificate
        # production did not serve before, covering every name of the spec.
        wanted = {s.lower() for s in self.ctx.spec.sans} | {self.ctx.spec.common_name.lower()}
        return any(fp not in self.ctx.previous_production and wanted <= _names(pem) for fp, pem in served.items())

    async def _await_deployment(self) -> Outcome:
        ctx = self.ctx
        ctx.step("wait for deployment", "production")
        delay = ctx.poll.initial
        while True:
            production = await ctx.client.get_production_deployment(self.enrollment_id)
            if production is not None and self._is_new(production):
                ctx.checkpoint("deployed")
                expiry = ", ".join(sorted({c.expiry for c in production.certificates if c.expiry}))
                return ctx.outcome("done", "deployed" + (f" (expires {expiry})" if expiry else ""), self.notes)
            if ctx.time_left <= 0:
                return ctx.outcome("timeout", "timed out waiting for production to serve the new certificate",
                                   ["run apply again to keep waiting, or raise --timeout"])
            await ctx.poll.sleep(min(ctx.poll.jittered(delay), max(0.0, ctx.time_left)))
            delay = ctx.poll.next(delay)
