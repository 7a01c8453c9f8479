"""EdgeGrid (EG1-HMAC-SHA256) verification, as the Akamai API gateway does it in front of CPS.

The signature is recomputed from the request exactly as sent (CPS-API.md section 1): method,
scheme ``https``, the ``Host`` header, path plus raw query, no signed headers, the SHA-256 of a
POST body truncated to ``max_body``, and the header text up to ``nonce=...;``. The HMAC helpers
are edgegrid-python's, so signer and verifier share one definition of the primitives.

Choices of the sandbox (the gateway's exact rules are not published): the timestamp must lie
within ``skew_seconds`` (default 300, measured on the real clock, not the virtual one) of now in
either direction, and a nonce is refused if it was already used with a valid signature while its
timestamp is still inside that window (after that the timestamp check refuses it anyway).
"""

from __future__ import annotations

import heapq
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from akamai.edgegrid.edgegrid import base64_hmac_sha256, base64_sha256

SCHEME = "EG1-HMAC-SHA256"
DEFAULT_SKEW_SECONDS = 300.0
DEFAULT_MAX_BODY = 131072
_FIELDS = ("client_token", "access_token", "timestamp", "nonce", "signature")


@dataclass(frozen=True)
class AuthRejection:
    """Why the gateway refused a request: 400 (request-error) or 401 (deny), with its detail."""

    status: int
    detail: str

    @property
    def kind(self) -> str:
        """The last part of the gateway problem type (``…/-/pep-authn/<kind>``)."""
        return "request-error" if self.status == 400 else "deny"

    @property
    def title(self) -> str:
        return "Bad request" if self.status == 400 else "Not authorized"


def _parse(header: str) -> tuple[dict[str, str], str] | None:
    """Split ``EG1-HMAC-SHA256 k=v;...;signature=s`` into fields and the signed prefix."""
    if not header.startswith(SCHEME + " "):
        return None
    cut = header.rfind("signature=")
    if cut < 0 or not header[:cut].endswith(";"):
        return None
    fields: dict[str, str] = {}
    for part in header[len(SCHEME) + 1:].split(";"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            return None
        fields[key.strip()] = value
    if any(not fields.get(name) for name in _FIELDS):
        return None
    return fields, header[:cut]


def _parse_timestamp(value: str) -> float | None:
    try:
        return datetime.strptime(value, "%Y%m%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None


class EdgeGridVerifier:
    """Checks EdgeGrid ``Authorization`` headers for one API client; remembers nonces it accepted."""

    def __init__(self, client_token: str, client_secret: str, access_token: str, *,
                 max_body: int = DEFAULT_MAX_BODY, skew_seconds: float = DEFAULT_SKEW_SECONDS,
                 now: Callable[[], float] = time.time) -> None:
        self._client_token = client_token
        self._client_secret = client_secret
        self._access_token = access_token
        self.max_body = max_body
        self.skew_seconds = skew_seconds
        self._now = now
        self._nonces: set[str] = set()
        self._expiries: list[tuple[float, str]] = []

    def __repr__(self) -> str:
        return f"EdgeGridVerifier(skew_seconds={self.skew_seconds}, max_body={self.max_body})"

    def expected_signature(self, *, method: str, host: str, path_and_query: str, body: bytes,
                           signed_prefix: str, timestamp: str) -> str:
        """The signature a correct client computes (CPS-API.md section 1, steps 2-5)."""
        content_hash = ""
        if method.upper() == "POST" and body:
            content_hash = str(base64_sha256(body[: self.max_body]))
        data = "\t".join([method.upper(), "https", host, path_and_query, "", content_hash, signed_prefix])
        signing_key = str(base64_hmac_sha256(timestamp, self._client_secret))
        return str(base64_hmac_sha256(data, signing_key))

    def verify(self, *, method: str, host: str, path_and_query: str, body: bytes,
               authorization: str | None) -> AuthRejection | None:
        """``None`` when the request is correctly signed by our client, else the rejection."""
        if not authorization:
            return AuthRejection(400, "Authorization header missing")
        parsed = _parse(authorization.strip())
        if parsed is None:
            return AuthRejection(401, "Invalid authorization header")
        fields, signed_prefix = parsed
        if not hmac.compare_digest(fields["client_token"], self._client_token):
            return AuthRejection(401, "Invalid authorization client token")
        if not hmac.compare_digest(fields["access_token"], self._access_token):
            return AuthRejection(401, "Invalid authorization access token")
        stamp = _parse_timestamp(fields["timestamp"])
        now = self._now()
        if stamp is None or abs(now - stamp) > self.skew_seconds:
            return AuthRejection(401, "Invalid timestamp")
        expected = self.expected_signature(method=method, host=host, path_and_query=path_and_query,
                                           body=body, signed_prefix=signed_prefix,
                                           timestamp=fields["timestamp"])
        if not hmac.compare_digest(fields["signature"], expected):
            return AuthRejection(401, "The signature does not match")
        self._forget_expired(now)
        nonce = fields["nonce"]
        if nonce in self._nonces:
            return AuthRejection(401, "Invalid authorization nonce")
        self._nonces.add(nonce)
        heapq.heappush(self._expiries, (stamp + self.skew_seconds, nonce))
        return None

    def _forget_expired(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] < now:
            _, nonce = heapq.heappop(self._expiries)
            self._nonces.discard(nonce)
