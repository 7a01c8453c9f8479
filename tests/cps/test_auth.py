"""EdgeGrid signing: our httpx.Auth must produce exactly the header edgegrid-python's own requests
signer produces for the same request, timestamp and nonce."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest
import requests
from akamai.edgegrid import EdgeGridAuth as RequestsEdgeGridAuth
from akamai.edgegrid import edgegrid

from reconciler.cps.auth import EdgeGridAuth
from reconciler.cps.credentials import Credentials

TIMESTAMP = "20250131T12:34:56+0000"
NONCE = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
CREDS = Credentials(
    host="akab-host.luna.akamaiapis.net",
    client_token="akab-client-token-xxx",
    client_secret="SOOSECRETbase64secretvalue0000000000000000=",
    access_token="akab-access-token-xxx",
)
BODY = b'{"csr":{"cn":"www.example.com","sans":["www.example.com"]},"ra":"lets-encrypt"}'


@pytest.fixture(autouse=True)
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edgegrid, "eg_timestamp", lambda: TIMESTAMP)
    monkeypatch.setattr(edgegrid, "new_nonce", lambda: NONCE)


def ours(creds: Credentials, method: str, url: str, body: bytes | None = None) -> httpx.Request:
    request = httpx.Request(method, url, content=body, headers={"Content-Type": "application/json"})
    flow = EdgeGridAuth(creds).auth_flow(request)
    signed = next(flow)
    return signed


def theirs(creds: Credentials, method: str, url: str, body: bytes | None = None) -> str:
    prepared = requests.Request(method, url, data=body, headers={"Content-Type": "application/json"}).prepare()
    auth = RequestsEdgeGridAuth(creds.client_token, creds.client_secret, creds.access_token,
                                max_body=creds.max_body)
    return str(auth(prepared).headers["Authorization"])


BASE = "https://akab-host.luna.akamaiapis.net"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/cps/v2/enrollments/10001", None),
    ("GET", "/cps/v2/enrollments?contractId=1-AB123", None),
    ("POST", "/cps/v2/enrollments?contractId=1-AB123&allow-duplicate-cn=true", BODY),
    ("POST", "/cps/v2/enrollments/1/changes/2/input/update/change-management-ack", b'{"acknowledgement":"acknowledge"}'),
    ("PUT", "/cps/v2/enrollments/10001?allow-cancel-pending-changes=true", BODY),
    ("DELETE", "/cps/v2/enrollments/10001", None),
])
def test_header_matches_edgegrid_python(method: str, path: str, body: bytes | None) -> None:
    request = ours(CREDS, method, BASE + path, body)
    expected = theirs(CREDS, method, BASE + path, body)
    assert request.headers["Authorization"] == expected
    assert expected.startswith(f"EG1-HMAC-SHA256 client_token={CREDS.client_token};access_token=")
    assert f"timestamp={TIMESTAMP};nonce={NONCE};signature=" in expected


def test_post_body_is_covered_and_put_body_is_not() -> None:
    url = BASE + "/cps/v2/enrollments?contractId=1-AB123"
    a = ours(CREDS, "POST", url, BODY).headers["Authorization"]
    b = ours(CREDS, "POST", url, BODY.replace(b"www", b"api")).headers["Authorization"]
    assert a != b
    url = BASE + "/cps/v2/enrollments/1"
    assert (ours(CREDS, "PUT", url, BODY).headers["Authorization"]
            == ours(CREDS, "PUT", url, BODY.replace(b"www", b"api")).headers["Authorization"])


def test_max_body_truncates_the_hashed_content() -> None:
    small = Credentials(host=CREDS.host, client_token=CREDS.client_token, client_secret=CREDS.client_secret,
                        access_token=CREDS.access_token, max_body=16)
    url = BASE + "/cps/v2/enrollments?contractId=1-AB123"
    # Same first 16 bytes, different tails: the signatures agree because only 16 bytes are hashed.
    first = ours(small, "POST", url, BODY).headers["Authorization"]
    second = ours(small, "POST", url, BODY[:16] + b"different tail").headers["Authorization"]
    assert first == second == theirs(small, "POST", url, BODY)
    assert first != ours(CREDS, "POST", url, BODY).headers["Authorization"]


def test_account_switch_key_is_added_before_signing() -> None:
    switched = Credentials(host=CREDS.host, client_token=CREDS.client_token, client_secret=CREDS.client_secret,
                           access_token=CREDS.access_token, account_switch_key="1-5C0YLB:1-8BYUX")
    request = ours(switched, "POST", BASE + "/cps/v2/enrollments?contractId=1-AB123", BODY)
    assert request.url.params["accountSwitchKey"] == "1-5C0YLB:1-8BYUX"
    assert request.url.params["contractId"] == "1-AB123"
    # edgegrid-python, given the URL as it goes on the wire, signs it identically
    assert request.headers["Authorization"] == theirs(switched, "POST", str(request.url), BODY)
    # and the signature differs from the same request without the key
    assert request.headers["Authorization"] != ours(CREDS, "POST", BASE + "/cps/v2/enrollments?contractId=1-AB123",
                                                   BODY).headers["Authorization"]


def test_explicit_switch_key_in_url_is_not_doubled() -> None:
    switched = Credentials(host=CREDS.host, client_token="t", client_secret="s", access_token="a",
                           account_switch_key="1-K")
    request = ours(switched, "GET", BASE + "/cps/v2/enrollments?accountSwitchKey=1-OTHER")
    assert request.url.params.get_list("accountSwitchKey") == ["1-OTHER"]


def test_host_with_port_is_signed_as_sent() -> None:
    url = "https://127.0.0.1:8443/cps/v2/enrollments/1"
    assert ours(CREDS, "GET", url).headers["Authorization"] == theirs(CREDS, "GET", url)


def test_nothing_secret_reaches_logs_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    auth = EdgeGridAuth(CREDS)
    ours(CREDS, "POST", BASE + "/cps/v2/enrollments?contractId=1", BODY)
    text = caplog.text + repr(auth)
    for secret in (CREDS.client_secret, CREDS.client_token, CREDS.access_token):
        assert secret not in text
    signing_key = edgegrid.base64_hmac_sha256(TIMESTAMP, CREDS.client_secret)
    assert signing_key not in text
