"""The RFC 2136 publisher: TXT records by DNS UPDATE signed with TSIG (dnspython).

Works with any primary that accepts TSIG-signed dynamic updates (BIND, Knot, PowerDNS). The
TSIG secret comes only from the environment variable the spec names (``tsig_secret_env``), never
from a file in the repository, and never appears in messages. After each update the publisher
asks the same server for the TXT record set, so "ready" means the server really serves it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update

from reconciler.apply.publishers.base import DNS_01, ChallengeRecord, Publisher, PublishResult
from reconciler.errors import PublisherError

_ALGORITHMS = {
    "hmac-md5": dns.tsig.HMAC_MD5,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}


@dataclass(frozen=True)
class Rfc2136Settings:
    """Where and how to send updates; the secret is named by env var, not stored."""

    server: str
    zone: str
    tsig_key_name: str | None = None
    tsig_secret_env: str | None = None
    port: int = 53
    tsig_algorithm: str = "hmac-sha256"
    ttl: int = 60
    timeout: float = 10.0


class Rfc2136Publisher(Publisher):
    """Adds and removes ``_acme-challenge`` TXT records by TSIG-signed dynamic update."""

    kind: ClassVar[str] = "rfc2136"
    methods: ClassVar[frozenset[str]] = frozenset({DNS_01})

    def __init__(self, settings: Rfc2136Settings, environ: dict[str, str] | None = None) -> None:
        self.settings = settings
        self._zone = dns.name.from_text(settings.zone)
        self._key: dns.tsig.Key | None = None
        if settings.tsig_key_name is None:
            return  # unsigned updates: the server authorises by address
        env = os.environ if environ is None else environ
        secret = env.get(settings.tsig_secret_env or "")
        if not secret:
            raise PublisherError(f"rfc2136: environment variable {settings.tsig_secret_env or '(tsig_secret_env)'} "
                                 "(the TSIG secret) is not set")
        algorithm = _ALGORITHMS.get(settings.tsig_algorithm.lower())
        if algorithm is None:
            raise PublisherError(f"rfc2136: unknown TSIG algorithm {settings.tsig_algorithm!r} "
                                 f"(known: {', '.join(sorted(_ALGORITHMS))})")
        try:
            self._key = dns.tsig.Key(settings.tsig_key_name, secret, algorithm)
        except Exception as exc:  # dnspython raises binascii/ValueError for a bad secret
            raise PublisherError(f"rfc2136: TSIG secret in {settings.tsig_secret_env} is not valid "
                                 f"base64 ({type(exc).__name__})") from None

    def __repr__(self) -> str:
        return f"Rfc2136Publisher(server={self.settings.server!r}, zone={self.settings.zone!r})"

    async def _publish(self, records: list[ChallengeRecord]) -> PublishResult:
        update = self._update()
        for record in records:
            update.add(self._name(record), self.settings.ttl, dns.rdatatype.TXT, _txt(record.value))
        await self._send(update, "add")
        for record in records:
            if record.value not in await self._served_values(record):
                raise PublisherError(f"{record.enrollment}: rfc2136: {self.settings.server} accepted the "
                                     f"update but does not serve {record.record_name} TXT")
        return PublishResult(ready=True, details=[
            f"{len(records)} TXT record(s) added to {self.settings.zone} at {self.settings.server}"])

    async def _cleanup(self, records: list[ChallengeRecord]) -> None:
        update = self._update()
        for record in records:
            # Deleting one rdata that is already gone is not an error in RFC 2136.
            update.delete(self._name(record), dns.rdatatype.TXT, _txt(record.value))
        await self._send(update, "delete")

    def _update(self) -> dns.update.UpdateMessage:
        if self._key is None:
            return dns.update.UpdateMessage(self._zone)
        return dns.update.UpdateMessage(self._zone, keyring=self._key)

    def _name(self, record: ChallengeRecord) -> dns.name.Name:
        name = dns.name.from_text(record.record_name)
        if not name.is_subdomain(self._zone):
            raise PublisherError(f"{record.enrollment}: rfc2136: {record.record_name} is not inside "
                                 f"zone {self.settings.zone}")
        return name

    async def _send(self, message: dns.message.Message, what: str) -> None:
        response = await self._exchange(message, what)
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            raise PublisherError(f"rfc2136: {self.settings.server}:{self.settings.port} refused the "
                                 f"{what} update in {self.settings.zone}: {dns.rcode.to_text(rcode)}")

    async def _served_values(self, record: ChallengeRecord) -> set[str]:
        query = dns.message.make_query(self._name(record), dns.rdatatype.TXT)
        response = await self._exchange(query, "TXT query")
        values: set[str] = set()
        for rrset in response.answer:
            for rdata in rrset:
                values.add(b"".join(rdata.strings).decode())  # type: ignore[attr-defined]
        return values

    async def _exchange(self, message: dns.message.Message, what: str) -> Any:
        try:
            return await dns.asyncquery.tcp(message, self.settings.server, port=self.settings.port,
                                            timeout=self.settings.timeout)
        except (OSError, dns.exception.DNSException) as exc:
            raise PublisherError(f"rfc2136: {what} to {self.settings.server}:{self.settings.port} "
                                 f"failed: {type(exc).__name__}: {exc}") from None


def _txt(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
