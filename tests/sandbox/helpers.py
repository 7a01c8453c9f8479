"""Shared by the sandbox app/conformance/server tests: request bodies, a signed client, the
official-schema check for responses, and a driver that walks a change through its workflow."""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from openapi_schema_validator import OAS30Validator

from reconciler.cps.auth import EdgeGridAuth
from reconciler.cps.credentials import Credentials
from reconciler.sandbox.app import SandboxApp
from reconciler.sandbox.media import media_type as V
from reconciler.sandbox.schemas import official_schemas

EXAMPLES = Path(__file__).with_name("cps_examples")
IN_PROCESS_HOST = "sandbox.test"


def example(name: str) -> Any:
    """One of Akamai's shipped examples (copied verbatim under tests/sandbox/cps_examples/)."""
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def contact(first: str) -> dict[str, Any]:
    return {"firstName": first, "lastName": "Example", "title": "Engineer", "organizationName": "Example Inc",
            "email": f"{first.lower()}@example.com", "phone": "+1-617-555-0100", "addressLineOne": "1 Main St",
            "addressLineTwo": None, "city": "Cambridge", "region": "MA", "postalCode": "02142", "country": "US"}


def dv_body(cn: str = "www.example.com", sans: list[str] | None = None, *, change_management: bool = False
            ) -> dict[str, Any]:
    """A complete enrollment.v12 request for a Let's Encrypt DV certificate."""
    return {
        "ra": "lets-encrypt", "validationType": "dv", "certificateType": "san",
        "changeManagement": change_management, "enableMultiStackedCertificates": False,
        "signatureAlgorithm": "SHA-256", "certificateChainType": "default",
        "csr": {"cn": cn, "sans": sans if sans is not None else [cn, "example.com"], "c": "US", "st": "MA",
                "l": "Cambridge", "o": "Example Inc", "ou": "Web", "preferredTrustChain": None},
        "networkConfiguration": {"geography": "core", "quicEnabled": False, "secureNetwork": "enhanced-tls",
                                 "sniOnly": True, "ocspStapling": "on", "fipsMode": False,
                                 "disallowedTlsVersions": ["TLSv1", "TLSv1_1"],
                                 "mustHaveCiphers": "ak-akamai-2020q1", "preferredCiphers": "ak-akamai-2020q1",
                                 "dnsNameSettings": {"cloneDnsNames": True, "dnsNames": None},
                                 "clientMutualAuthentication": None},
        "org": {"name": "Example Inc", "addressLineOne": "1 Main St", "addressLineTwo": None, "city": "Cambridge",
                "region": "MA", "postalCode": "02142", "country": "US", "phone": "+1-617-555-0100"},
        "adminContact": contact("Ada"), "techContact": contact("Tim"), "thirdParty": None, "orgId": None,
    }


def third_party_body(cn: str = "shop.example.com", *, dual_stack: bool = True,
                     change_management: bool = False) -> dict[str, Any]:
    """A complete enrollment.v12 request for a third-party (customer CA) certificate."""
    body = dv_body(cn, [cn, f"www.{cn}"], change_management=change_management)
    body.update(ra="third-party", validationType="third-party", certificateType="third-party",
                enableMultiStackedCertificates=dual_stack, signatureAlgorithm=None,
                thirdParty={"excludeSans": False})
    return body


def signed_client(app: SandboxApp, credentials: Credentials | None = None) -> httpx.AsyncClient:
    """An EdgeGrid-signing client that calls ``app`` in process."""
    creds = credentials or app.runtime.config.credentials.for_host(IN_PROCESS_HOST)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"https://{creds.host}",
                             auth=EdgeGridAuth(creds))


def _conformance_schema(node: Any) -> Any:
    # Documented exceptions, and no others (CPS-API.md section 12): OpenAPI 3.0.3 says
    # ``nullable`` admits null even with an ``enum`` (third-party enrollments read back
    # ``signatureAlgorithm: null``), and the enrollment ``id`` is an integer on the wire.
    if isinstance(node, list):
        return [_conformance_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _conformance_schema(value) for key, value in node.items()}
    if node.get("nullable") is True and "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


