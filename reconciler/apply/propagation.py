"""Can the CA see a DV challenge yet? The check apply runs after publishing, before acknowledging.

A publisher saying "done" is not the CA seeing the record: DNS changes take seconds to minutes
to reach every authoritative nameserver, a hook can fail silently, a CNAME delegation can point
elsewhere, an http-01 file can be served from the wrong origin. Let's Encrypt asks from several
places at once; a miss costs a failed validation, a new round of challenges and hours. So apply
asks what the CA will ask, and acknowledges only when every answer is right.

``ChallengeChecker.look(records)`` asks once; ``wait_visible`` asks every ``interval`` until all
records are visible or ``timeout`` ran out. Neither raises for what it finds:

| situation | result for the record |
|---|---|
| dns-01: every authoritative nameserver of the record's zone serves the TXT value | visible |
| a nameserver answers without the value (NXDOMAIN, no TXT, other values) | not visible; that server named, with what it serves |
| a nameserver does not answer (timeout, REFUSED, SERVFAIL, unreachable) | not visible; that server named, with the error |
| ``_acme-challenge.<name>`` is a CNAME (challenges delegated to another zone) | followed, at most 8 links; the target's nameservers are asked for the target |
| the zone or its nameservers cannot be found | not visible; the record named, with the reason |
| ``DnsCheckSettings.nameservers`` given | no discovery: exactly those servers are asked (split horizon, tests) |
| http-01: ``GET`` of the challenge URL (port 80, redirects followed like the CA: at most 10, http/https on 80/443) answers 200 with the body | visible |
| another status, another body, a connection error, a redirect the CA would not follow | not visible; the URL named, with what came back |

Discovery walks up from the record name for the zone's SOA (dnspython ``zone_for_name``) through
the discovery resolver (the system's, or ``resolver``), reads the zone's NS set and each
nameserver's addresses (A, then AAAA). A nameserver serves a record when the first of its
addresses that answers has the value; queries go to each server directly, recursion off, UDP
with TCP fallback. Successful discoveries are kept for the checker's life (one apply run).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import httpx

from reconciler.apply.publishers.base import DNS_01, ChallengeRecord
from reconciler.config import Config

__all__ = ["Answer", "ChallengeChecker", "CheckReport", "DnsCheckSettings", "HttpCheckSettings", "RecordCheck"]

MAX_CNAMES = 8
MAX_REDIRECTS = 10  # what Let's Encrypt follows


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


@dataclass(frozen=True)
class _Server:
    label: str
    addresses: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class _Target:
    name: dns.name.Name
    via: tuple[str, ...]
    servers: tuple[_Server, ...]


class _Unresolvable(Exception):
    """Discovery could not say whom to ask; the message is for people."""


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


def _txt_values(response: dns.message.Message, name: dns.name.Name) -> tuple[str, ...]:
    values = {b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
              for rrset in response.answer if rrset.name == name and rrset.rdtype == dns.rdatatype.TXT
              for rdata in rrset}
    return tuple(sorted(values))


def _cname(response: dns.message.Message, name: dns.name.Name) -> dns.name.Name | None:
    for rrset in response.answer:
        if rrset.name == name and rrset.rdtype == dns.rdatatype.CNAME:
            return rrset[0].target  # type: ignore[no-any-return]
    return None


class ChallengeChecker:
    """Asks what the CA will ask about published challenges; see the module docstring."""

    def __init__(self, dns_settings: DnsCheckSettings | None = None, http_settings: HttpCheckSettings | None = None,
                 *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.dns = dns_settings or DnsCheckSettings()
        self.http = http_settings or HttpCheckSettings()
        self._sleep = sleep
        self._clock = clock
        self._targets: dict[dns.name.Name, _Target] = {}
        self._zones: dict[dns.name.Name, tuple[_Server, ...]] = {}

    @classmethod
    def from_config(cls, config: Config) -> ChallengeChecker:
        """A checker with reconcile.yaml's ``dns_check`` and ``http_check`` settings."""
        d, h = config.dns_check, config.http_check
        return cls(DnsCheckSettings(timeout=d.timeout, interval=d.interval, nameservers=tuple(d.nameservers),
                                    resolver=d.resolver),
                   HttpCheckSettings(timeout=h.timeout, interval=h.interval, connect_to=h.connect_to))

    def timeout_for(self, records: Sequence[ChallengeRecord]) -> float:
        return max((self.dns.timeout if r.type == DNS_01 else self.http.timeout for r in records), default=0.0)

    def interval_for(self, records: Sequence[ChallengeRecord]) -> float:
        return min((self.dns.interval if r.type == DNS_01 else self.http.interval for r in records), default=1.0)

    async def look(self, records: Sequence[ChallengeRecord]) -> CheckReport:
        """Ask once about every record (concurrently)."""
        async with httpx.AsyncClient(verify=False, trust_env=False, follow_redirects=False,
                                     timeout=self.http.request_timeout) as http:
            checks = await asyncio.gather(*(self._check_dns(r) if r.type == DNS_01 else self._check_http(r, http)
                                            for r in records))
        return CheckReport(tuple(checks))

    async def wait_visible(self, records: Sequence[ChallengeRecord], *, timeout: float | None = None,
                           progress: Callable[[str], None] | None = None) -> CheckReport:
        """Look every interval until all records are visible or ``timeout`` (default: settings) ran out.

        Always looks at least once; ``progress`` hears each round that is still waiting.
        """
        budget = self.timeout_for(records) if timeout is None else timeout
        deadline = self._clock() + budget
        interval = self.interval_for(records)
        while True:
            report = await self.look(records)
            left = deadline - self._clock()
            if report.visible or left <= 0:
                return report
            if progress is not None:
                progress(report.progress())
            await self._sleep(min(interval, left))

    # -- dns-01 ------------------------------------------------------------------------------------

    async def _check_dns(self, record: ChallengeRecord) -> RecordCheck:
        try:
            name = dns.name.from_text(record.record_name)
            target = await self._target(name)
        except (_Unresolvable, dns.exception.DNSException) as exc:
            return RecordCheck(record, asked=record.record_name, problem=str(exc) or type(exc).__name__)
        answers = await asyncio.gather(*(self._ask(s, target.name, record.value) for s in target.servers))
        return RecordCheck(record, asked=target.name.to_text(), answers=tuple(answers), via=target.via)

    async def _target(self, name: dns.name.Name) -> _Target:
        """The name that finally holds the TXT record (CNAMEs followed) and its nameservers."""
        if name in self._targets:
            return self._targets[name]
        current, via = name, list[str]()
        for _ in range(MAX_CNAMES + 1):
            servers = await self._servers_for(current)
            alias = await self._alias(current, servers)
            if alias is None:
                target = _Target(current, tuple(via), servers)
                self._targets[name] = target
                return target
            if alias == name or alias.to_text() in via:
                raise _Unresolvable(f"CNAME loop at {alias}")
            via.append(alias.to_text())
            current = alias
        raise _Unresolvable(f"more than {MAX_CNAMES} CNAMEs from {name}")

    async def _alias(self, name: dns.name.Name, servers: tuple[_Server, ...]) -> dns.name.Name | None:
        """The CNAME at ``name`` per the first server that answers (none answering: no CNAME known)."""
        query = self._query(name)
        for server in servers:
            for address, port in server.addresses:
                try:
                    response, _ = await dns.asyncquery.udp_with_fallback(
                        query, address, timeout=self.dns.query_timeout, port=port)
                except (OSError, dns.exception.DNSException):
                    continue
                if response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                    return _cname(response, name)
        return None

    async def _servers_for(self, name: dns.name.Name) -> tuple[_Server, ...]:
        if self.dns.nameservers:
            return tuple([await self._configured(text) for text in self.dns.nameservers])
        resolver = self._resolver()
        try:
            zone = await dns.asyncresolver.zone_for_name(name, resolver=resolver)
        except dns.exception.DNSException as exc:
            raise _Unresolvable(f"cannot find the DNS zone of {name} ({type(exc).__name__})") from None
        if zone in self._zones:
            return self._zones[zone]
        try:
            ns_set = await resolver.resolve(zone, dns.rdatatype.NS)
        except dns.exception.DNSException as exc:
            raise _Unresolvable(f"cannot read the nameservers of zone {zone} ({type(exc).__name__})") from None
        servers = []
        for host in sorted(rdata.target for rdata in ns_set):
            addresses = await self._addresses(resolver, host)
            label = host.to_text().rstrip(".")
            if addresses:
                label += f" ({', '.join(addresses)})"
            servers.append(_Server(label, tuple((a, self.dns.port) for a in addresses)))
        if not servers:
            raise _Unresolvable(f"zone {zone} lists no nameservers")
        self._zones[zone] = tuple(servers)
        return self._zones[zone]

    async def _configured(self, text: str) -> _Server:
        host, port = _host_port(text, 53)
        try:
            dns.inet.af_for_address(host)
            return _Server(text, ((host, port),))
        except ValueError:
            addresses = await self._addresses(self._resolver(), dns.name.from_text(host))
            shown = f"{text} ({', '.join(addresses)})" if addresses else text
            return _Server(shown,
                           tuple((a, port) for a in addresses))

    async def _addresses(self, resolver: dns.asyncresolver.Resolver, host: dns.name.Name) -> list[str]:
        found: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                answer = await resolver.resolve(host, rdtype)
            except dns.exception.DNSException:
                continue
            found += [rdata.address for rdata in answer]  # type: ignore[attr-defined]
        return found

    def _resolver(self) -> dns.asyncresolver.Resolver:
        if self.dns.resolver is None:
            resolver = dns.asyncresolver.Resolver()
        else:
            host, port = _host_port(self.dns.resolver, 53)
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [host]
            resolver.port = port
        resolver.lifetime = self.dns.query_timeout * 2
        return resolver

    def _query(self, name: dns.name.Name) -> dns.message.Message:
        query = dns.message.make_query(name, dns.rdatatype.TXT)
        query.flags &= ~dns.flags.RD  # ask the server itself, not whatever it could recurse to
        return query

    async def _ask(self, server: _Server, name: dns.name.Name, value: str) -> Answer:
        if not server.addresses:
            return Answer(server.label, error="no address found for this nameserver")
        errors: list[str] = []
        for address, port in server.addresses:
            try:
                response, _ = await dns.asyncquery.udp_with_fallback(
                    self._query(name), address, timeout=self.dns.query_timeout, port=port)
            except dns.exception.Timeout:
                errors.append("timed out")
                continue
            except (OSError, dns.exception.DNSException) as exc:
                errors.append(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
                continue
            rcode = response.rcode()
            if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                return Answer(server.label, error=dns.rcode.to_text(rcode))
            values = _txt_values(response, name)
            if value in values:
                return Answer(server.label, values, ok=True)
            return Answer(server.label, values, error="NXDOMAIN" if rcode == dns.rcode.NXDOMAIN and not values else None)
        return Answer(server.label, error="; ".join(sorted(set(errors))))

    # -- http-01 -----------------------------------------------------------------------------------

    async def _check_http(self, record: ChallengeRecord, http: httpx.AsyncClient) -> RecordCheck:
        url, via = record.path, list[str]()
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or (parts.port or 0) not in (0, 80, 443):
                return RecordCheck(record, asked=record.path, via=tuple(via), answers=(Answer(
                    url, error="the CA follows redirects only to http/https on ports 80 and 443"),))
            request_url, headers = url, {}
            if self.http.connect_to:
                request_url = f"{parts.scheme}://{self.http.connect_to}{parts.path or '/'}"
                request_url += f"?{parts.query}" if parts.query else ""
                headers["Host"] = parts.netloc
            try:
                response = await http.get(request_url, headers=headers)
            except httpx.HTTPError as exc:
                detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                return RecordCheck(record, asked=record.path, via=tuple(via), answers=(Answer(url, error=detail),))
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                via.append(url)
                continue
            body = response.text.strip()
            if response.status_code != 200:
                answer = Answer(url, error=f"HTTP {response.status_code}")
            else:
                answer = Answer(url, (body[:100],), ok=body == record.value.strip())
            return RecordCheck(record, asked=record.path, via=tuple(via), answers=(answer,))
        return RecordCheck(record, asked=record.path, via=tuple(via),
                           answers=(Answer(url, error=f"more than {MAX_REDIRECTS} redirects"),))

