"""The Edge DNS publisher: ``_acme-challenge`` TXT record sets through Akamai's Edge DNS API.

Uses the record-set routes of the Edge DNS Zone Management API (``/config-dns/v2/zones/{zone}/
names/{name}/types/TXT``: GET, POST to create, PUT to replace, DELETE), EdgeGrid-signed with the
same credentials as CPS. A record set holds every TXT value at a name, so publishing merges our
value into what is there and cleanup removes only our value; other TXT values at the same name
(another enrollment's challenge, a verification string) survive.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from reconciler.apply.publishers.base import DNS_01, ChallengeRecord, Publisher, PublishResult
from reconciler.errors import PublisherError

API = "/config-dns/v2"
_ATTEMPTS = 5  # read-modify-write retries when another writer got in between (409 on create)


def txt_rdata(value: str) -> str:
    """A TXT value in master file format, as Edge DNS stores rdata."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def txt_value(rdata: str) -> str:
    """The value of one TXT rdata string (quoted segments joined, as resolvers see it)."""
    text = rdata.strip()
    if not text.startswith('"'):
        return text
    parts: list[str] = []
    current: list[str] = []
    inside = escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            if inside:
                parts.append("".join(current))
                current = []
            inside = not inside
        elif inside:
            current.append(char)
    return "".join(parts)


class EdgeDnsPublisher(Publisher):
    """Merges challenge values into TXT record sets of one Edge DNS zone, and removes them again."""

    kind: ClassVar[str] = "edgedns"
    methods: ClassVar[frozenset[str]] = frozenset({DNS_01})
    def __init__(self, client: httpx.AsyncClient, zone: str, ttl: int = 60,
                 locks: defaultdict[str, asyncio.Lock] | None = None) -> None:
        """``client`` carries base URL, EdgeGrid auth and TLS settings; the caller owns it.

        ``locks`` (one per record set) should be shared by every publisher of one run: parallel
        enrollments may validate the same name, and a record set is read-modify-written.
        """
        self.client = client
        self.zone = zone.rstrip(".").lower()
        self.ttl = ttl
        self._locks = locks if locks is not None else defaultdict(asyncio.Lock)

    async def _publish(self, records: list[ChallengeRecord]) -> PublishResult:
        for name, values in _by_name(records).items():
            await self._change(name, add=values, remove=set())
        return PublishResult(ready=True, details=[f"{len(records)} TXT value(s) in Edge DNS zone {self.zone}"])

    async def _cleanup(self, records: list[ChallengeRecord]) -> None:
        for name, values in _by_name(records).items():
            await self._change(name, add=set(), remove=values)

    async def _change(self, name: str, *, add: set[str], remove: set[str]) -> None:
        if name != self.zone and not name.endswith("." + self.zone):
            raise PublisherError(f"edgedns: {name} is not inside zone {self.zone}")
        async with self._locks[f"{self.zone}/{name}"]:
            for _ in range(_ATTEMPTS):
                current = await self._get(name)
                values = [txt_value(r) for r in current["rdata"]] if current else []
                wanted = [v for v in values if v not in remove] + [v for v in sorted(add) if v not in values]
                if current is not None and wanted == values:
                    return
                if current is None and not wanted:
                    return
                body = {"name": name, "type": "TXT", "ttl": int(current["ttl"]) if current else self.ttl,
                        "rdata": [txt_rdata(v) for v in wanted]}
                if current is None:
                    response = await self._send("POST", name, body)
                elif wanted:
                    response = await self._send("PUT", name, body)
                else:
                    response = await self._send("DELETE", name, None)
                if response.status_code == 409 or (current is not None and response.status_code == 404):
                    continue  # someone else changed the set between our GET and write: re-read
                self._raise_for(response, name)
                return
        raise PublisherError(f"edgedns: record set {name} TXT kept changing under us; gave up after "
                             f"{_ATTEMPTS} attempts")

    async def _get(self, name: str) -> dict[str, Any] | None:
        response = await self._send("GET", name, None)
        if response.status_code == 404:
            return None
        self._raise_for(response, name)
        data = response.json()
        if not isinstance(data, dict) or not isinstance(data.get("rdata"), list):
            raise PublisherError(f"edgedns: unexpected record set body for {name} TXT")
        return data

    async def _send(self, method: str, name: str, body: dict[str, Any] | None) -> httpx.Response:
        path = f"{API}/zones/{quote(self.zone, safe='')}/names/{quote(name, safe='')}/types/TXT"
        try:
            return await self.client.request(method, path, json=body, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise PublisherError(f"edgedns: {method} {path} failed: {type(exc).__name__}") from None

    def _raise_for(self, response: httpx.Response, name: str) -> None:
        if response.is_success:
            return
        detail = ""
        try:
            problem = response.json()
            if isinstance(problem, dict):
                detail = str(problem.get("detail") or problem.get("title") or "")
        except ValueError:
            pass
        method = response.request.method
        raise PublisherError(f"edgedns: {method} record set {name} TXT in zone {self.zone} answered "
                             f"{response.status_code}{': ' + detail if detail else ''}")


def _by_name(records: list[ChallengeRecord]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    for record in records:
        grouped.setdefault(record.record_name.rstrip(".").lower(), set()).add(record.value)
    return grouped
