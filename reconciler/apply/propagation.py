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

Modules: this one (the checker, http-01), ``dns_probe`` (dns-01 discovery and queries),
``check_report`` (settings and results).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urljoin, urlsplit

import httpx

from reconciler.apply.check_report import (
    Answer,
    CheckReport,
    DnsCheckSettings,
    HttpCheckSettings,
    RecordCheck,
)
from reconciler.apply.dns_probe import DnsProbe
from reconciler.apply.publishers.base import DNS_01, ChallengeRecord
from reconciler.config import Config

__all__ = ["Answer", "ChallengeChecker", "CheckReport", "DnsCheckSettings", "HttpCheckSettings", "RecordCheck"]

MAX_REDIRECTS = 10  # what Let's Encrypt follows


class ChallengeChecker:
    """Asks what the CA will ask about published challenges; see the module docstring."""

    def __init__(self, dns_settings: DnsCheckSettings | None = None, http_settings: HttpCheckSettings | None = None,
                 *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.dns = dns_settings or DnsCheckSettings()
        self.http = http_settings or HttpCheckSettings()
        self._sleep = sleep
        self._clock = clock
        self._dns = DnsProbe(self.dns)

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
            checks = await asyncio.gather(*(self._dns.check(r) if r.type == DNS_01 else self._check_http(r, http)
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

    # -- http-01 (dns-01 lives in dns_probe) ------------------------------------------------------

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
