"""The due-time schedule: transitions still run exactly when due, in the order a full scan of every
enrollment ran them, after restarts too.

The reference is the scan the schedule replaced (``scan_run_due`` below, verbatim): it looked at
every enrollment on every call, so it could not miss one. Both engines take the same calls; their
data must stay equal after every one (certificates and CSRs aside, which hold random keys).
"""

from __future__ import annotations

import json
import random
import types
from datetime import datetime, timedelta
from typing import Any

from reconciler.sandbox.engine import Engine, EngineConfig
from reconciler.sandbox.problems import ApiProblem
from reconciler.sandbox.store import parse, pending_change
from reconciler.sandbox.workflow import Workflow
from tests.sandbox.test_engine_support import CONTRACT, START, dv_body, ids, make_engine, third_party_body

ACK_SEGMENT = {
    "lets-encrypt-challenges": "lets-encrypt-challenges-completed",
    "pre-verification-warnings-acknowledgement": "pre-verification-warnings-ack",
    "post-verification-warnings-acknowledgement": "post-verification-warnings-ack",
    "change-management": "change-management-ack",
}
RANDOM = {"token", "value", "body"}  # a DV challenge's token, TXT value and http-01 body


def scan_run_due(self: Workflow, now: datetime) -> None:
    """The full scan ``Workflow.run_due`` used before the schedule: every enrollment, in store order."""
    for key in list(self.store.enrollments):
        self.run_due_for(self.store.enrollments[key], now)


def scanning(engine: Engine) -> Engine:
    engine.workflow.run_due = types.MethodType(scan_run_due, engine.workflow)  # type: ignore[method-assign]
    return engine


def restart(engine: Engine, config: EngineConfig) -> Engine:
    """A new engine from the JSON the sandbox persists (as after a process restart)."""
    return Engine.from_snapshot(config, json.loads(json.dumps(engine.snapshot())), speed=0)


def comparable(value: Any) -> Any:
    """The engine's data with what is random blanked: PEM texts (keys) and challenge tokens."""
    if isinstance(value, dict):
        return {k: "<random>" if k in RANDOM and isinstance(v, str) else comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, str) and "-----BEGIN" in value:
        return "<pem>"
    return value


def assert_nothing_overdue(engine: Engine) -> None:
    now = engine.clock.now()
    for record in engine.store.enrollments.values():
        event = engine.workflow._next_event(record)
        assert event is None or event[0] > now, (record["id"], event, now)


def call(engine: Engine, name: str, *args: Any, **kwargs: Any) -> Any:
    try:
        return getattr(engine, name)(*args, **kwargs)
    except ApiProblem as problem:
        return ("problem", problem.status, problem.slug)


