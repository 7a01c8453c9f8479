"""The sandbox over real HTTPS sockets: plain edgegrid-python + requests clients, signature
rejection, skew and replay, faults on the wire, restarts, and `reconcile sandbox` itself."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from akamai.edgegrid import EdgeGridAuth, EdgeRc
from cryptography import x509

from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.media import media_type as V
from reconciler.sandbox.server import api_host
from reconciler.sandbox.testing import SandboxServer
from reconciler.sandbox.tls import ensure_tls
from tests.sandbox.helpers import dv_body

ACCEPT = {"Accept": V("enrollments.v12")}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(engine=EngineConfig(create_throttle_seconds=0)) as running:
        yield running


OPEN: list[requests.Session] = []


@pytest.fixture
def sandbox(server: SandboxServer) -> Iterator[SandboxServer]:
    server.clear_faults()
    server.clear_requests()
    yield server
    server.clear_faults()
    # Idle keep-alive TLS connections would hold the server's shutdown until its grace period.
    while OPEN:
        OPEN.pop().close()


def edgegrid(sandbox: SandboxServer, secret: str | None = None) -> EdgeGridAuth:
    creds = sandbox.credentials
    return EdgeGridAuth(client_token=creds.client_token, client_secret=secret or creds.client_secret,
                        access_token=creds.access_token)


def session(sandbox: SandboxServer, secret: str | None = None) -> requests.Session:
    """What any EdgeGrid user writes: requests + edgegrid-python, trusting the sandbox CA."""
    s = requests.Session()
    s.auth = edgegrid(sandbox, secret)
    s.verify = sandbox.ca_bundle
    s.trust_env = False  # else REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE silently replace session.verify
    OPEN.append(s)
    return s


def test_plain_edgegrid_python_client_lists_and_creates(sandbox: SandboxServer) -> None:
    s = session(sandbox)
    created = s.post(f"{sandbox.base_url}/cps/v2/enrollments", params={"contractId": "1-SRV"},
                     headers={"Accept": V("enrollment-status.v1"), "Content-Type": V("enrollment.v12")},
                     data=json.dumps(dv_body("srv.example.com", ["srv.example.com"])))
    assert created.status_code == 202, created.text
    listed = s.get(f"{sandbox.base_url}/cps/v2/enrollments", params={"contractId": "1-SRV"}, headers=ACCEPT)
    assert listed.headers["content-type"] == V("enrollments.v12")
    assert [e["csr"]["cn"] for e in listed.json()["enrollments"]] == ["srv.example.com"]
    assert [(r["method"], r["status"]) for r in sandbox.requests()] == [("POST", 202), ("GET", 200)]


def test_wrong_secret_is_401(sandbox: SandboxServer) -> None:
    denied = session(sandbox, secret="bm90IHRoZSBzZWNyZXQ=").get(
        f"{sandbox.base_url}/cps/v2/enrollments", params={"contractId": "1-SRV"}, headers=ACCEPT)
    assert denied.status_code == 401
    assert denied.json()["type"].endswith("/-/pep-authn/deny")
    assert denied.json()["detail"] == "The signature does not match"


def test_missing_authorization_is_400(sandbox: SandboxServer) -> None:
    response = requests.get(f"{sandbox.base_url}/cps/v2/enrollments?contractId=1-SRV", headers=ACCEPT,
                            verify=sandbox.ca_bundle, timeout=10)
    assert response.status_code == 400 and response.json()["detail"] == "Authorization header missing"


def _prepared(sandbox: SandboxServer, timestamp: str) -> requests.PreparedRequest:
    prepared = requests.Request("GET", f"{sandbox.base_url}/cps/v2/enrollments?contractId=1-SRV",
                                headers=ACCEPT).prepare()
    auth = edgegrid(sandbox)
    prepared.headers["Authorization"] = auth.ah.make_auth_header(prepared, timestamp, uuid.uuid4())
    return prepared


def test_replayed_request_is_401(sandbox: SandboxServer) -> None:
    prepared = _prepared(sandbox, datetime.now(UTC).strftime("%Y%m%dT%H:%M:%S+0000"))
    with requests.Session() as s:
        first = s.send(prepared, verify=sandbox.ca_bundle, timeout=10)
        replay = s.send(prepared, verify=sandbox.ca_bundle, timeout=10)
    assert first.status_code == 200
    assert replay.status_code == 401 and replay.json()["detail"] == "Invalid authorization nonce"


@pytest.mark.parametrize("skew", [timedelta(minutes=-10), timedelta(minutes=10)])
def test_timestamp_outside_the_skew_window_is_401(sandbox: SandboxServer, skew: timedelta) -> None:
    stamp = (datetime.now(UTC) + skew).strftime("%Y%m%dT%H:%M:%S+0000")
    with requests.Session() as s:
        response = s.send(_prepared(sandbox, stamp), verify=sandbox.ca_bundle, timeout=10)
    assert response.status_code == 401 and response.json()["detail"] == "Invalid timestamp"


def test_only_the_sandbox_ca_is_trusted(sandbox: SandboxServer) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        session(sandbox).get(f"{sandbox.base_url}/cps/v2/enrollments", verify=True, timeout=10)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{sandbox.base_url}/_sandbox/time")


def test_dropped_connection_on_the_wire(sandbox: SandboxServer) -> None:
    sandbox.set_faults(rules=[{"action": "drop", "count": 1}])
    with pytest.raises(requests.exceptions.ConnectionError):
        session(sandbox).get(f"{sandbox.base_url}/cps/v2/enrollments", params={"contractId": "1-SRV"},
                             headers=ACCEPT, timeout=10)
    with httpx.Client(verify=_ssl(sandbox), auth=None) as client:  # the next request is served
        assert client.get(sandbox.base_url + "/_sandbox/time").status_code == 200
    assert session(sandbox).get(f"{sandbox.base_url}/cps/v2/enrollments", params={"contractId": "1-SRV"},
                                headers=ACCEPT, timeout=10).status_code == 200
    assert [r["fault"] for r in sandbox.requests()] == ["drop", None]


def test_dropped_answer_after_a_create_still_created(sandbox: SandboxServer) -> None:
    sandbox.set_faults(rules=[{"action": "drop", "method": "POST", "phase": "after", "count": 1}])
    s = session(sandbox)
    with pytest.raises(requests.exceptions.ConnectionError):
        s.post(f"{sandbox.base_url}/cps/v2/enrollments", params={"contractId": "1-LOST"},
               headers={"Accept": V("enrollment-status.v1"), "Content-Type": V("enrollment.v12")},
               data=json.dumps(dv_body("lost.example.com", ["lost.example.com"])), timeout=10)
    listed = s.get(f"{sandbox.base_url}/cps/v2/enrollments", params={"contractId": "1-LOST"}, headers=ACCEPT)
    assert [e["csr"]["cn"] for e in listed.json()["enrollments"]] == ["lost.example.com"]


def test_truncated_body_and_rate_limit_on_the_wire(sandbox: SandboxServer) -> None:
    # "before" rules (the 429) act ahead of "after" ones (the truncation).
    sandbox.set_faults(rules=[{"action": "truncate", "keep": 5, "count": 1},
                              {"status": 429, "retry_after": 3, "count": 1}])
    s = session(sandbox)
    url = f"{sandbox.base_url}/cps/v2/enrollments"
    limited = s.get(url, params={"contractId": "1-SRV"}, headers=ACCEPT, timeout=10)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    cut = s.get(url, params={"contractId": "1-SRV"}, headers=ACCEPT, timeout=10)
    assert cut.status_code == 200 and cut.content == b'{"enr'
    with pytest.raises(requests.exceptions.JSONDecodeError):
        cut.json()
    live = sandbox.faults()
    assert [r["fired"] for r in live["rules"]] == [1, 1]


def _ssl(sandbox: SandboxServer) -> Any:
    import ssl

    return ssl.create_default_context(cafile=sandbox.ca_bundle)


def test_restart_keeps_data_credentials_and_ca(tmp_path: Path) -> None:
    with SandboxServer(data_dir=tmp_path) as first:
        s = session(first)
        created = s.post(f"{first.base_url}/cps/v2/enrollments", params={"contractId": "1-KEEP"},
                         headers={"Accept": V("enrollment-status.v1"), "Content-Type": V("enrollment.v12")},
                         data=json.dumps(dv_body("keep.example.com", ["keep.example.com"])))
        assert created.status_code == 202
        first.advance(7200)
        ca, creds, moved = Path(first.ca_bundle).read_text(), first.credentials, first.now()
        s.close()
    with SandboxServer(data_dir=tmp_path) as second:
        assert Path(second.ca_bundle).read_text() == ca
        assert (second.credentials.client_token, second.credentials.client_secret) == (creds.client_token,
                                                                                        creds.client_secret)
        assert second.now() >= moved
        with session(second) as s:
            listed = s.get(f"{second.base_url}/cps/v2/enrollments", params={"contractId": "1-KEEP"},
                           headers=ACCEPT)
        assert [e["location"] for e in listed.json()["enrollments"]] == [created.json()["enrollment"]]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_reconcile_sandbox_command_serves_the_readme_recipe(tmp_path: Path, stop: signal.Signals) -> None:
    """`reconcile sandbox` in an empty directory, then the README's edgegrid-python recipe."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "reconciler", "sandbox", "--port", "0"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(7)]
        match = re.search(r"listening on (https://\S+)/cps/v2", banner[0])
        assert match, "".join(banner) + (process.stderr.read() if process.poll() is not None else "")
        data = tmp_path / ".reconcile" / "sandbox-server"
        assert "--edgerc .reconcile/sandbox-server/.edgerc --section sandbox" in "".join(banner)
        assert "RECONCILE_CA_BUNDLE=.reconcile/sandbox-server/ca.pem" in "".join(banner)
        assert os.stat(data / ".edgerc").st_mode & 0o077 == 0

        # The recipe, as written in the README:
        edgerc = EdgeRc(str(data / ".edgerc"))
        base_url = f"https://{edgerc.get('sandbox', 'host')}"
        response = requests.get(f"{base_url}/cps/v2/enrollments", params={"contractId": "1-ABC"},
                                headers={"Accept": "application/vnd.akamai.cps.enrollments.v12+json"},
                                auth=EdgeGridAuth.from_edgerc(edgerc, "sandbox"), verify=str(data / "ca.pem"))
        assert base_url == match.group(1)
        assert response.status_code == 200 and response.json() == {"enrollments": []}
        secrets = [edgerc.get("sandbox", k) for k in ("client_secret", "client_token", "access_token")]
        assert not any(secret in "".join(banner) for secret in secrets)
    finally:
        process.send_signal(stop)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stderr = process.stderr.read() if process.stderr else ""
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()
    assert process.returncode == 0, stderr
    assert "CPS sandbox stopped" in stderr
    assert (tmp_path / ".reconcile" / "sandbox-server" / "sandbox.json").is_file()


