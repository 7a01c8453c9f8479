"""StateRenderer: the incremental render is byte-identical to State.to_json, whatever changed."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.state import ChangeInFlight, Intent, PublishedChallenge, State, StateEntry
from reconciler.state.render import StateRenderer

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _entry(i: int) -> StateEntry:
    return StateEntry(
        enrollment_id=10000 + i, contract_id="ctr_1-AB", common_name=f"h\u00e9{i}.example.com", spec_hash=f"h{i}",
        intent=Intent(op="creating", common_name="x", contract_id="c", at=AT, detail={"n": [1, {"b": None}]}),
        change=ChangeInFlight(change_id=i, status="wait", waiting_for=("a", "b"), updated_at=AT),
        certificate_fingerprints={"rsa": "ab" * 32}, last_refresh=AT,
        challenges=(PublishedChallenge(domain="d", type="dns-01", record_name="_acme-challenge.d.", value='q"\\',
                                       publisher="hook", change_id=i, published_at=AT),))


def test_render_equals_to_json_for_empty_and_full_states() -> None:
    renderer = StateRenderer()
    for state in (State(), State(entries={"a": StateEntry(contract_id="c", common_name="x")}),
                  State(serial=9, entries={f"n{i}": _entry(i) for i in range(30)})):
        assert renderer.render(state) == state.to_json()


def test_render_follows_changed_added_and_removed_entries() -> None:
    renderer = StateRenderer()
    state = State(entries={f"n{i:02d}": _entry(i) for i in range(10)})
    assert renderer.render(state) == state.to_json()
    state = state.with_entry("n03", _entry(77)).with_entry("a-first", _entry(5)).without_entry("n07")
    state = state.model_copy(update={"serial": 4})
    assert renderer.render(state) == state.to_json()
    assert renderer.render(State(lineage=state.lineage)) == State(lineage=state.lineage).to_json()
