"""End-to-end tests of `reconcile apply`: a repository on disk, the CLI as a real subprocess
talking HTTPS to a SandboxServer, and a pump that moves the sandbox's virtual clock while the
CLI runs (CPS hours pass in a fraction of a second; nothing sleeps real minutes)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509

from reconciler.apply.thirdparty import pem_fingerprint
from reconciler.config import load_config
from reconciler.cps.auth import EdgeGridAuth
from reconciler.cps.client import CpsClient
from reconciler.plan.pipeline import build_plan
from reconciler.plan.planner import PlanOptions
from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.faults import FaultRule
from reconciler.sandbox.quirks import quirk_rules
from reconciler.sandbox.testing import SandboxServer
from reconciler.spec.loader import load_specs
from reconciler.state.backends import open_store
from tests.secretscan import SecretScan, scan_for_secrets, secrets_of

PERSON = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1 555 0100"}
ORG = {"name": "Example Org", "phone": "+1 555 0100", "address_line_one": "1 Main St", "city": "Cambridge",
       "region": "MA", "postal_code": "02142", "country_code": "US"}
# Appends "domain record-name value" per published challenge (the hook publisher's env contract),
# and publishes the record where the test's sandbox looks (its zone file, RECONCILE_SANDBOX_ZONE_FILE).
HOOK = (f"{sys.executable} -c \"import os; e = os.environ; open('published.txt', 'a').write(' '.join(e[k] for k in "
        "('RECONCILE_DOMAIN', 'RECONCILE_RECORD_NAME', 'RECONCILE_RECORD_VALUE')) + '\\n'); "
        "z = e.get('RECONCILE_SANDBOX_ZONE_FILE'); "
        "z and open(z, 'a').write(e['RECONCILE_RECORD_NAME'] + ' TXT ' + e['RECONCILE_RECORD_VALUE'] + '\\n')\"")
SIGNER = f"{sys.executable} -m reconciler sandbox-sign"
# A lighter stand-in for the customer's CA (no CLI start-up), for tests that sign many CSRs.
QUICK_SIGNER = (
    f"{sys.executable} -c \"import os, json, pathlib; "
    "from reconciler.sandbox.ca import CertificateAuthority as CA; "
    "p = pathlib.Path('quick-ca.json'); "
    "ca = CA.from_json(json.loads(p.read_text())) if p.exists() else CA('Quick'); "
    "p.write_text(json.dumps(ca.to_json())); "
    "leaf, chain = ca.sign_csr(open(os.environ['RECONCILE_CSR_FILE']).read()); "
    "open(os.environ['RECONCILE_CERT_FILE'], 'w').write(leaf); "
    "open(os.environ['RECONCILE_CHAIN_FILE'], 'w').write(chain)\""
)


class ClockPump:
    """Advances the sandbox clock by ``step`` virtual seconds every ``interval`` real seconds."""

    def __init__(self, server: SandboxServer, step: float = 600.0, interval: float = 0.005) -> None:
        self.server = server
        self.step = step
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.server.advance(self.step)

    def __enter__(self) -> ClockPump:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def write_repo(root: Path, contract: str, specs: list[dict[str, Any]], state: dict[str, str] | None = None) -> None:
    """A repository in ``root``; ``state`` is reconcile.yaml's ``state:`` block (default: the file backend)."""
    root.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "default_contract": contract,
        "defaults": {"admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG},
    }
    if state is not None:
        config["state"] = state
    (root / "reconcile.yaml").write_text(yaml.safe_dump(config))
    specs_dir = root / "specs"
    specs_dir.mkdir(exist_ok=True)
    for old in specs_dir.glob("*.yaml"):
        old.unlink()
    for spec in specs:
        (specs_dir / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec))


def dv_hook(name: str, domain: str, sans: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "type": "dv", "common_name": domain, "sans": sans or [domain],
            "validation": {"method": "dns-01", "publisher": "hook", "hook": {"publish": HOOK}}}


