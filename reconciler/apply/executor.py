"""The executor: runs a plan's actions, enrollments in parallel, each enrollment's steps in order.

Per enrollment it does what the plan's actions say (create, adopt, update, delete) and then
follows the CPS change to the end with :class:`EnrollmentWorkflow`. Every step is journalled to
the state file as it happens, and an *intent* is written before each non-idempotent call, so a
run killed at any point is resumed by running apply again:

- an interrupted create is found by CN and contract before anything is created again;
- an upload is recorded (fingerprints) before it is sent and never repeated once it landed;
- a pending change is never cancelled unless the plan says so (``--cancel-pending``);
- only deletes the plan allowed are carried out, and a delete (or release) waits for its
  successors: it runs only after each finished and, read live from CPS, serves every name it
  takes over (production; staging where its spec does not wait for deployment). A successor
  that failed or waits leaves the old enrollment untouched (``held``; ``retire_step``);
- a replacement retires the old binding (``NAME@ID``) in the same write that frees the name for
  the new enrollment, so a crash between the halves resumes as "create, then delete the old".

The executor never decides *what* to change (that is the planner's job); it only decides how to
get each enrollment there, reading CPS as it goes.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from reconciler.apply.context import Outcome, PollPolicy, Report, Stop, WorkflowContext
from reconciler.apply.journal import StateJournal
from reconciler.apply.publishers import PublisherFactory
from reconciler.apply.retire_step import Retirement
from reconciler.apply.testhooks import checkpoint
from reconciler.apply.thirdparty import pem_fingerprint
from reconciler.apply.workflow import EnrollmentWorkflow
from reconciler.cps.client import CpsClient
from reconciler.cps.mapping import spec_to_wire
from reconciler.errors import Conflict, CpsApiError, RateLimited, ReconcileError
from reconciler.plan.model import Action, Plan
from reconciler.plan.succession import retired_name
from reconciler.spec.models import DvEnrollmentSpec, ThirdPartyEnrollmentSpec

log = logging.getLogger("reconciler.apply")

AnySpec = DvEnrollmentSpec | ThirdPartyEnrollmentSpec
SAME_CN_MAX_AGE = 60.0
"""Seconds after the plan's refresh during which its same-CN enrollments stand for a list."""
_THROTTLED = re.compile(r"throttl|every \d+ (second|minute)|retry in", re.IGNORECASE)
_WINDOW = re.compile(r"every (\d+) (second|minute)", re.IGNORECASE)


def throttle_detail(exc: Conflict, delay: float) -> str:
    """Why a create waits (CPS takes one new enrollment per contract every 5 minutes; CPS-API.md
    section 2) and when apply tries again, so that a normal multi-create run does not alarm."""
    window = _WINDOW.search(f"{exc.problem.title} {exc.problem.detail}")
    seconds = int(window.group(1)) * (60 if window.group(2).lower() == "minute" else 1) if window else 300
    every = f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} seconds"
    at = (datetime.now() + timedelta(seconds=delay)).strftime("%H:%M:%S")
    return (f"CPS creates one enrollment per contract every {every}; normal when several are created; "
            f"next try in {delay:g} s, at {at}")


@dataclass(frozen=True)
class ApplyOptions:
    """How to run: parallelism, overall timeout, whether to wait for CPS, how to poll."""

    parallelism: int = 10
    timeout: float = 3600.0
    no_wait: bool = False
    poll: PollPolicy = PollPolicy()


@dataclass
class ApplyResult:
    """Every enrollment's outcome plus the plan's blocked actions; ``exit_code`` per docs/exit-codes.md."""

    outcomes: list[Outcome] = field(default_factory=list)
    blocked: tuple[Action, ...] = ()

    @property
    def exit_code(self) -> int:
        if any(o.status in ("failed", "timeout") for o in self.outcomes):
            return 1
        if self.blocked:
            return 1  # the specs are not reached until someone decides (docs/exit-codes.md)
        if any(o.waiting for o in self.outcomes):
            return 3
        return 0


