"""Production's quieter moods: answers that real CPS sends and the schemas do not promise.

The sandbox answers exactly per the official schemas by default. Production is looser, and a
client that only ever saw the sandbox breaks on it (issue 23). Two fault actions reproduce it:

| action  | what production does                                               | evidence                       |
|---------|--------------------------------------------------------------------|--------------------------------|
| `empty` | answers a write (input updates above all) 200/204 with no body      | Akamai's Go client accepts 200, 202 and 204 to updates and never reads the body |
| `loose` | change-management info: `ocspStapled`, `sniOnly`, `quicEnabled` as the strings `"true"`/`"false"` | official change-management-info v4/v5 examples |
| `loose` | enrollment `id` as a string (`"10001"`)                              | official enrollment(s) v11/v12 examples |

``PRODUCTION_QUIRKS`` turns both on for every CPS route (``reconcile sandbox --quirks``); a test
can add the same rules with a ``tag`` to affect only its own requests.
"""

from __future__ import annotations

from typing import Any

# Rules (``faults.FaultRule`` fields) for the whole set of quirks.
PRODUCTION_QUIRKS: tuple[dict[str, Any], ...] = (
    {"action": "empty", "method": "POST", "path": "/cps/v2/enrollments/{e}/changes/{c}/input/update/{u}",
     "status": 204},
    {"action": "loose", "method": "GET", "path": "/cps/v2/*"},
)

_CM_NETWORK_FLAGS = ("sniOnly", "quicEnabled")


def quirk_rules(tag: str | None = None) -> list[dict[str, Any]]:
    """``PRODUCTION_QUIRKS`` as fault-rule dicts, limited to requests tagged ``tag`` if given."""
    return [{**rule, "tag": tag} if tag is not None else dict(rule) for rule in PRODUCTION_QUIRKS]


def _text(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value


def _loose_enrollment(item: Any) -> None:
    if isinstance(item, dict) and isinstance(item.get("id"), int):
        item["id"] = str(item["id"])


def _loose_cm_info(body: dict[str, Any]) -> None:
    pending = body.get("pendingState")
    if not isinstance(pending, dict):
        return
    certificates = pending.get("pendingCertificates") or []
    if isinstance(pending.get("pendingCertificate"), dict):
        certificates = [*certificates, pending["pendingCertificate"]]
    for cert in certificates:
        if isinstance(cert, dict) and "ocspStapled" in cert:
            cert["ocspStapled"] = _text(cert["ocspStapled"])
    network = pending.get("pendingNetworkConfiguration")
    if isinstance(network, dict):
        for flag in _CM_NETWORK_FLAGS:
            if flag in network:
                network[flag] = _text(network[flag])


def loosen(entity: str, body: Any) -> Any:
    """``body`` (a served ``entity`` document, e.g. ``enrollment``) with production's loose types."""
    if not isinstance(body, dict):
        return body
    if entity == "enrollment":
        _loose_enrollment(body)
    elif entity == "enrollments":
        for item in body.get("enrollments") or []:
            _loose_enrollment(item)
    elif entity == "change-management-info":
        _loose_cm_info(body)
    return body
