"""dns-01 half of the propagation check: find whom to ask (SOA walk, NS set, addresses; CNAMEs
followed; or the configured nameservers) and ask each server directly. See ``propagation`` for
the contract; this module only carries it out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

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

from reconciler.apply.check_report import Answer, DnsCheckSettings, RecordCheck
from reconciler.apply.publishers.base import ChallengeRecord

MAX_CNAMES = 8


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


class DnsProbe:
    """Checks dns-01 records; keeps successful discoveries for its life (one apply run)."""

    def __init__(self, settings: DnsCheckSettings) -> None:
        self.settings = settings
        self._targets: dict[dns.name.Name, _Target] = {}
        self._zones: dict[dns.name.Name, tuple[_Server, ...]] = {}

    async def check(self, record: ChallengeRecord) -> RecordCheck:
        """Ask every nameserver of the record's (final, CNAMEs followed) name for its TXT values."""
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
                        query, address, timeout=self.settings.query_timeout, port=port)
                except (OSError, dns.exception.DNSException):
                    continue
                if response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                    return _cname(response, name)
        return None

    async def _servers_for(self, name: dns.name.Name) -> tuple[_Server, ...]:
        if self.settings.nameservers:
            return tuple([await self._configured(text) for text in self.settings.nameservers])
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
            servers.append(_Server(label, tuple((a, self.settings.port) for a in addresses)))
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
        if self.settings.resolver is None:
            resolver = dns.asyncresolver.Resolver()
        else:
            host, port = _host_port(self.settings.resolver, 53)
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [host]
            resolver.port = port
        resolver.lifetime = self.settings.query_timeout * 2
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
                    self._query(name), address, timeout=self.settings.query_timeout, port=port)
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