def _stamp(value: str | None) -> datetime | None:
    """A plan's ``created_at`` as an aware datetime (None when absent or unreadable)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _renewal_token(spec: AnySpec) -> str | None:
    """The spec's renewal token (third-party), used up by any new certificate it asks for."""
    return spec.renewal.token if isinstance(spec, ThirdPartyEnrollmentSpec) else None


def _group(actions: tuple[Action, ...]) -> dict[str, list[Action]]:
    groups: dict[str, list[Action]] = {}
    for action in actions:
        groups.setdefault(action.name, []).append(action)
    return groups


class Executor:
    """Runs one plan. Build one per apply; ``run`` may be awaited once."""

    def __init__(self, *, client: CpsClient, journal: StateJournal, specs: Mapping[str, AnySpec], root: Path,
                 state_dir: Path, options: ApplyOptions, publishers: PublisherFactory | None = None,
                 report: Report | None = None, run_id: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.journal = journal
        self.specs = dict(specs)
        self.root = root
        self.state_dir = state_dir
        self.options = options
        self.run_id = run_id or uuid.uuid4().hex
        self.publishers = publishers or PublisherFactory(root=root, state_dir=state_dir, run_id=self.run_id)
        self.report = report
        self.clock = clock
        self.started = clock()
        self.deadline = self.started + options.timeout
        self.refreshed_at: datetime | None = None
        self.refreshed_unstamped = False
        self.commit: str | None = None
        """The git commit of the checkout the plan was made from (recorded with each applied spec)."""
        self.outcomes: dict[str, Outcome] = {}
        """Outcomes of the enrollments finished so far in this run (successors are looked up here)."""

    def _step(self, name: str, step: str, detail: str = "") -> None:
        if self.report is not None:
            self.report(name, step, detail)

    async def run(self, plan: Plan) -> ApplyResult:
        """Run every action of ``plan`` (its blocked actions are only reported)."""
        plan.ensure_safe()
        self.commit = plan.commit
        self.refreshed_at = _stamp(plan.created_at) if plan.refreshed else None
        # A refreshed plan without a stamp was built in process by a caller that runs it at once.
        self.refreshed_unstamped = plan.refreshed and self.refreshed_at is None
        groups = _group(plan.actions)
        result = ApplyResult(blocked=plan.blocked)
        limiter = anyio.CapacityLimiter(max(1, self.options.parallelism))
        finished = {name: anyio.Event() for name in groups}

        async def one(name: str, actions: list[Action]) -> None:
            try:
                # A predecessor waits for its successors without holding a slot they may need.
                for successor in {s for a in actions for s in a.successors if s in finished and s != name}:
                    await finished[successor].wait()
                async with limiter:
                    outcome = await self._guarded(name, actions)
                self.outcomes[name] = outcome
                result.outcomes.append(outcome)
                self._step(name, f"-> {outcome.status}", outcome.message)
            finally:
                finished[name].set()

        async with anyio.create_task_group() as group:
            for name, actions in groups.items():
                group.start_soon(one, name, actions)
        order = list(groups)
        result.outcomes.sort(key=lambda o: order.index(o.name))
        return result

    async def _guarded(self, name: str, actions: list[Action]) -> Outcome:
        try:
            return await self._enrollment(name, actions)
        except Stop as stop:
            return stop.outcome
        except ReconcileError as exc:
            return Outcome(name, "failed", str(exc))
        except Exception as exc:  # one enrollment's bug must not abandon the others mid-workflow
            log.exception("%s: unexpected error", name)
            return Outcome(name, "failed", f"internal error: {type(exc).__name__}: {exc}")

    # -- one enrollment ----------------------------------------------------------------------------

    async def _enrollment(self, name: str, actions: list[Action]) -> Outcome:
        follow: tuple[int, int | None] | None = None
        spec = self.specs.get(name)
        summary = "applied"
        expect_new = True
        previous: frozenset[str] = frozenset()
        single_pass = True
        for action in actions:
            if action.kind in ("delete", "release") or (spec is None and action.reason == "deleting"):
                return await Retirement(self.client, self.journal, self.specs, self.outcomes, self.options.poll,
                                        self.options.no_wait, self.deadline, self.clock, self.report).run(name, action)
            if spec is None:
                return Outcome(name, "failed", f"no spec named {name} for a {action.kind} action")
            if action.kind == "move":
                assert action.moved_from is not None
                self.journal.move(action.moved_from, name)
                self._step(name, "move state entry", f"{action.moved_from} -> {name}")
                summary = f"moved from {action.moved_from}"
            elif action.kind == "replace":
                assert action.enrollment_id is not None
                retired = retired_name(name, action.enrollment_id)
                self.journal.retire(name, action.enrollment_id, retired)
                self._step(name, "replace enrollment", f"{action.enrollment_id} kept as {retired} until then")
                checkpoint(name, "replace:retired")
                follow, single_pass = await self._create(name, action, spec), False
                summary = f"replacement of enrollment {action.enrollment_id} created"
            elif action.kind == "create":
                follow, summary, single_pass = await self._create(name, action, spec), "created", False
            elif action.kind == "adopt":
                follow = self._adopt(name, action, spec)
                summary = f"adopted enrollment {follow[0]}"
            elif action.kind in ("update", "update-network", "renew"):
                previous = await self._production_fingerprints(action.enrollment_id)
                follow = await self._update(name, action, spec)
                summary, single_pass = ("renewed" if action.kind == "renew" else "updated"), False
                expect_new = action.kind in ("update", "renew") and action.new_certificate
                if follow[1] is None:
                    return Outcome(name, "done", "updated (no change workflow needed)")
            else:  # continue, in-progress: follow the change the plan saw
                eid = action.enrollment_id if action.enrollment_id is not None else (follow or (None, None))[0]
                if eid is None:
                    return Outcome(name, "failed", f"{action.kind} action without an enrollment id")
                cid = action.pending.change_id if action.pending else self._state_change(name)
                follow = (eid, cid)
                single_pass &= action.kind == "in-progress"
        if follow is None or follow[1] is None:
            if spec is not None:
                self.journal.finished(name, actions[-1].spec_hash, self.commit)
            return Outcome(name, "done", summary)
        assert spec is not None
        return await self._follow(name, spec, follow[0], follow[1], expect_new=expect_new, previous=previous,
                                  single_pass=single_pass, spec_hash=actions[-1].spec_hash)

    def _state_change(self, name: str) -> int | None:
        entry = self.journal.entry(name)
        return entry.change.change_id if entry is not None and entry.change is not None else None

    async def _follow(self, name: str, spec: AnySpec, eid: int, cid: int, *, expect_new: bool,
                      previous: frozenset[str], single_pass: bool, spec_hash: str | None) -> Outcome:
        wait = spec.wait_for_deployment and not self.options.no_wait
        publisher = (lambda: self.publishers.for_spec(spec)) if isinstance(spec, DvEnrollmentSpec) else None
        checker = (lambda: self.publishers.checker_for(spec)) if isinstance(spec, DvEnrollmentSpec) else None
        ctx = WorkflowContext(
            name=name, spec=spec, client=self.client, journal=self.journal, root=self.root,
            state_dir=self.state_dir, run_id=self.run_id, deadline=self.deadline, poll=self.options.poll,
            wait_for_deployment=wait, publisher=publisher, checker=checker,
            report=self.report, previous_production=previous,
            expect_new_certificate=expect_new, single_pass=single_pass and not wait, clock=self.clock)
        outcome = await EnrollmentWorkflow(ctx, eid, cid).run()
        if outcome.status == "done":
            # A new certificate came after the spec's renewal token: the token is used (also when
            # the renewal's own record was lost to a crash after CPS accepted it).
            self.journal.finished(name, spec_hash, self.commit,
                                  renewal_applied=_renewal_token(spec) if expect_new else None)
        return outcome

    async def _production_fingerprints(self, eid: int | None) -> frozenset[str]:
        if eid is None:
            return frozenset()
        production = await self.client.get_production_deployment(eid)
        if production is None:
            return frozenset()
        return frozenset(pem_fingerprint(c.certificate) for c in production.certificates if c.certificate)

    # -- actions -----------------------------------------------------------------------------------

    def _bind(self, name: str, spec: AnySpec, enrollment_id: int | None = None, *, adopting: bool = False) -> None:
        self.journal.bind(name, contract_id=spec.contract_id or "", common_name=spec.common_name,
                          prevent_destroy=spec.prevent_destroy, enrollment_id=enrollment_id,
                          renewal_applied=_renewal_token(spec) if adopting else None)

    async def _orphan(self, name: str, spec: AnySpec, seen: set[int]) -> tuple[int, int | None] | None:
        """After an interrupted create: the enrollment it may have left, found by CN + contract
        (the ids of every enrollment with that CN go into ``seen``)."""
        bound = {e.enrollment_id for n, e in self.journal.store.read().entries.items() if n != name}
        same_cn = await self.client.find_enrollments_by_cn(spec.contract_id or "", spec.common_name)
        seen.update(e.enrollment_id for e in same_cn)
        found = [e for e in same_cn if e.enrollment_id not in bound]
        if len(found) > 1:
            ids = ", ".join(str(e.enrollment_id) for e in found)
            raise ReconcileError(f"{name}: an interrupted create and several enrollments ({ids}) with CN "
                                 f"{spec.common_name}; adopt one with `reconcile import`")
        if not found:
            return None
        enrollment = found[0]
        pending = enrollment.pending_change_ids
        return enrollment.enrollment_id, pending[-1] if pending else None

    def _same_cn_ids(self, action: Action, looked_up: set[int] | None) -> set[int] | None:
        """The ids of every enrollment with the spec's CN in its contract, when known well enough
        for the create to skip listing them before its POST (None: it lists). Known: from a CN
        look-up just made, or from the refresh this run's plan rests on (its unbound same-CN
        enrollments; the bound ones are in state) while that is under a minute old: a saved
        plan, a slow confirmation or a create CPS throttled for minutes lists again. Extra ids
        do no harm: only enrollments with the CN are compared against them after a lost answer."""
        if looked_up is not None:
            return looked_up
        if action.reason != "new" or action.facts is None:
            return None
        if self.refreshed_at is not None:
            age = (datetime.now(UTC) - self.refreshed_at).total_seconds()
        elif self.refreshed_unstamped:
            age = self.clock() - self.started
        else:
            return None
        if not 0 <= age <= SAME_CN_MAX_AGE:
            return None
        bound = {e.enrollment_id for e in self.journal.store.read().entries.values() if e.enrollment_id is not None}
        return bound | set(action.facts.same_cn_ids)

    async def _create(self, name: str, action: Action, spec: AnySpec) -> tuple[int, int | None]:
        entry = self.journal.entry(name)
        looked_up: set[int] | None = None
        if (entry is not None and entry.intent is not None and entry.intent.op == "creating") \
                or action.reason == "resume-create":
            looked_up = set()
            orphan = await self._orphan(name, spec, looked_up)
            if orphan is not None:
                self._step(name, "found enrollment of the interrupted create", str(orphan[0]))
                self.journal.created(name, orphan[0], orphan[1], None)
                self.journal.finished_spec(name, action.spec_hash, self.commit)
                return orphan
        self._bind(name, spec)
        self.journal.unbind(name)
        self.journal.intent(name, "creating", {"spec_hash": action.spec_hash})
        self._step(name, "create enrollment", f"{spec.common_name} in {spec.contract_id}")
        checkpoint(name, "create:intent")
        delay = self.options.poll.initial
        while True:
            try:
                status = await self.client.create_enrollment(
                    spec.contract_id or "", spec_to_wire(spec),
                    allow_duplicate_cn=action.allow_duplicate_cn or spec.allow_duplicate_common_name,
                    same_cn_ids=self._same_cn_ids(action, looked_up),
                    deploy_not_before=action.deploy_not_before, deploy_not_after=action.deploy_not_after)
                break
            except Conflict as exc:
                # One create per contract every few minutes: a throttled create was not made, retry.
                if not _THROTTLED.search(f"{exc.problem.title} {exc.problem.detail}") \
                        or self.clock() + delay > self.deadline:
                    self._refused(name, exc)
                    raise
                self._step(name, "create throttled by CPS", throttle_detail(exc, delay))
            except CpsApiError as exc:
                self._refused(name, exc)
                raise
            looked_up = None  # after the wait, look again
            await self.options.poll.sleep(delay)
            delay = self.options.poll.next(delay)
        checkpoint(name, "create:posted")
        change_id = status.change_ids[-1] if status.change_ids else None
        self.journal.created(name, status.enrollment_id, change_id, "new-certificate",
                             renewal_applied=_renewal_token(spec))
        self.journal.finished_spec(name, action.spec_hash, self.commit)
        checkpoint(name, "create:saved")
        return status.enrollment_id, change_id

    def _refused(self, name: str, exc: CpsApiError) -> None:
        """CPS answered the create with a refusal (a 4xx other than 429): nothing was created, so the
        intent goes; a later plan must not call this "an interrupted create"."""
        if exc.status is not None and 400 <= exc.status < 500 and not isinstance(exc, RateLimited):
            self.journal.clear_intent(name)

    def _adopt(self, name: str, action: Action, spec: AnySpec) -> tuple[int, int | None]:
        assert action.enrollment_id is not None
        self._bind(name, spec, action.enrollment_id, adopting=True)
        entry = self.journal.entry(name)
        if entry is not None and entry.intent is not None:
            self.journal.clear_intent(name)
        self._step(name, "adopt enrollment", str(action.enrollment_id))
        change = action.facts.change_id if action.facts else None
        return action.enrollment_id, change

    async def _update(self, name: str, action: Action, spec: AnySpec) -> tuple[int, int | None]:
        eid = action.enrollment_id
        assert eid is not None
        cancel = action.cancels_change is not None
        renew = action.kind == "renew"
        self.journal.intent(name, "renewing" if renew else "updating",
                            {"spec_hash": action.spec_hash, "cancels": action.cancels_change})
        what = ", ".join(c.path for c in action.changes)
        self._step(name, "renew certificate" if renew else "update enrollment",
                   (what if not renew else action.summary) + (f" (cancelling change {action.cancels_change})" if cancel
                                                              else ""))
        checkpoint(name, "renew:intent" if renew else "update:intent")
        try:
            status = await self.client.update_enrollment(
                eid, spec_to_wire(spec), allow_cancel_pending_changes=cancel, force_renewal=renew,
                deploy_not_before=action.deploy_not_before, deploy_not_after=action.deploy_not_after)
        except Conflict as exc:
            self.journal.clear_intent(name)
            raise ReconcileError(f"{name}: CPS refused the update ({exc}); a change may be pending: run "
                                 "`reconcile plan` again (or pass --cancel-pending)") from None
        checkpoint(name, "renew:posted" if renew else "update:posted")
        change_id = status.change_ids[-1] if status.change_ids else None
        token = _renewal_token(spec) if action.new_certificate else None
        self.journal.change_opened(name, change_id, "renewal" if renew else action.kind, renewal_applied=token)
        self.journal.finished_spec(name, action.spec_hash, self.commit)
        return eid, change_id
