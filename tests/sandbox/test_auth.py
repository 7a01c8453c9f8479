"""EdgeGrid verification against requests signed by edgegrid-python's own signer."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
import requests
from akamai.edgegrid import EdgeGridAuth

from reconciler.sandbox.auth import EdgeGridVerifier

CT, CS, AT = "akab-client-token", "c2VjcmV0IGtleSBvZiB0aGUgY2xpZW50", "akab-access-token"
HOST = "akab-test.luna.akamaiapis.net"
NOW = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC).timestamp()


def signed(method: str, url: str, body: bytes | None = None, *, secret: str = CS, max_body: int = 131072,
           timestamp: str = "20250131T12:00:00+0000", nonce: str | None = None) -> requests.PreparedRequest:
    """A request exactly as edgegrid-python signs it (fixed timestamp and nonce when asked)."""
    prepared = requests.Request(method, url, data=body).prepare()
    auth = EdgeGridAuth(client_token=CT, client_secret=secret, access_token=AT, max_body=max_body)
    prepared.headers["Authorization"] = auth.ah.make_auth_header(prepared, timestamp, nonce or uuid.uuid4())
    return prepared


def verify(verifier: EdgeGridVerifier, prepared: requests.PreparedRequest, *, host: str = HOST,
           body: bytes | None = None, method: str | None = None, path: str | None = None):  # type: ignore[no-untyped-def]
    url = requests.utils.urlparse(prepared.url)
    path_and_query = path or (url.path + (f"?{url.query}" if url.query else ""))
    sent = prepared.body if isinstance(prepared.body, bytes) else (prepared.body or "").encode()
    return verifier.verify(method=method or str(prepared.method), host=host, path_and_query=path_and_query,
                           body=sent if body is None else body,
                           authorization=prepared.headers.get("Authorization"))


@pytest.fixture
def verifier() -> EdgeGridVerifier:
    return EdgeGridVerifier(CT, CS, AT, now=lambda: NOW)


def test_get_with_query_verifies(verifier: EdgeGridVerifier) -> None:
    prepared = signed("GET", f"https://{HOST}/cps/v2/enrollments?contractId=1-ABC&accountSwitchKey=1-X:1-Y")
    assert verify(verifier, prepared) is None


def test_post_body_is_covered_by_the_signature(verifier: EdgeGridVerifier) -> None:
    prepared = signed("POST", f"https://{HOST}/cps/v2/enrollments?contractId=1-ABC", b'{"a": 1}')
    assert verify(verifier, prepared) is None
    tampered = verify(EdgeGridVerifier(CT, CS, AT, now=lambda: NOW), prepared, body=b'{"a": 2}')
    assert tampered is not None and tampered.status == 401
    assert tampered.detail == "The signature does not match"


def test_put_body_is_not_covered(verifier: EdgeGridVerifier) -> None:
    # CPS-API.md section 1: only POST bodies are hashed; a PUT body may change without notice.
    prepared = signed("PUT", f"https://{HOST}/cps/v2/enrollments/10000", b'{"a": 1}')
    assert verify(verifier, prepared, body=b'{"a": 2}') is None


def test_post_body_hash_is_truncated_to_max_body() -> None:
    body = b"x" * 200
    prepared = signed("POST", f"https://{HOST}/cps/v2/x", body, max_body=100)
    verifier = EdgeGridVerifier(CT, CS, AT, max_body=100, now=lambda: NOW)
    # Bytes past max_body are not signed, so changing them keeps the signature valid.
    assert verify(verifier, prepared, body=body[:100] + b"y" * 100) is None


def test_wrong_secret_is_refused(verifier: EdgeGridVerifier) -> None:
    prepared = signed("GET", f"https://{HOST}/cps/v2/enrollments?contractId=1-ABC", secret="d3Jvbmc=")
    rejection = verify(verifier, prepared)
    assert rejection is not None and (rejection.status, rejection.kind) == (401, "deny")
    assert rejection.title == "Not authorized"


@pytest.mark.parametrize("change", ["host", "path", "query", "method"])
def test_any_signed_part_changed_is_refused(verifier: EdgeGridVerifier, change: str) -> None:
    prepared = signed("GET", f"https://{HOST}/cps/v2/enrollments?contractId=1-ABC")
    kwargs = {"host": {"host": "other.example.net"}, "path": {"path": "/cps/v2/enrollments/1?contractId=1-ABC"},
              "query": {"path": "/cps/v2/enrollments?contractId=1-ABD"}, "method": {"method": "DELETE"}}[change]
    rejection = verify(verifier, prepared, **kwargs)  # type: ignore[arg-type]
    assert rejection is not None and rejection.detail == "The signature does not match"


def test_missing_header_is_a_request_error(verifier: EdgeGridVerifier) -> None:
    rejection = verifier.verify(method="GET", host=HOST, path_and_query="/cps/v2/enrollments", body=b"",
                                authorization=None)
    assert rejection is not None
    assert (rejection.status, rejection.kind, rejection.title) == (400, "request-error", "Bad request")
    assert rejection.detail == "Authorization header missing"


@pytest.mark.parametrize("header", [
    "Basic dXNlcjpwYXNz",
    "EG1-HMAC-SHA256 client_token=a;access_token=b;timestamp=c;nonce=d;",
    "EG1-HMAC-SHA256 client_token=a;access_token=b;nonce=d;signature=e",
    "EG1-HMAC-SHA256 garbage",
])
def test_malformed_headers_are_refused(verifier: EdgeGridVerifier, header: str) -> None:
    rejection = verifier.verify(method="GET", host=HOST, path_and_query="/x", body=b"", authorization=header)
    assert rejection is not None and rejection.status == 401


def test_unknown_tokens_are_refused(verifier: EdgeGridVerifier) -> None:
    prepared = signed("GET", f"https://{HOST}/cps/v2/enrollments")
    header = prepared.headers["Authorization"]
    prepared.headers["Authorization"] = header.replace(f"client_token={CT}", "client_token=akab-other")
    assert verify(verifier, prepared).detail == "Invalid authorization client token"  # type: ignore[union-attr]
    prepared.headers["Authorization"] = header.replace(f"access_token={AT}", "access_token=akab-other")
    assert verify(verifier, prepared).detail == "Invalid authorization access token"  # type: ignore[union-attr]


@pytest.mark.parametrize(("offset", "accepted"), [(-299, True), (299, True), (-301, False), (301, False)])
def test_timestamp_must_be_within_the_skew_window(offset: int, accepted: bool) -> None:
    verifier = EdgeGridVerifier(CT, CS, AT, now=lambda: NOW + offset)
    rejection = verify(verifier, signed("GET", f"https://{HOST}/cps/v2/enrollments"))
    if accepted:
        assert rejection is None
    else:
        assert rejection is not None and rejection.detail == "Invalid timestamp"


def test_skew_window_is_configurable() -> None:
    verifier = EdgeGridVerifier(CT, CS, AT, skew_seconds=30, now=lambda: NOW + 31)
    assert verify(verifier, signed("GET", f"https://{HOST}/cps/v2/enrollments")) is not None


def test_unparseable_timestamp_is_refused(verifier: EdgeGridVerifier) -> None:
    prepared = signed("GET", f"https://{HOST}/cps/v2/enrollments", timestamp="yesterday")
    assert verify(verifier, prepared).detail == "Invalid timestamp"  # type: ignore[union-attr]


def test_replayed_nonce_is_refused(verifier: EdgeGridVerifier) -> None:
    prepared = signed("GET", f"https://{HOST}/cps/v2/enrollments", nonce="4b3c1f0e-0000-4000-8000-000000000001")
    assert verify(verifier, prepared) is None
    replay = verify(verifier, prepared)
    assert replay is not None and (replay.status, replay.detail) == (401, "Invalid authorization nonce")


def test_a_badly_signed_request_does_not_burn_the_nonce(verifier: EdgeGridVerifier) -> None:
    nonce = "4b3c1f0e-0000-4000-8000-000000000002"
    forged = signed("GET", f"https://{HOST}/cps/v2/enrollments", secret="d3Jvbmc=", nonce=nonce)
    assert verify(verifier, forged) is not None
    assert verify(verifier, signed("GET", f"https://{HOST}/cps/v2/enrollments", nonce=nonce)) is None


def test_nonces_are_forgotten_once_their_timestamp_expired() -> None:
    clock = [NOW]
    verifier = EdgeGridVerifier(CT, CS, AT, skew_seconds=60, now=lambda: clock[0])
    first = signed("GET", f"https://{HOST}/a", nonce="n-1")
    assert verify(verifier, first) is None
    clock[0] = NOW + 61
    later = signed("GET", f"https://{HOST}/a", nonce="n-2", timestamp="20250131T12:01:01+0000")
    assert verify(verifier, later) is None
    assert "n-1" not in verifier._nonces  # memory stays bounded by the window
    assert verify(verifier, first) is not None  # and the old request is refused by its timestamp


def test_repr_hides_secrets(verifier: EdgeGridVerifier) -> None:
    assert not re.search(f"{CT}|{CS}|{AT}", repr(verifier))
