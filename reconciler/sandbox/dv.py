"""Let's Encrypt domain validation as the sandbox plays it: challenges, checks, and their views.

Each domain gets fresh random ``http-01`` and ``dns-01`` challenges (wildcards only ``dns-01``, as
ACME requires). Whether a domain passes depends on the engine's policy: trust the client's
acknowledgement, or really look the TXT record up through a configured resolver, or really fetch
the HTTP token from a configured base URL (with the domain as ``Host``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from reconciler.sandbox.engine_config import EngineConfig
from reconciler.sandbox.store import iso, wire

Json = dict[str, Any]
# name (``_acme-challenge.<domain>.``) -> TXT values published there; an alternative to a resolver.
TxtLookup = Callable[[str], list[str]]

CHALLENGE_LIFETIME = timedelta(days=7)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _base(domain: str) -> str:
    return domain[2:] if domain.startswith("*.") else domain


def dns_record_name(domain: str) -> str:
    """Where the ``dns-01`` TXT record goes (wildcards validate on their base name)."""
    return f"_acme-challenge.{_base(domain)}."


def new_domain(domain: str, at: datetime) -> Json:
    """A domain awaiting validation, with fresh challenges (stored form)."""
    # Stands in for the ACME account key thumbprint that key authorisations end with.
    thumbprint = _b64url(secrets.token_bytes(32))
    http_token, dns_token = _b64url(secrets.token_bytes(32)), _b64url(secrets.token_bytes(32))
    dns_key_auth = f"{dns_token}.{thumbprint}"
    return {
        "domain": domain,
        "validationStatus": "IN_PROGRESS",
        "error": None,
        "requestTimestamp": iso(at),
        "expires": iso(at + CHALLENGE_LIFETIME),
        "validatedTimestamp": None,
        "lastCheck": None,
        "validatedBy": None,
        "http": None if domain.startswith("*.") else {"token": http_token, "body": f"{http_token}.{thumbprint}"},
        "dns": {"token": dns_token, "value": _b64url(hashlib.sha256(dns_key_auth.encode()).digest())},
    }


def reused_domain(domain: str, at: datetime, validated: str) -> Json:
    """A domain whose earlier validation is still good: no new challenge needed."""
    record = new_domain(domain, at)
    record.update(validationStatus="VALIDATED", validatedTimestamp=validated, validatedBy="reused")
    return record


def mark_valid(domain: Json, at: datetime, by: str) -> None:
    domain.update(validationStatus="VALIDATED", error=None, validatedTimestamp=iso(at), validatedBy=by)


def is_valid(domain: Json) -> bool:
    return bool(domain["validationStatus"] == "VALIDATED")


def http_full_path(domain: str, token: str) -> str:
    return f"http://{domain}/.well-known/acme-challenge/{token}"


def _acme_status(proved: bool) -> str:
    """A challenge's status as production sends it: ACME's lower-case words, although the
    schema's enum is the capitalised UI wording (CPS-API.md 5.4, the official dv-challenges
    example). A failed check leaves it ``pending`` (CPS keeps checking) with the domain's
    ``error`` set; a challenge that failed when acknowledged is replaced (``fail_acknowledged``)."""
    return "valid" if proved else "pending"


def _challenges(domain: Json) -> list[Json]:
    by = domain["validatedBy"]
    out: list[Json] = []
    if domain["http"] is not None:
        token = domain["http"]["token"]
        records = [{"hostname": domain["domain"], "port": "80", "url": http_full_path(domain["domain"], token)}]
        out.append(
            {
                "type": "http-01",
                "status": _acme_status(by == "http-01"),
                "error": None,
                "token": token,
                "fullPath": http_full_path(domain["domain"], token),
                "redirectFullPath": f"http://dcv.akamai.com/.well-known/acme-challenge/{token}",
                "responseBody": domain["http"]["body"],
                "validationRecords": records if by == "http-01" else [],
            }
        )
    out.append(
        {
            "type": "dns-01",
            "status": _acme_status(by in ("dns-01", "acknowledged")),
            "error": None,
            "token": domain["dns"]["token"],
            "fullPath": dns_record_name(domain["domain"]),
            "redirectFullPath": "",
            "responseBody": domain["dns"]["value"],
            "validationRecords": [],
        }
    )
    if is_valid(domain):
        # Once a domain is valid only the challenge that proved it matters; a reused
        # authorisation shows none, so nothing invites the client to publish again.
        out = [c for c in out if c["status"] == "valid"]
    return out


def domain_view(domain: Json) -> Json:
    """One ``dv-challenges.v2`` item: the domain's ``status`` in UI wording, its challenges' in ACME's."""
    valid = is_valid(domain)
    ui_status = "Valid" if valid else "Awaiting user"
    return {
        "domain": domain["domain"],
        "status": ui_status,
        "validationStatus": domain["validationStatus"],
        "error": domain["error"],
        "expires": wire(domain["expires"]),
        "requestTimestamp": wire(domain["requestTimestamp"]),
        "validatedTimestamp": wire(domain["validatedTimestamp"] or domain["lastCheck"] or domain["requestTimestamp"]),
        "challenges": _challenges(domain),
    }


