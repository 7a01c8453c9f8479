"""Credentials never leak: the scanner itself, then every artefact of real runs scanned for them.

The runs use ``CANARY`` credentials (tests/secretscan.py) seeded into the sandbox, so any hit in
stdout, stderr, DEBUG logs, the project directory or temporary files is a real leak.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from reconciler.cli.main import cli as reconcile
from reconciler.cps.client import CpsClient
from reconciler.cps.credentials import Credentials
from reconciler.cps.retry import RetryPolicy
from reconciler.errors import AuthenticationError, CpsApiError, TransportError
from reconciler.sandbox.ca import CertificateAuthority
from reconciler.sandbox.engine_config import EngineConfig
from reconciler.sandbox.testing import SandboxServer
from tests.e2e.test_apply_e2e import QUICK_SIGNER, cli, dv_hook, dv_manual, third_party, write_repo
from tests.sandbox.helpers import DEMO_PUBLISH
from tests.secretscan import (
    CANARY,
    Finding,
    SecretScan,
    assert_no_secrets,
    canary_credentials,
    scan_for_secrets,
    secret_forms,
    secrets_of,
    write_canary_edgerc,
)

SECRET = CANARY["client_secret"]


# -- the scanner ---------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", [b"", b"x", b"xy", b"Authorization: Basic abc"])
def test_scanner_finds_base64_at_any_alignment_inside_longer_text(prefix: bytes) -> None:
    blob = base64.b64encode(prefix + SECRET.encode() + b"::trailing bytes")
    findings = scan_for_secrets(CANARY, texts={"blob": blob})
    assert {f.secret for f in findings} == {"client_secret"}
    assert "base64" in {f.form.split("/")[0] for f in findings}
    url_blob = base64.urlsafe_b64encode(prefix + CANARY["access_token"].encode() + b"!")
    assert {f.form.split("/")[0] for f in scan_for_secrets(CANARY, texts=[url_blob])} >= {"base64url"}


def test_scanner_finds_encoded_and_cut_forms_in_binary_files(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "url.bin").write_bytes(b"\x00\xff" + quote(SECRET, safe="").encode() + b"\x00")
    (nested / "data.json").write_text(json.dumps({"k": SECRET}).replace("/", "\\/"))
    (nested / "cut.log").write_text("secret=" + SECRET[:len(SECRET) // 2] + "...")
    (nested / "hex.txt").write_text(SECRET.encode().hex())
    (tmp_path / "utf16.txt").write_bytes(("x" + CANARY["client_token"]).encode("utf-16-le"))
    (tmp_path / "clean.txt").write_text("nothing here " * 100)
    found = {(Path(f.where).name, f.secret, f.form) for f in scan_for_secrets(CANARY, paths=[tmp_path])}
    assert ("url.bin", "client_secret", "url") in found
    assert ("data.json", "client_secret", "json-slash") in found
    assert ("cut.log", "client_secret", "fragment-head") in found
    assert ("hex.txt", "client_secret", "hex") in found
    assert ("utf16.txt", "client_token", "utf-16") in found
    assert not any(name == "clean.txt" for name, _, _ in found)


def test_scanner_excludes_and_never_prints_the_secret(tmp_path: Path) -> None:
    (tmp_path / ".edgerc").write_text(f"client_secret = {SECRET}\n")
    (tmp_path / "out.log").write_text(f"oops {SECRET}")
    assert_no_secrets(CANARY, paths=[tmp_path / ".edgerc"], exclude=[tmp_path / ".edgerc"])
    with pytest.raises(AssertionError) as leaked:
        assert_no_secrets(CANARY, paths=[tmp_path], exclude=[tmp_path / ".edgerc"])
    message = str(leaked.value)
    assert "out.log" in message and ".edgerc" not in message
    assert not scan_for_secrets(CANARY, texts={"assertion": message})


def test_scanner_refuses_short_secrets_and_has_long_forms() -> None:
    with pytest.raises(ValueError, match="shorter than"):
        scan_for_secrets(["abc"], texts=["abc"])
    forms = secret_forms(SECRET)
    assert all(len(form) >= 12 for form in forms.values())
    assert forms["url"] != forms["raw"]  # '+', '/', '=' make every encoding distinct


def test_secret_scan_collects_then_checks(tmp_path: Path) -> None:
    scan = SecretScan()
    scan.add_secrets(canary_credentials("127.0.0.1"))
    scan.add_text("stdout", "fine")
    scan.add_path(tmp_path)
    scan.check()
    scan.add_text("stdout", f"now leaking {CANARY['access_token']}")
    with pytest.raises(AssertionError, match=r"stdout#2@\d+: access_token \(raw\)"):
        scan.check()
    assert isinstance(canary_credentials("h"), Credentials)


# -- real runs: every artefact scanned -----------------------------------------------------------

# A DV hook that also dumps its whole environment into the repository: hooks are the customer's
# code, so whatever the tool hands them (or leaves in os.environ) is scanned too.
ENV_DUMP_HOOK = (f"{sys.executable} -c \"import os, json; "
                 "open('hook-env.json', 'a').write(json.dumps(dict(os.environ)) + '\\n')\"")
WRONG_SECRET = "WRONGCANARYsecret+Zq8/Lm3Np7Rt2Vx6Bc1Df5Gh9Jk="
SWITCH_KEY = "1-LEAKCANARYSWITCH:1-ACCT9"  # not a credential, but kept out of logs too (README)


@pytest.fixture(scope="module")
def canary_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    data = tmp_path_factory.mktemp("canary-sandbox")
    write_canary_edgerc(data)
    with SandboxServer(data_dir=data, speed=20000, engine=EngineConfig(validation_policy="trust-ack")) as server:
        assert secrets_of(server.credentials) == CANARY  # the sandbox kept the seeded canaries
        yield server


class Runs:
    """Runs ``reconcile --no-color -vv ...`` subprocesses in one repo and keeps every output."""

    def __init__(self, server: SandboxServer, repo: Path, tmp: Path) -> None:
        self.server, self.repo, self.tmpdir = server, repo, tmp / "process-tmp"
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.outputs: dict[str, str] = {}

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = cli(self.server, self.repo, "-vv", *args,
                   env={"TMPDIR": str(self.tmpdir), "PYTHONWARNINGS": "always", **(env or {})})
        label = " ".join(args)
        self.outputs[f"stdout of {label}"] = done.stdout
        self.outputs[f"stderr of {label}"] = done.stderr
        return done

    def many(self, *commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
        """Independent commands at once (they only read CPS and the state)."""
        with ThreadPoolExecutor(max_workers=len(commands)) as pool:
            return list(pool.map(lambda args: self(*args), commands))

    def scan(self, secrets: dict[str, str], *extra: Path, exclude: tuple[Path, ...] = ()) -> list[Finding]:
        return scan_for_secrets(secrets, texts=self.outputs,
                                paths=[self.repo, self.tmpdir, self.server.data_dir, *extra],
                                exclude=[self.server.edgerc, *exclude])


def test_full_lifecycle_at_debug_verbosity_leaks_no_credential(canary_server: SandboxServer,
                                                               tmp_path: Path) -> None:
    """Subprocesses at -vv (every logger at DEBUG): a saved plan, its apply (DV hook, third-party
    signer with change management, manual DV and unsigned third-party left waiting), challenge and
    CSR exports, import, `--sandbox` apply, a manual confirmation, a second apply. Their stdout and stderr, the
    repositories (state, backup, plan file, exports, hook output), TMPDIR and the sandbox's data
    directory (all but its .edgerc) hold no credential in any encoding."""
    server = canary_server
    repo = tmp_path / "repo"
    www = dv_hook("www", "www.canary.example.com")
    www["validation"]["hook"]["publish"] = ENV_DUMP_HOOK
    shop = third_party("shop", "shop.canary.example.com", QUICK_SIGNER)
    shop.update(change_management=True, acknowledge_change_management=True)
    blog = {**dv_manual("blog", "blog.canary.example.com")}
    unsigned = third_party("unsigned", "unsigned.canary.example.com")
    del unsigned["signer"]
    write_repo(repo, "ctr_1-CANARY", [www, shop, blog, unsigned])
    run = Runs(server, repo, tmp_path)

    planned = run("plan", "--out", "plan.json")
    assert planned.returncode == 0, planned.stderr
    applied = run("apply", "--auto-approve", "--timeout", "25", "plan.json")
    assert applied.returncode == 3, applied.stdout + applied.stderr  # blog and unsigned wait on a person
    # -vv really is debug for every logger: our request lines and httpx/httpcore internals are there.
    assert "DEBUG reconciler.cps: cps POST /cps/v2/enrollments" in applied.stderr, applied.stderr[-2000:]
    assert "DEBUG httpcore" in applied.stderr
    imported = Runs(server, tmp_path / "imported", tmp_path)
    write_repo(imported.repo, "ctr_1-CANARY", [])
    local = Runs(server, tmp_path / "local", tmp_path)  # `reconcile --sandbox`, seeded with the canaries
    local_www = dv_hook("www", "www.local.example.com")
    local_www["validation"]["hook"]["publish"] = DEMO_PUBLISH  # where the in-process sandbox looks
    write_repo(local.repo, "ctr_1-LOCAL", [local_www])
    write_canary_edgerc(local.repo / ".reconcile" / "sandbox")
    with ThreadPoolExecutor(max_workers=3) as pool:
        in_local = pool.submit(local, "--sandbox", "apply", "--auto-approve", "--timeout", "25",
                               env={"RECONCILE_SANDBOX_SPEED": "100000"})
        in_import = pool.submit(imported, "import", "--all")
        exports = run.many(["challenges", "blog", "--format", "zone"], ["csr", "unsigned", "--out", "exports"])
        assert [e.returncode for e in exports] == [0, 0], [e.stderr for e in exports]
        assert in_import.result().returncode == 0, in_import.result().stderr
        assert in_local.result().returncode == 0, in_local.result().stdout + in_local.result().stderr
    assert list((repo / "exports").glob("unsigned.*.csr.pem"))
    confirmed = run("challenges", "blog", "--confirm-published")  # the manual publisher's person
    assert confirmed.returncode == 0, confirmed.stderr
    again = run("apply", "--auto-approve", "--timeout", "25")
    assert again.returncode == 3, again.stdout + again.stderr  # blog acknowledged now; unsigned still waits

    for artefact in ("plan.json", "state/reconcile-state.json", "state/reconcile-state/blog.json", "state/reconcile-state/blog.json.backup",
                     "state/challenges/blog.json", "state/challenges/blog.zone", "hook-env.json",
                     "state/csr/shop.rsa.csr.pem", "state/csr/unsigned.ecdsa.csr.pem"):
        assert (repo / artefact).is_file(), artefact  # each artefact class really was produced
    # The server really saw the traffic; how many polls depends on timing (46-52 measured on a
    # loaded 2-core machine, the creates and input updates alone are over 15).
    assert len(server.requests()) > 40
    # What reached CPS besides the signature: every path and query (bodies are in its data file).
    sent = {"sandbox request log": json.dumps(server.requests())}
    findings = (run.scan(CANARY, imported.repo, local.repo, exclude=(local.repo / ".reconcile/sandbox/.edgerc",))
                + scan_for_secrets(CANARY, texts={**imported.outputs, **local.outputs, **sent}))
    assert not findings, "\n".join(map(str, findings))


DEBUG_LOGGERS = ("", "reconciler", "reconciler.cps", "reconciler.apply", "httpx", "httpcore", "akamai",
                 "akamai.edgegrid", "akamai.edgegrid.edgegrid", "akamai.edgegrid.edgerc", "urllib3",
                 "asyncio", "filelock", "uvicorn", "uvicorn.error")


def _debug_everything(caplog: pytest.LogCaptureFixture) -> None:
    for name in DEBUG_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)


def _exception_texts(exc: BaseException) -> dict[str, str]:
    """Everything an exception shows: str, repr, the formatted traceback, its attributes."""
    return {"str": str(exc), "repr": repr(exc), "args": repr(exc.args),
            "traceback": "".join(traceback.format_exception(exc)), "attributes": repr(vars(exc))}


def test_in_process_cli_with_every_logger_at_debug_leaks_no_credential(
        canary_server: SandboxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same process as the CLI: what the log records (incl. edgegrid-python's and httpcore's
    DEBUG records, which the CLI's -vv would not change here) and what click prints."""
    server = canary_server
    repo = tmp_path / "repo"
    write_repo(repo, "ctr_1-INPROC", [dv_hook("www", "www.inproc.example.com"),
                                      third_party("shop", "shop.inproc.example.com", QUICK_SIGNER)])
    _debug_everything(caplog)
    monkeypatch.chdir(repo)
    env = {"AKAMAI_EDGERC": str(server.edgerc), "AKAMAI_EDGERC_SECTION": "sandbox",
           "RECONCILE_CA_BUNDLE": server.ca_bundle, "RECONCILE_POLL_INTERVAL": "0.02"}
    runner = CliRunner()
    texts: dict[str, str] = {}
    for args in (["plan", "--format", "markdown"], ["plan", "--format", "json"],
                 ["apply", "--auto-approve", "--timeout", "25"], ["status"], ["status", "--format", "json"],
                 ["plan", "--detailed-exitcode"]):
        result = runner.invoke(reconcile, ["--no-color", "-vv", "--account-switch-key", SWITCH_KEY, *args], env=env)
        label = " ".join(args)
        texts[f"stdout of {label}"], texts[f"stderr of {label}"] = result.stdout, result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            texts.update({f"{label} {k}": v for k, v in _exception_texts(result.exception).items()})
        assert result.exit_code == 0, result.output + result.stderr
    texts["log records"] = caplog.text
    texts["raw log messages"] = "\n".join(f"{r.msg!r} {r.args!r}" for r in caplog.records)
    assert "cps GET /cps/v2/enrollments" in caplog.text and "httpcore" in caplog.text
    assert "Apply complete: 2 done." in texts["stdout of apply --auto-approve --timeout 25"]
    assert any(quote(SWITCH_KEY) in r["query"] for r in server.requests())  # it was really sent
    findings = scan_for_secrets({**CANARY, "account_switch_key": SWITCH_KEY}, texts=texts, paths=[repo])
    assert not findings, "\n".join(map(str, findings))


