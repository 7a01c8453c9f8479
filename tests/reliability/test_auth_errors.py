"""Authentication failures reach the user as such, once: the sandbox's gateway refuses a wrong
secret or token, a skewed timestamp, a replayed nonce (401) and a missing header (400, CPS-API.md
section 1); the CLI exits 1 with the gateway's reason and where to look, and sends the refused
request exactly once (counted in the sandbox's request log).

tests/sandbox/test_auth.py covers the verifier and tests/cps the client's error types and its
no-retry rule; these run the CLI (a subprocess for the wrong secret, in process where the test
must pin edgegrid-python's timestamp or nonce, or drop the signature)."""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from akamai.edgegrid import edgegrid
from click.testing import CliRunner

from reconciler.cli.main import cli as reconcile
from reconciler.cps.auth import EdgeGridAuth
from reconciler.sandbox.engine_config import EngineConfig
from reconciler.sandbox.testing import SandboxServer
from reconciler.state.store import StateStore
from tests.e2e.test_apply_e2e import cli, dv_hook, write_repo

CONTRACT = "ctr_1-AUTHN"
HINT = "check client_token, client_secret and access_token"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(speed=20000, engine=EngineConfig(validation_policy="trust-ack")) as sandbox:
        yield sandbox


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write_repo(root, CONTRACT, [dv_hook("www", "www.authn.example.com")])
    return root


def edgerc(tmp: Path, server: SandboxServer, **override: str) -> Path:
    values = {"host": server.credentials.host, "client_token": server.credentials.client_token,
              "client_secret": server.credentials.client_secret,
              "access_token": server.credentials.access_token, **override}
    path = tmp / "override.edgerc"
    path.write_text("[sandbox]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return path


def in_process(server: SandboxServer, repo: Path, monkeypatch: pytest.MonkeyPatch, *args: str,
               edgerc_path: Path | None = None) -> tuple[int, str, str]:
    monkeypatch.chdir(repo)
    env = {"AKAMAI_EDGERC": str(edgerc_path or server.edgerc), "AKAMAI_EDGERC_SECTION": "sandbox",
           "RECONCILE_CA_BUNDLE": server.ca_bundle, "RECONCILE_POLL_INTERVAL": "0.02"}
    result = CliRunner().invoke(reconcile, ["--no-color", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def refused_once(server: SandboxServer, status: int) -> None:
    logged = [(r["method"], r["path"], r["status"]) for r in server.requests()]
    assert logged == [("GET", "/cps/v2/enrollments", status)], logged


def test_wrong_secret_fails_plan_and_apply_once_with_a_clear_error(server: SandboxServer, repo: Path,
                                                                    tmp_path: Path) -> None:
    wrong = edgerc(tmp_path, server, client_secret="d3Jvbmcgc2VjcmV0IGZvciB0aGUgdGVzdA==")
    server.clear_requests()
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda args: cli(server, repo, "--edgerc", str(wrong), *args),
                             (["plan"], ["apply", "--auto-approve"])))
    for run in runs:
        assert run.returncode == 1, run.stdout + run.stderr
        assert "Error: CPS 401 Not authorized: The signature does not match" in run.stderr, run.stderr
        assert HINT in run.stderr and "clock" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
    logged = sorted((r["method"], r["status"]) for r in server.requests())
    assert logged == [("GET", 401), ("GET", 401)], logged  # one each: a 401 is never retried
    assert StateStore(repo / "state" / "reconcile-state.json").read().entries == {}  # nothing recorded


@pytest.mark.parametrize("field,detail", [("client_token", "Invalid authorization client token"),
                                          ("access_token", "Invalid authorization access token")])
def test_unknown_token_is_refused_once(field: str, detail: str, server: SandboxServer, repo: Path,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = edgerc(tmp_path, server, **{field: "akab-0000000000000000-0000000000000000"})
    server.clear_requests()
    code, _, err = in_process(server, repo, monkeypatch, "plan", edgerc_path=wrong)
    assert code == 1 and f"CPS 401 Not authorized: {detail}" in err and HINT in err, err
    refused_once(server, 401)


def test_skewed_clock_is_refused_once(server: SandboxServer, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ten_minutes_ago = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y%m%dT%H:%M:%S+0000")
    monkeypatch.setattr(edgegrid, "eg_timestamp", lambda: ten_minutes_ago)
    server.clear_requests()
    code, _, err = in_process(server, repo, monkeypatch, "apply", "--auto-approve")
    assert code == 1 and "CPS 401 Not authorized: Invalid timestamp" in err and "clock" in err, err
    refused_once(server, 401)


def test_replayed_nonce_is_refused_once(server: SandboxServer, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nonce = str(uuid.uuid4())
    monkeypatch.setattr(edgegrid, "new_nonce", lambda: nonce)
    code, _, err = in_process(server, repo, monkeypatch, "plan")
    assert code == 0, err  # the nonce's first use is accepted
    server.clear_requests()
    code, _, err = in_process(server, repo, monkeypatch, "plan")
    assert code == 1 and "CPS 401 Not authorized: Invalid authorization nonce" in err and HINT in err, err
    refused_once(server, 401)


def test_missing_authorization_header_is_a_400_named_as_such(server: SandboxServer, repo: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def unsigned(self: EdgeGridAuth, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield request  # as if a proxy stripped the header

    monkeypatch.setattr(EdgeGridAuth, "auth_flow", unsigned)
    server.clear_requests()
    code, _, err = in_process(server, repo, monkeypatch, "plan")
    assert code == 1 and "CPS 400 Bad request: Authorization header missing" in err and HINT in err, err
    refused_once(server, 400)


def test_401_on_a_write_mid_apply_is_not_retried(server: SandboxServer, repo: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway refusing the create (credentials revoked mid-run): one POST, the enrollment fails."""
    server.clear_requests()
    server.set_faults(rules=[{"method": "POST", "path": "/cps/v2/enrollments", "status": 401,
                              "detail": "The signature does not match"}])
    try:
        code, out, err = in_process(server, repo, monkeypatch, "apply", "--auto-approve")
    finally:
        server.clear_faults()
    assert code == 1, out + err
    assert "www: failed" in out and "401" in out, out
    posts = [r for r in server.requests() if r["method"] == "POST"]
    assert [(r["path"], r["status"]) for r in posts] == [("/cps/v2/enrollments", 401)]