def history_entry(domain: Json) -> Json:
    """One ``dv-history.v1`` domainHistory item (flat token fields from the HTTP challenge)."""
    view = domain_view(domain)
    first = domain["http"] or {"token": domain["dns"]["token"], "body": domain["dns"]["value"]}
    full_path = (
        http_full_path(domain["domain"], first["token"]) if domain["http"] else dns_record_name(domain["domain"])
    )
    return {
        "domain": domain["domain"],
        "status": view["status"],
        "validationStatus": view["validationStatus"],
        "error": view["error"],
        "expires": view["expires"],
        "requestTimestamp": view["requestTimestamp"],
        "validatedTimestamp": view["validatedTimestamp"],
        "token": first["token"],
        "fullPath": full_path,
        "redirectFullPath": (
            f"http://dcv.akamai.com/.well-known/acme-challenge/{first['token']}" if domain["http"] else ""
        ),
        "responseBody": first["body"],
        "challenges": view["challenges"],
        "validationRecords": [],
    }


def check(domain: Json, config: EngineConfig, lookup: TxtLookup | None = None) -> tuple[bool, str | None, str]:
    """Probe one domain per the policy: ``(passed, error, challenge type that passed)``."""
    if config.validation_policy == "dns":
        return (*_check_dns(domain, config, lookup), "dns-01")
    if config.validation_policy == "http":
        if domain["http"] is None:
            return (*_check_dns(domain, config, lookup), "dns-01")
        return (*_check_http(domain, config), "http-01")
    return True, None, "acknowledged"


def _check_dns(domain: Json, config: EngineConfig, lookup: TxtLookup | None) -> tuple[bool, str | None]:
    import dns.exception
    import dns.resolver

    name = dns_record_name(domain["domain"])
    if lookup is not None:
        if domain["dns"]["value"] in lookup(name):
            return True, None
        return False, f"The TXT record at {name} does not hold the expected value."
    if not config.dns_resolver:
        return False, "The sandbox has no DNS resolver configured for dns-01 checks."
    host, _, port = config.dns_resolver.rpartition(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host or config.dns_resolver]
    resolver.port = int(port) if host and port else 53
    resolver.lifetime = config.check_timeout
    try:
        answer = resolver.resolve(name, "TXT")
    except dns.exception.DNSException as exc:
        return False, f"No TXT record found at {name} ({type(exc).__name__})."
    values = {b"".join(rdata.strings).decode("ascii", "replace") for rdata in answer}
    if domain["dns"]["value"] in values:
        return True, None
    return False, f"The TXT record at {name} does not hold the expected value."


def _check_http(domain: Json, config: EngineConfig) -> tuple[bool, str | None]:
    import httpx

    if not config.http_base_url:
        return False, "The sandbox has no HTTP base URL configured for http-01 checks."
    token = domain["http"]["token"]
    url = config.http_base_url.rstrip("/") + f"/.well-known/acme-challenge/{token}"
    try:
        response = httpx.get(url, headers={"Host": domain["domain"]}, timeout=config.check_timeout)
    except httpx.HTTPError as exc:
        return False, f"Fetching {http_full_path(domain['domain'], token)} failed ({type(exc).__name__})."
    if response.status_code == 200 and response.text.strip() == domain["http"]["body"]:
        return True, None
    return False, f"{http_full_path(domain['domain'], token)} answered {response.status_code} without the expected body."
