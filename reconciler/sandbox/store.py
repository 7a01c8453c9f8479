"""The engine's data: one JSON-ready dict, plus ids, links and timestamp helpers.

Everything the engine knows lives in ``Store.data`` as plain JSON values, so a snapshot is a
deep copy and a restore is a load. Timestamps are stored as ISO 8601 UTC strings of *virtual*
time, so they stay meaningful whatever the clock does after a restart.
"""

from __future__ import annotations

import copy
import functools
import marshal
from datetime import UTC, date, datetime, time
from typing import Any

from reconciler.sandbox.problems import bad_request, not_found

FORMAT = 1
FIRST_ID = 10000

Json = dict[str, Any]


def iso(moment: datetime) -> str:
    """Storage form of a timestamp (full precision, UTC)."""
    return moment.astimezone(UTC).isoformat()


@functools.lru_cache(maxsize=65536)
def parse(value: str) -> datetime:
    """Inverse of ``iso`` (also accepts a trailing ``Z``/``z``).

    Cached: the engine re-parses the same stored timestamps (every change's ``due``) on every
    request while it looks for due transitions; datetimes are immutable, so sharing is safe.
    """
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def wire(value: str | datetime | None) -> str | None:
    """Wire form of a stored timestamp: ``2024-01-31T12:00:00Z`` (or None)."""
    if value is None:
        return None
    moment = parse(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_time(value: str | None, what: str) -> str | None:
    """A deploy-not-before/after value: a ``YYYY-MM-DD`` date (midnight UTC) or a timestamp."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            return iso(datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC))
        return iso(parse(value))
    except ValueError:
        raise bad_request(f"{what} must be a date (YYYY-MM-DD) or an ISO 8601 timestamp, got {value!r}") from None


def enrollment_link(enrollment_id: int) -> str:
    return f"/cps/v2/enrollments/{enrollment_id}"


def change_link(enrollment_id: int, change_id: int) -> str:
    return f"/cps/v2/enrollments/{enrollment_id}/changes/{change_id}"


def bare_contract(contract_id: str) -> str:
    """Contract ids are used bare (``1-ABC``); Terraform-style ``ctr_`` prefixes are stripped."""
    contract = contract_id.strip()
    if contract.startswith("ctr_"):
        contract = contract[4:]
    if not contract:
        raise bad_request("contractId is required")
    return contract


class Store:
    """The engine's state: enrollments (with their changes, deployments, history) and counters."""

    def __init__(self, data: Json | None = None) -> None:
        if data is None:
            data = {
                "format": FORMAT,
                "next_enrollment_id": FIRST_ID,
                "next_change_id": FIRST_ID,
                "next_slot": 20000,
                "last_create": {},
                "enrollments": {},
            }
        elif data.get("format") != FORMAT:
            raise ValueError(f"unsupported sandbox data format {data.get('format')!r}")
        self.data = data
        self.touched: dict[str, None] = dict.fromkeys(self.enrollments)
        """Keys of enrollments handed out (or added) since the workflow last looked: the only
        records whose next due transition may have moved. Ordered, so new keys keep the order
        in which they were added. Every record starts touched, so a load schedules them all."""

    def copy_data(self) -> Json:
        """A deep copy of the data (a snapshot: later engine calls do not change it)."""
        # The data is plain JSON values, which marshal round-trips exactly about nine times faster
        # than deepcopy (45 -> 5 ms for 200 issued enrollments); the sandbox snapshots after every
        # write, so this is most of its CPU on write-heavy runs. Anything marshal cannot carry
        # falls back to deepcopy.
        try:
            copied: Json = marshal.loads(marshal.dumps(self.data))
        except ValueError:
            return copy.deepcopy(self.data)
        return copied

    def _next(self, counter: str) -> int:
        value = int(self.data[counter])
        self.data[counter] = value + 1
        return value

    def new_enrollment_id(self) -> int:
        return self._next("next_enrollment_id")

    def new_change_id(self) -> int:
        return self._next("next_change_id")

    def new_slot(self) -> int:
        return self._next("next_slot")

    @property
    def enrollments(self) -> dict[str, Json]:
        enrollments: dict[str, Json] = self.data["enrollments"]
        return enrollments

    def enrollment(self, enrollment_id: int) -> Json:
        """The stored enrollment record, or a 404 problem. The record counts as touched: the
        caller may change it, so its next due transition is looked at again."""
        key = str(enrollment_id)
        record = self.enrollments.get(key)
        if record is None:
            raise not_found(f"Enrollment {enrollment_id} does not exist.")
        self.touched[key] = None
        return record

    def add(self, record: Json) -> None:
        """Store a new enrollment record (after every existing one)."""
        key = str(record["id"])
        self.enrollments[key] = record
        self.touched[key] = None

    def change(self, enrollment_id: int, change_id: int) -> tuple[Json, Json]:
        """``(enrollment, change)``, or a 404 problem if either is unknown or they do not match."""
        record = self.enrollment(enrollment_id)
        change = record["changes"].get(str(change_id))
        if change is None:
            raise not_found(f"Change {change_id} does not exist on enrollment {enrollment_id}.")
        return record, change

    def remove(self, enrollment_id: int) -> None:
        key = str(enrollment_id)
        self.enrollments.pop(key, None)
        self.touched[key] = None


def pending_change(record: Json) -> Json | None:
    """The change still in flight on an enrollment (the engine keeps at most one)."""
    changes: dict[str, Json] = record["changes"]
    for change in changes.values():
        if change["state"] not in ("completed", "cancelled"):
            return change
    return None