def test_tls_material_is_kept_and_renewed_only_when_needed(tmp_path: Path) -> None:
    first = ensure_tls(tmp_path, "127.0.0.1")
    cert, ca = first.certificate.read_bytes(), first.ca_bundle.read_bytes()
    assert first.key.stat().st_mode & 0o077 == 0 and (tmp_path / "tls" / "ca.json").stat().st_mode & 0o077 == 0
    assert ensure_tls(tmp_path, "localhost").certificate.read_bytes() == cert  # already named
    renamed = ensure_tls(tmp_path, "sandbox.internal")
    leaf = x509.load_pem_x509_certificates(renamed.certificate.read_bytes())[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "sandbox.internal" in names.get_values_for_type(x509.DNSName)
    assert renamed.ca_bundle.read_bytes() == ca  # same CA: clients keep trusting it
    chain = x509.load_pem_x509_certificates(renamed.certificate.read_bytes())
    root = x509.load_pem_x509_certificate(ca)
    chain[0].verify_directly_issued_by(chain[1])
    chain[1].verify_directly_issued_by(root)


def test_edgerc_host_is_what_clients_sign() -> None:
    assert api_host("127.0.0.1", 8443) == "127.0.0.1:8443"
    assert api_host("0.0.0.0", 8443) == "127.0.0.1:8443"
    assert api_host("::1", 8443) == "[::1]:8443"
    assert api_host("localhost", 443) == "localhost"