def test_random_workload_matches_the_full_scan_step_by_step_across_restarts() -> None:
    config = EngineConfig(create_throttle_seconds=0, dv_renewal_days=85.0,  # renewals 5 days in
                          validation_policy="trust-ack")  # as make_engine
    fast, slow = make_engine(create_throttle_seconds=0, dv_renewal_days=85.0), scanning(
        make_engine(create_throttle_seconds=0, dv_renewal_days=85.0))
    rng = random.Random(7)
    made: list[int] = []
    for step in range(260):
        roll = rng.random()
        if roll < 0.12 or len(made) < 5:
            n = len(made)
            body = dv_body(f"s{n}.example.com", []) if n % 4 else third_party_body(f"t{n}.example.com", [])
            out = [call(e, "create_enrollment", CONTRACT, body) for e in (fast, slow)]
            made.append(ids(out[0][1])[0])
        elif roll < 0.45:
            eid = rng.choice(made)
            record = fast.store.enrollments.get(str(eid))
            change = pending_change(record) if record is not None else None
            kind = None
            if change is not None and change["state"] == "awaiting-input":
                kind = fast.get_change(eid, change["id"])["allowedInput"]
                kind = kind[0]["type"] if kind else None
                slow.get_change(eid, change["id"])
            if change is not None and kind in ACK_SEGMENT:
                out = [call(e, "post_input_update", eid, change["id"], ACK_SEGMENT[kind],
                            {"acknowledgement": "acknowledge"}) for e in (fast, slow)]
                assert out[0] == out[1]
        elif roll < 0.50:
            eid = rng.choice(made)
            force = rng.random() < 0.5
            out = [call(e, "delete_enrollment", eid, allow_cancel_pending_changes=force) for e in (fast, slow)]
            assert out[0] == out[1]
        elif roll < 0.55:
            eid = rng.choice(made)
            record = fast.store.enrollments.get(str(eid))
            change = pending_change(record) if record is not None else None
            if change is not None:
                later = (fast.clock.now() + timedelta(seconds=rng.randint(0, 7200))).isoformat()
                out = [call(e, "put_deployment_schedule", eid, change["id"], {"notBefore": later, "notAfter": None})
                       for e in (fast, slow)]
                assert out[0] == out[1]
        elif roll < 0.60:
            eid = rng.choice(made)
            out = [call(e, "get_enrollment", eid) for e in (fast, slow)]
            assert comparable(out[0]) == comparable(out[1])
        else:
            seconds = rng.choice([1, 30, 59, 60, 61, 600, 1800, 3600, 86400, 3 * 86400])
            for engine in (fast, slow):
                engine.advance(seconds)
        if step % 70 == 69:
            fast, slow = restart(fast, config), scanning(restart(slow, config))
        assert_nothing_overdue(fast)
        assert comparable(fast.store.data) == comparable(slow.store.data), f"step {step}"
    # The walk went through every kind of event: deployments, deletions, automatic renewals.
    changes = [c for r in fast.store.enrollments.values() for c in r["changes"].values()]
    assert {"complete", "deploy-production"} & {c["status"] for c in changes}
    assert any(c["type"] == "renewal" for c in changes)
    assert len(fast.store.enrollments) < len(made)


def test_each_enrollment_moves_exactly_at_its_due_time_across_a_restart() -> None:
    config = EngineConfig(create_throttle_seconds=0, validation_policy="trust-ack")  # as make_engine
    engine = make_engine()
    created = {}
    for i in range(40):
        eid, _ = ids(engine.create_enrollment(CONTRACT, dv_body(f"d{i}.example.com", []))[1])
        created[eid] = engine.clock.now()
        engine.advance(7)
    checks = config.durations.pre_verification + config.durations.challenge_issuance
    moved = 0
    for second in range(int(checks) + 5):  # 23 are due already, 17 fall due on the way
        if second in (20, 61):
            engine = restart(engine, config)
        now = engine.clock.now()
        for eid, at in created.items():
            change = pending_change(engine.store.enrollments[str(eid)])
            assert change is not None
            due = at + timedelta(seconds=checks)
            if now < due:
                assert change["status"] == "pre-verification-safety-checks", (eid, now)
            else:
                assert change["status"] == "coodinate-domain-validation", (eid, now)
                assert parse(change["updated"]) == due
                moved += due > now - timedelta(seconds=1)
        engine.advance(1)
    assert moved == 17
    assert engine.clock.now() > START


def test_transitions_due_at_once_run_in_enrollment_order() -> None:
    """Renewals falling due in one jump get change ids in enrollment order, as the scan gave."""
    engine = make_engine()
    eids = []
    for i in range(6):
        eid, cid = ids(engine.create_enrollment(CONTRACT, dv_body(f"r{i}.example.com", []))[1])
        eids.append(eid)
    engine.advance(120)
    for eid in reversed(eids):  # acknowledged in reverse: later transitions are due in reverse
        cid = pending_change(engine.store.enrollments[str(eid)])["id"]  # type: ignore[index]
        engine.post_input_update(eid, cid, "lets-encrypt-challenges-completed", {"acknowledgement": "acknowledge"})
        engine.advance(1)
    engine.advance(4000)
    for eid in eids:
        cid = pending_change(engine.store.enrollments[str(eid)])["id"]  # type: ignore[index]
        engine.post_input_update(eid, cid, "change-management-ack", {"acknowledgement": "acknowledge"})
    engine.advance(90 * 86400)  # past every renewal start at once
    renewals = [
        next(int(c["id"]) for c in engine.store.enrollments[str(eid)]["changes"].values() if c["type"] == "renewal")
        for eid in eids
    ]
    assert renewals == sorted(renewals)
    assert_nothing_overdue(engine)