def dv_manual(name: str, domain: str) -> dict[str, Any]:
    return {"name": name, "type": "dv", "common_name": domain, "sans": [domain],
            "validation": {"method": "dns-01", "publisher": "manual"}}


def third_party(name: str, domain: str, signer: str = SIGNER) -> dict[str, Any]:
    return {"name": name, "type": "third-party", "common_name": domain, "sans": [domain, f"pay.{domain}"],
            "dual_stack": True, "signer": {"command": signer}}


def cli(server: SandboxServer, root: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``reconcile --no-color ARGS`` in ``root`` against ``server`` (real HTTPS, real EdgeGrid)."""
    full_env = {**os.environ, "AKAMAI_EDGERC": str(server.edgerc), "AKAMAI_EDGERC_SECTION": "sandbox",
                "RECONCILE_CA_BUNDLE": server.ca_bundle, "RECONCILE_POLL_INTERVAL": "0.02",
                "RECONCILE_SANDBOX_ZONE_FILE": str(server.zone_file), **(env or {})}
    return subprocess.run([sys.executable, "-m", "reconciler", "--no-color", *args], cwd=root, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def state_of(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = open_store(load_config(root / "reconcile.yaml")).read().model_dump(mode="json")
    return data


def production_names(server: SandboxServer, eid: int) -> list[set[str]]:
    with httpx.Client(base_url=server.base_url, auth=EdgeGridAuth(server.credentials),
                      verify=ssl.create_default_context(cafile=server.ca_bundle)) as http:
        body = http.get(f"/cps/v2/enrollments/{eid}/deployments/production",
                        headers={"Accept": "application/vnd.akamai.cps.deployment.v8+json"}).json()
    certs = [body["primaryCertificate"], *body.get("multiStackedCertificates", [])]
    names = []
    for cert in certs:
        parsed = x509.load_pem_x509_certificate(cert["certificate"].encode())
        san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names.append(set(san.get_values_for_type(x509.DNSName)))
    return names


def test_dv_hook_and_dual_stack_third_party_deploy_in_one_apply(sandbox_server: SandboxServer,
                                                                 tmp_path: Path, secret_scan: SecretScan) -> None:
    server, repo = sandbox_server, tmp_path / "repo"
    secret_scan.add_secrets(server.credentials)
    secret_scan.add_path(repo)  # state, backup, CSRs, certificates, hook output: checked at teardown
    write_repo(repo, "ctr_1-E2E", [dv_hook("www", "www.example.com", ["www.example.com", "example.com"]),
                                   third_party("shop", "shop.example.com")])
    with ClockPump(server, step=1800.0):
        applied = cli(server, repo, "apply", "--auto-approve", "--timeout", "25")
        secret_scan.add_text("apply", applied.stdout + applied.stderr)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "Apply complete: 2 done." in applied.stdout
        assert "shop: upload certificates" in applied.stderr  # plain progress lines without a TTY
        plan = cli(server, repo, "plan", "--detailed-exitcode")
        assert plan.returncode == 0, plan.stdout + plan.stderr

        state = state_of(repo)["entries"]
        assert {n: (e["intent"], e["change"]) for n, e in state.items()} == {"www": (None, None), "shop": (None, None)}
        assert set(state["shop"]["certificate_fingerprints"]) == {"rsa", "ecdsa"}
        for alg in ("rsa", "ecdsa"):
            assert (repo / "state" / "csr" / f"shop.{alg}.csr.pem").exists()
            assert (repo / "certs" / "shop" / f"{alg}.pem").exists()  # written by `reconcile sandbox-sign`
        assert (repo / ".reconcile" / "test-ca" / "root.pem").exists()
        assert production_names(server, state["www"]["enrollment_id"]) == [{"www.example.com", "example.com"}]
        assert len(production_names(server, state["shop"]["enrollment_id"])) == 2

        # A SAN change re-validates (the new name is published) and redeploys.
        write_repo(repo, "ctr_1-E2E", [dv_hook("www", "www.example.com",
                                               ["www.example.com", "example.com", "api.example.com"]),
                                       third_party("shop", "shop.example.com")])
        again = cli(server, repo, "apply", "--auto-approve", "--timeout", "25")
        secret_scan.add_text("second apply", again.stdout + again.stderr)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "www: update (spec-changed)" in again.stdout, again.stdout
        published = [line.split()[0] for line in (repo / "published.txt").read_text().splitlines()]
        assert "api.example.com" in published
        assert production_names(server, state["www"]["enrollment_id"]) == [
            {"www.example.com", "example.com", "api.example.com"}]
        assert cli(server, repo, "plan", "--detailed-exitcode").returncode == 0


def test_apply_converges_with_production_quirks_on(tmp_path: Path) -> None:
    """Issue 23: every input update answered 204 with no body, ids and change-management booleans
    as strings; DV (with pre- and post-verification warnings) and dual-stack third-party (with
    change management) still converge in one apply, and the next plan is empty."""
    quirks = [FaultRule.from_json(rule) for rule in quirk_rules()]
    engine = EngineConfig(pre_verification_warnings=True, post_verification_warnings=True)
    with SandboxServer(engine=engine, faults=quirks) as server, ClockPump(server, step=1800.0):
        repo = tmp_path / "repo"
        # Published in the sandbox's own Edge DNS, where it looks (validation by looking, the default).
        www = {"name": "www", "type": "dv", "common_name": "www.example.com", "sans": ["www.example.com", "example.com"],
               "validation": {"method": "dns-01", "publisher": "edgedns", "edgedns": {"zone": "example.com"}},
               "acknowledge_pre_verification_warnings": True, "acknowledge_post_verification_warnings": True}
        shop = {**third_party("shop", "shop.example.com", QUICK_SIGNER), "change_management": True,
                "acknowledge_change_management": True, "acknowledge_pre_verification_warnings": True}
        write_repo(repo, "ctr_1-QUIRKS", [www, shop])
        applied = cli(server, repo, "apply", "--auto-approve", "--timeout", "25")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "Apply complete: 2 done." in applied.stdout, applied.stdout
        state = state_of(repo)["entries"]
        assert production_names(server, state["www"]["enrollment_id"]) == [{"www.example.com", "example.com"}]
        assert len(production_names(server, state["shop"]["enrollment_id"])) == 2
        emptied = {r["path"].rsplit("/", 1)[-1] for r in server.requests() if r["fault"] == "empty"}
        assert emptied >= {"pre-verification-warnings-ack", "post-verification-warnings-ack",
                           "third-party-cert-and-trust-chain", "change-management-ack"}, emptied
        assert any(r["fault"] == "loose" and r["path"].endswith("change-management-info") for r in server.requests())
        assert cli(server, repo, "plan", "--detailed-exitcode").returncode == 0
        # Production's request limits were on the whole time; our traffic never met them.
        assert not [r for r in server.requests() if r["status"] == 429]


def test_manual_dv_waits_then_finishes_once_published(tmp_path: Path, secret_scan: SecretScan) -> None:
    # Validation policy "dns": the sandbox checks the TXT records in its Edge DNS, so the test's
    # publication is what makes the second apply succeed.
    with SandboxServer(engine=EngineConfig(validation_policy="dns")) as server, ClockPump(server):
        repo = tmp_path / "repo"
        secret_scan.add_secrets(server.credentials)
        secret_scan.add_path(repo)  # the challenge ledger and zone snippet included
        write_repo(repo, "ctr_1-MANUAL", [dv_manual("blog", "blog.example.com")])
        first = cli(server, repo, "apply", "--auto-approve", "--timeout", "25")
        secret_scan.add_text("first apply", first.stdout + first.stderr)
        assert first.returncode == 3, first.stdout + first.stderr
        assert "waiting for DNS publication of 1 challenge(s)" in first.stdout
        ledger = json.loads((repo / "state" / "challenges" / "blog.json").read_text())
        zone = (repo / "state" / "challenges" / "blog.zone").read_text()
        (challenge,) = ledger["challenges"]
        assert f'{challenge["record_name"]}\t60\tIN\tTXT\t"{challenge["value"]}"' in zone

        name = challenge["record_name"].rstrip(".")
        with httpx.Client(base_url=server.base_url, auth=EdgeGridAuth(server.credentials),
                          verify=ssl.create_default_context(cafile=server.ca_bundle)) as http:
            created = http.post(f"/config-dns/v2/zones/example.com/names/{name}/types/TXT",
                                json={"name": name, "type": "TXT", "ttl": 60, "rdata": [f'"{challenge["value"]}"']})
            assert created.status_code == 201, created.text
        # No propagation check against a sandbox: the person's word is what lets apply go on.
        confirmed = cli(server, repo, "challenges", "blog", "--confirm-published")
        assert confirmed.returncode == 0, confirmed.stderr
        second = cli(server, repo, "apply", "--auto-approve", "--timeout", "25")
        secret_scan.add_text("second apply", second.stdout + second.stderr)
        assert second.returncode == 0, second.stdout + second.stderr
        # Either this apply acknowledged and followed it to production, or CPS (which also checks
        # on its own) got there first and the apply found nothing left to do; both end deployed.
        assert "blog: done - deployed" in second.stdout or "No changes" in second.stdout, second.stdout
        eid = state_of(repo)["entries"]["blog"]["enrollment_id"]
        assert production_names(server, eid) == [{"blog.example.com"}]
        assert state_of(repo)["entries"]["blog"]["change"] is None
        assert cli(server, repo, "plan", "--detailed-exitcode").returncode == 0


# -- crash-resume --------------------------------------------------------------------------------

# Boundary -> the specs whose workflow passes it (only what the boundary needs keeps this fast; at
# create:posted both run, so the other enrollment dies at whatever point it had reached).
CREATE_BOUNDARIES = {
    "create:intent": ("www",), "create:posted": ("www", "shop"), "create:saved": ("shop",),
    "challenges:published": ("www",), "challenges:acknowledged": ("www",),
    "upload:intent": ("shop",), "upload:posted": ("shop",), "upload:saved": ("shop",),
    "change-management:acknowledged": ("shop",), "deployed": ("www",),
}
UPDATE_BOUNDARIES = {"update:posted": ("www",), "warnings:acknowledged": ("www",)}


def crash_specs(tag: str, names: tuple[str, ...], *, shrink: bool = False) -> list[dict[str, Any]]:
    www = dv_hook("www", f"www.{tag}.example.com",
                  [f"www.{tag}.example.com"] + ([] if shrink else [f"old.{tag}.example.com"]))
    www["acknowledge_pre_verification_warnings"] = True  # removing a SAN raises a warning to acknowledge
    shop = third_party("shop", f"shop.{tag}.example.com", QUICK_SIGNER)
    shop.update(change_management=True, acknowledge_change_management=True)
    return [spec for spec in (www, shop) if spec["name"] in names]


async def _converged(server: SandboxServer, repo: Path, contract: str, count: int) -> list[str]:
    """Problems with the repo's state after the rerun (empty: converged)."""
    problems: list[str] = []
    config = load_config(repo / "reconcile.yaml")
    store = open_store(config)
    state = store.read()
    async with CpsClient(server.credentials, base_url=server.base_url, verify=server.ca_bundle) as client:
        listed = await client.list_enrollments(contract)
        cns = sorted(e.csr.cn for e in listed if e.csr)
        wanted = sorted(e.common_name for e in state.entries.values())
        if cns != wanted or len(state.entries) != count:
            problems.append(f"enrollments {cns} vs state {wanted}")
        by_cn = {e.csr.cn: e.enrollment_id for e in listed if e.csr}
        for name, entry in state.entries.items():
            if entry.intent is not None or entry.change is not None or entry.spec_hash is None:
                problems.append(f"{name}: state not settled: {entry.model_dump(mode='json')}")
            if by_cn.get(entry.common_name) != entry.enrollment_id:
                problems.append(f"{name}: state id {entry.enrollment_id}, CPS id {by_cn.get(entry.common_name)}")
        shop = state.entries.get("shop")
        if shop is not None and shop.enrollment_id is not None:
            production = await client.get_production_deployment(shop.enrollment_id)
            served = {pem_fingerprint(c.certificate) for c in production.certificates if c.certificate} \
                if production else set()
            if served != set(shop.certificate_fingerprints.values()):
                problems.append(f"shop: production serves {served}, state says {shop.certificate_fingerprints}")
        plan = (await build_plan(load_specs(config), state, client, PlanOptions())).plan
        if plan.has_changes or plan.actions:
            problems.append(f"plan after rerun not empty: {[(a.name, a.kind) for a in plan.actions]}")
    return problems


def _crash_case(server: SandboxServer, root: Path, index: int, boundary: str, names: tuple[str, ...],
                update: bool, state: dict[str, str] | None = None) -> list[str]:
    tag = f"k{index}"
    contract = f"ctr_1-KILL{index}"
    repo = root / tag
    write_repo(repo, contract, crash_specs(tag, names), state)
    if update:
        first = cli(server, repo, "apply", "--auto-approve", "--timeout", "25")
        if first.returncode != 0:
            return [f"{boundary}: first apply failed: {first.stdout}{first.stderr}"]
        write_repo(repo, contract, crash_specs(tag, names, shrink=True), state)
    killed = cli(server, repo, "apply", "--auto-approve", "--timeout", "25", env={"RECONCILE_TEST_KILL_AT": boundary})
    if killed.returncode != -signal.SIGKILL:
        return [f"{boundary}: apply was not killed there (exit {killed.returncode}): {killed.stderr[-800:]}"]
    rerun = cli(server, repo, "apply", "--auto-approve", "--timeout", "25")
    if rerun.returncode != 0:
        return [f"{boundary}: rerun exit {rerun.returncode}: {rerun.stdout[-1500:]}{rerun.stderr[-800:]}"]
    problems = asyncio.run(_converged(server, repo, contract, len(names)))
    ids = {e["enrollment_id"] for e in state_of(repo)["entries"].values()}
    uploads = [r for r in server.requests() if r["method"] == "POST" and r["status"] == 200
               and r["path"].endswith("/third-party-cert-and-trust-chain")
               and any(f"/enrollments/{i}/" in r["path"] for i in ids)]
    if len(uploads) != (1 if "shop" in names else 0):
        problems.append(f"{len(uploads)} accepted uploads (expected exactly one)")
    problems += [f"credential leaked: {finding}" for finding in scan_for_secrets(
        secrets_of(server.credentials), texts=[killed.stdout, killed.stderr, rerun.stdout, rerun.stderr], paths=[repo])]
    return [f"{boundary}: {p}" for p in problems]


@pytest.fixture(scope="module")
def crash_server() -> Iterator[SandboxServer]:
    # Virtual time runs 20000x on its own: a CPS hour passes in 0.18 s of real time.
    with SandboxServer(speed=20000, engine=EngineConfig(validation_policy="trust-ack")) as server:
        yield server


@pytest.mark.parametrize("boundaries,update", [(CREATE_BOUNDARIES, False), (UPDATE_BOUNDARIES, True)],
                         ids=["create-flow", "update-flow"])
def test_sigkill_at_each_step_boundary_then_rerun_converges(crash_server: SandboxServer, tmp_path: Path,
                                                            boundaries: dict[str, tuple[str, ...]],
                                                            update: bool) -> None:
    """SIGKILL apply at each boundary in turn (test hook RECONCILE_TEST_KILL_AT), rerun: exactly one
    enrollment per spec, state settled and matching CPS, one upload ever, and an empty plan."""
    offset = 0 if not update else len(CREATE_BOUNDARIES)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(
            lambda ib: _crash_case(crash_server, tmp_path, offset + ib[0], ib[1][0], ib[1][1], update),
            enumerate(boundaries.items())))
    problems = [p for case in results for p in case]
    assert not problems, "\n".join(problems)