def _wrong_edgerc(tmp: Path, server: SandboxServer) -> Path:
    edgerc = tmp / "wrong.edgerc"
    edgerc.write_text(f"[sandbox]\nhost = {server.credentials.host}\nclient_token = {CANARY['client_token']}\n"
                      f"client_secret = {WRONG_SECRET}\naccess_token = {CANARY['access_token']}\n")
    edgerc.chmod(0o600)
    return edgerc


def _broken_edgerc(tmp: Path) -> Path:
    # A token on a line configparser cannot parse: its error message quotes that line.
    edgerc = tmp / "broken.edgerc"
    edgerc.write_text(f"[sandbox]\nhost = h.example\nclient_token = {CANARY['client_token']}\n"
                      f"client_secret = {CANARY['client_secret']}\n{CANARY['access_token']}\n")
    edgerc.chmod(0o644)  # loose permissions too: the warning names the file, not its contents
    return edgerc


def test_cli_error_paths_leak_no_credential(canary_server: SandboxServer, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """401 from a wrong secret (a -vv subprocess), an unparseable .edgerc with loose permissions and
    503 until the retries run out (in process, every logger at DEBUG): each exits 1 saying what
    went wrong, and nothing printed or logged holds a credential; so does a TLS refusal (a CA
    bundle that does not hold the sandbox's CA), sent once and never retried."""
    server = canary_server
    repo = tmp_path / "repo"
    write_repo(repo, "ctr_1-ERRORS", [dv_hook("www", "www.errors.example.com")])
    run = Runs(server, repo, tmp_path)
    wrong, broken = _wrong_edgerc(tmp_path, server), _broken_edgerc(tmp_path)
    refused = run("--edgerc", str(wrong), "plan")
    assert refused.returncode == 1 and "401" in refused.stderr, refused.stderr

    _debug_everything(caplog)
    monkeypatch.chdir(repo)
    env = {"AKAMAI_EDGERC": str(server.edgerc), "AKAMAI_EDGERC_SECTION": "sandbox",
           "RECONCILE_CA_BUNDLE": server.ca_bundle}
    runner = CliRunner()
    unparsed = runner.invoke(reconcile, ["--no-color", "-vv", "--edgerc", str(broken), "plan"], env=env)
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_text(CertificateAuthority("Not the sandbox").root_pem)
    untrusted = runner.invoke(reconcile, ["--no-color", "-vv", "plan"], env={**env, "RECONCILE_CA_BUNDLE": str(other_ca)})
    assert untrusted.exit_code == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr, untrusted.stderr
    assert "cps retry" not in caplog.text  # refused once: verification fails the same way every time
    server.set_faults(rules=[{"path": "/cps/v2/enrollments", "method": "GET", "status": 503, "retry_after": 0}])
    try:
        exhausted = runner.invoke(reconcile, ["--no-color", "-vv", "apply", "--auto-approve"], env=env)
    finally:
        server.clear_faults()
    assert unparsed.exit_code == 1 and "not a valid .edgerc file" in unparsed.stderr, unparsed.stderr
    assert "accessible by group or others" in caplog.text
    assert exhausted.exit_code == 1 and "503" in exhausted.stderr, exhausted.stderr
    assert caplog.text.count("-> 503 attempt=") == RetryPolicy().attempts  # the retries ran (and were logged)
    texts = {**run.outputs, "log records": caplog.text}
    for name, result in (("broken .edgerc", unparsed), ("untrusted CA", untrusted), ("503", exhausted)):
        texts.update({f"stdout of {name}": result.stdout, f"stderr of {name}": result.stderr})
    findings = scan_for_secrets({**CANARY, "wrong_secret": WRONG_SECRET}, texts=texts,
                                paths=[repo, run.tmpdir], exclude=(wrong, broken))
    assert not findings, "\n".join(map(str, findings))


@pytest.mark.anyio
async def test_client_exceptions_and_debug_logs_hold_no_credential(canary_server: SandboxServer,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """What a library user sees: AuthenticationError, a read timeout, 503 after retries and a TLS
    refusal, as str/repr/traceback/attributes, plus every DEBUG record on the way."""
    server = canary_server
    _debug_everything(caplog)
    fast = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.01)
    wrong = Credentials(host=server.credentials.host, client_token=CANARY["client_token"],
                        client_secret=WRONG_SECRET, access_token=CANARY["access_token"])
    texts: dict[str, str] = {}
    cases: list[tuple[str, Credentials, str | bool, type[Exception]]] = [
        ("401", wrong, server.ca_bundle, AuthenticationError),
        ("timeout", server.credentials, server.ca_bundle, TransportError),
        ("503", server.credentials, server.ca_bundle, CpsApiError),
        ("tls", server.credentials, True, TransportError)]
    for name, credentials, verify, expected in cases:
        server.clear_faults()
        if name == "timeout":
            server.set_faults(latency=[{"path": "/cps/v2/enrollments", "ms": 700}])
        if name == "503":
            server.set_faults(rules=[{"path": "/cps/v2/enrollments", "status": 503}])
        async with CpsClient(credentials, base_url=server.base_url, verify=verify, timeout=0.3,
                             retry=fast) as client:
            with pytest.raises(expected) as raised:
                await client.list_enrollments("ctr_1-LIB")
            texts.update({f"{name} {k}": v for k, v in _exception_texts(raised.value).items()})
            texts[f"{name} client repr"] = repr(client)
    server.clear_faults()
    texts["log records"] = caplog.text
    assert "503" in texts["503 str"] and "within 0.3s" in texts["timeout str"]
    findings = scan_for_secrets({**CANARY, "wrong_secret": WRONG_SECRET}, texts=texts)
    assert not findings, "\n".join(map(str, findings))
