"""Let's Encrypt domain validation as the sandbox plays it: challenges, checks, and their views.

Each domain gets fresh random ``http-01`` and ``dns-01`` challenges (wildcards only ``dns-01``, as
ACME requires). Whether a domain passes is decided by looking where the challenges would be
visible (``looking``), or, under the ``trust-ack`` policy, by believing the acknowledgement.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from reconciler.sandbox.engine_config import EngineConfig
from reconciler.sandbox.looking import TxtLookup, http_body, txt_values
from reconciler.sandbox.store import iso, wire

Json = dict[str, Any]

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


def fail_challenges(domain: Json, at: datetime, error: str) -> None:
    """The domain's challenges failed: fresh ones replace them (the old tokens never validate)."""
    fresh = new_domain(domain["domain"], at)
    domain.update(http=fresh["http"], dns=fresh["dns"], expires=fresh["expires"], validationStatus="RESPONSE_ERROR",
                  error=f"{error} New challenges were issued.")
    domain["failedChallenges"] = int(domain.get("failedChallenges") or 0) + 1


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
    """Look for the domain's challenges per the policy (``looking``): ``(passed, error, the
    challenge type that passed)``."""
    policy = config.validation_policy
    if policy == "trust-ack":
        return True, None, "acknowledged"
    errors: list[str] = []
    if policy in ("look", "http") and domain["http"] is not None:
        passed, error = _check_http(domain, config)
        if passed:
            return True, None, "http-01"
        errors.append(str(error))
    if policy in ("look", "dns") or domain["http"] is None:
        passed, error = _check_dns(domain, config, lookup)
        if passed:
            return True, None, "dns-01"
        errors.append(str(error))
    return False, " ".join(errors), ""


def _check_dns(domain: Json, config: EngineConfig, lookup: TxtLookup | None) -> tuple[bool, str | None]:
    name = dns_record_name(domain["domain"])
    values, problems = txt_values(name, config, lookup)
    if domain["dns"]["value"] in values:
        return True, None
    found = "does not hold the expected value" if values else "was not found"
    return False, f"The TXT record at {name} {found}" + (f" ({'; '.join(problems)})." if problems else ".")


def _check_http(domain: Json, config: EngineConfig) -> tuple[bool, str | None]:
    token = domain["http"]["token"]
    body, problem = http_body(f"/.well-known/acme-challenge/{token}", domain["domain"], config)
    if body == domain["http"]["body"]:
        return True, None
    why = problem or "answered without the expected body"
    return False, f"{http_full_path(domain['domain'], token)}: {why}."
