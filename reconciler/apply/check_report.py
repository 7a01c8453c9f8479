"""What the DV propagation check is told (settings) and what it finds (answers, per record, per
look); see ``propagation`` for the contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.apply.publishers.base import DNS_01, ChallengeRecord

__all__ = ["Answer", "CheckReport", "DnsCheckSettings", "HttpCheckSettings", "RecordCheck"]


@dataclass(frozen=True)
class DnsCheckSettings:
    """How dns-01 records are checked (reconcile.yaml ``dns_check``, plus knobs for tests).

    ``nameservers`` ("ip", "ip:port", "[v6]:port" or a host name) replaces discovery; ``resolver``
    ("host[:port]") is the recursive resolver discovery asks instead of the system's; ``port`` is
    where discovered nameservers are asked (53 in the world; tests run BIND elsewhere).
    """

    timeout: float = 600.0
    interval: float = 5.0
    nameservers: tuple[str, ...] = ()
    resolver: str | None = None
    port: int = 53
    query_timeout: float = 3.0


@dataclass(frozen=True)
class HttpCheckSettings:
    """How http-01 tokens are checked (reconcile.yaml ``http_check``).

    ``connect_to`` ("host:port", like curl's ``--connect-to``) sends every request there while the
    ``Host`` header keeps the challenge's name: for split horizon, a staging origin, tests.
    """

    timeout: float = 120.0
    interval: float = 5.0
    connect_to: str | None = None
    request_timeout: float = 10.0


@dataclass(frozen=True)
class Answer:
    """What one nameserver (or the challenge URL) answered."""

    server: str
    values: tuple[str, ...] = ()
    error: str | None = None
    ok: bool = False

    def describe(self) -> str:
        if self.ok:
            return f"{self.server}: ok"
        if self.error:
            return f"{self.server}: {self.error}"
        if self.values:
            return f"{self.server}: serves {', '.join(repr(v) for v in self.values)}"
        return f"{self.server}: no TXT record"


@dataclass(frozen=True)
class RecordCheck:
    """One record's check: the name (or URL) finally asked, via which CNAMEs or redirects, the answers."""

    record: ChallengeRecord
    asked: str
    answers: tuple[Answer, ...] = ()
    problem: str | None = None
    via: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return self.record.record_name or self.record.path

    @property
    def visible(self) -> bool:
        return self.problem is None and bool(self.answers) and all(a.ok for a in self.answers)

    @property
    def missing(self) -> tuple[Answer, ...]:
        return tuple(a for a in self.answers if not a.ok)

    def summary(self) -> str:
        """One line for people: the record and every server that does not serve it, with why."""
        via = f" (via {' -> '.join(self.via)})" if self.via else ""
        if self.problem is not None:
            return f"{self.where}{via}: {self.problem}"
        if self.visible:
            return f"{self.where}{via}: visible on {len(self.answers)} of {len(self.answers)}"
        kind = "nameserver(s)" if self.record.type == DNS_01 else "URL"
        return (f"{self.where}{via}: not served by {len(self.missing)} of {len(self.answers)} {kind}: "
                + "; ".join(a.describe() for a in self.missing))


@dataclass(frozen=True)
class CheckReport:
    """Every record's check from one look."""

    checks: tuple[RecordCheck, ...] = ()

    @property
    def visible(self) -> bool:
        return all(c.visible for c in self.checks)

    @property
    def missing(self) -> tuple[RecordCheck, ...]:
        return tuple(c for c in self.checks if not c.visible)

    def to_data(self) -> list[dict[str, Any]]:
        """Plain data for ``--format json``: per record, what was asked and every answer."""
        return [{"record": c.where, "type": c.record.type, "domain": c.record.domain, "expected": c.record.value,
                 "asked": c.asked, "via": list(c.via), "visible": c.visible, "problem": c.problem,
                 "answers": [{"server": a.server, "ok": a.ok, "values": list(a.values), "error": a.error}
                             for a in c.answers]} for c in self.checks]

    def lines(self) -> list[str]:
        """One line per record not yet visible."""
        return [c.summary() for c in self.missing]

    def progress(self) -> str:
        """'waiting for 2/3 nameservers to serve _acme-challenge.www.example.com' (first record missing)."""
        missing = self.missing
        if not missing:
            return f"{len(self.checks)} record(s) visible"
        first = missing[0]
        name = first.asked.rstrip(".")
        more = f" (and {len(missing) - 1} more record(s))" if len(missing) > 1 else ""
        if first.problem is not None:
            return f"waiting for {name}: {first.problem}{more}"
        if first.record.type == DNS_01:
            return f"waiting for {len(first.missing)}/{len(first.answers)} nameservers to serve {name}{more}"
        return f"waiting for {first.record.path} to serve the token{more}"