@cache
def _validator(entity_version: str) -> OAS30Validator:
    schema = _conformance_schema(copy.deepcopy(official_schemas()[entity_version]))
    enrollment = schema
    if entity_version.startswith("enrollments."):
        enrollment = schema["properties"]["enrollments"]["items"]
    if entity_version.startswith("enrollment"):
        enrollment["properties"]["id"] = {"type": "integer"}
    if entity_version == "dv-challenges.v2":
        # The third documented exception: a challenge's status is ACME's lower-case word, as
        # production and the official example send it, though the enum is the UI wording.
        status = schema["properties"]["dv"]["items"]["properties"]["challenges"]["items"]["properties"]["status"]
        status["enum"] = [*status["enum"], "pending", "processing", "valid", "invalid"]
    return OAS30Validator(schema)


def schema_errors(entity_version: str, body: Any) -> list[str]:
    """Every way ``body`` breaks the official schema of ``entity_version`` ("problem" for errors)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in _validator(entity_version).iter_errors(body)]


Advance = Callable[[float], Awaitable[None]]


async def drive(client: httpx.AsyncClient, change: str, advance: Advance,
                handle: Callable[[dict[str, Any]], Awaitable[bool]], *, rounds: int = 40) -> dict[str, Any]:
    """Poll ``change`` (a link path) until it completes; ``handle`` answers each allowed input it
    wants to (returning True when it did); otherwise virtual time moves ten minutes."""
    for _ in range(rounds):
        response = await client.get(change, headers={"Accept": V("change.v2")})
        if response.status_code == 404:
            raise AssertionError(f"{change} vanished")
        body: dict[str, Any] = response.json()
        if body["statusInfo"]["state"] in ("completed", "cancelled", "error"):
            return body
        acted = False
        for allowed in body.get("allowedInput") or []:
            acted = await handle(allowed) or acted
        if not acted:
            await advance(600)
    raise AssertionError(f"{change} did not complete: {body['statusInfo']}")


def publish_to_zone_file(zone_file: Path, challenges: Any) -> None:
    """Append every dns-01 challenge of a ``DvChallenges`` (client model) to a zone file the sandbox
    looks at (``EngineConfig.dns_zone_files``; the in-process ``--sandbox`` looks at
    ``.reconcile/dns-published.txt``), as the demo's publish hook does."""
    zone_file.parent.mkdir(parents=True, exist_ok=True)
    with zone_file.open("a", encoding="utf-8") as out:
        for domain in challenges.dv:
            for challenge in domain.challenges:
                if challenge.type == "dns-01" and challenge.full_path and challenge.response_body:
                    out.write(f"{challenge.full_path} TXT {challenge.response_body}\n")


# The demo's publish hook (reconcile.yaml): appends the TXT record to .reconcile/dns-published.txt,
# where the in-process `reconcile --sandbox` looks when it validates DV challenges.
DEMO_PUBLISH = ("mkdir -p .reconcile && printf '%s TXT %s\\n' \"$RECONCILE_RECORD_NAME\" \"$RECONCILE_RECORD_VALUE\" "
                ">> .reconcile/dns-published.txt")


def publish_in_edge_dns(server: Any, challenges: Any) -> None:
    """Publish every dns-01 challenge of a ``DvChallenges`` in a ``SandboxServer``'s own Edge DNS,
    where its CA looks (validation by looking)."""
    import ssl

    with httpx.Client(base_url=server.base_url, auth=EdgeGridAuth(server.credentials),
                      verify=ssl.create_default_context(cafile=server.ca_bundle)) as http:
        for domain in challenges.dv:
            for challenge in domain.challenges:
                if challenge.type != "dns-01" or not challenge.full_path:
                    continue
                name = challenge.full_path.rstrip(".")
                zone = name.split(".", 2)[-1]
                created = http.post(f"/config-dns/v2/zones/{zone}/names/{name}/types/TXT",
                                    json={"name": name, "type": "TXT", "ttl": 60,
                                          "rdata": [f'"{challenge.response_body}"']})
                assert created.status_code in (201, 409), created.text
