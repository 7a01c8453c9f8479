"""Validation by looking: where the sandbox's CA looks for a published DV challenge.

Production's CA checks the published challenges itself, on its own schedule, and moves on without
anybody's acknowledgement; an acknowledgement only asks it to look now. The sandbox does the same
(``EngineConfig.validation_policy``), looking everywhere a challenge could be visible to it:

| policy | dns-01 TXT record at ``_acme-challenge.<domain>.`` | http-01 token |
|---|---|---|
| ``look`` (default) | the sandbox's own Edge DNS record sets; the zone files in ``dns_zone_files``; the DNS server ``dns_resolver`` (e.g. the RFC 2136 test server) | ``http_base_url`` with the domain as ``Host`` |
| ``dns`` | the same DNS sources | not looked at (wildcards and every domain use dns-01) |
| ``http`` | only for wildcards (no http-01 there) | ``http_base_url`` |
| ``trust-ack`` | nothing: an acknowledgement validates every domain (the old, trusting behaviour, for tests that need it) | |

A zone file is a text file of TXT records, one per line: ``NAME TXT VALUE`` (what the demo's
publish hook appends to ``.reconcile/dns-published.txt``) or a zone-file line ``NAME TTL IN TXT
"VALUE"``. Nothing is looked up on the internet: an unset source is not consulted.

An automatic check that finds nothing leaves the challenge pending and notes the error on the
domain; an acknowledgement whose check finds nothing fails the challenge, as Let's Encrypt fails
an authorisation it was told to validate: the domain gets fresh challenges to publish.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reconciler.sandbox.engine_config import EngineConfig

Json = dict[str, Any]
# name (``_acme-challenge.<domain>.``) -> TXT values published there.
TxtLookup = Callable[[str], list[str]]


def zone_file_values(paths: Sequence[str], name: str) -> list[str]:
    """TXT values for ``name`` in the zone files (missing files hold nothing yet)."""
    wanted = name.rstrip(".").lower()
    values: list[str] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            try:
                fields = shlex.split(line, comments=True)
            except ValueError:
                continue
            if len(fields) < 3 or fields[0].rstrip(".").lower() != wanted:
                continue
            kinds = [i for i, f in enumerate(fields) if f.upper() == "TXT"]
            if kinds and kinds[0] + 1 < len(fields):
                values.append("".join(fields[kinds[0] + 1:]))
    return values


def txt_values(name: str, config: EngineConfig, lookup: TxtLookup | None) -> tuple[list[str], list[str]]:
    """Every TXT value the DNS sources hold at ``name``, and why a source could not answer."""
    values = list(lookup(name)) if lookup is not None else []
    values += zone_file_values(config.dns_zone_files, name)
    problems: list[str] = []
    if config.dns_resolver:
        import dns.exception
        import dns.resolver

        host, _, port = config.dns_resolver.rpartition(":")
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host or config.dns_resolver]
        resolver.port = int(port) if host and port else 53
        resolver.lifetime = config.check_timeout
        try:
            answer = resolver.resolve(name, "TXT")
            values += [b"".join(rdata.strings).decode("ascii", "replace") for rdata in answer]
        except dns.exception.DNSException as exc:
            problems.append(f"{config.dns_resolver} answered {type(exc).__name__}")
    return values, problems


def http_body(url_path: str, domain: str, config: EngineConfig) -> tuple[str | None, str | None]:
    """The body served at ``http_base_url`` + ``url_path`` for ``domain``, or why there is none."""
    import httpx

    if not config.http_base_url:
        return None, "no HTTP server to look at"
    try:
        response = httpx.get(config.http_base_url.rstrip("/") + url_path, headers={"Host": domain},
                             timeout=config.check_timeout)
    except httpx.HTTPError as exc:
        return None, f"fetching failed ({type(exc).__name__})"
    if response.status_code != 200:
        return None, f"answered {response.status_code}"
    return response.text.strip(), None
