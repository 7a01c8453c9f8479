"""Day two end to end: renewals and deployment windows through the CLI against the sandbox over
HTTPS, moving CPS's (virtual) clock with /_sandbox/advance only."""

from __future__ import annotations

import os
import signal
import ssl
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.apply.thirdparty import pem_fingerprint
from reconciler.sandbox.testing import SandboxServer
from tests.e2e.test_apply_e2e import cli, dv_hook, state_of, third_party, write_repo

pytestmark = pytest.mark.slow

DAY = 86400.0
SIGNER = f"{sys.executable} {Path(__file__).with_name('virtual_signer.py')}"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    # Virtual time runs 20000x on its own: a CPS hour passes in 0.18 s of real time.
    with SandboxServer(speed=20000) as sandbox:
        yield sandbox


def run(server: SandboxServer, repo: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return cli(server, repo, *args, env={"SANDBOX_URL": server.base_url, **(env or {})})


def served(server: SandboxServer, eid: int, network: str = "production") -> set[str]:
    """Fingerprints of the certificates ``network`` serves for ``eid``."""
    with httpx.Client(base_url=server.base_url, verify=ssl.create_default_context(cafile=server.ca_bundle)) as http:
        from reconciler.cps.auth import EdgeGridAuth
        answer = http.get(f"/cps/v2/enrollments/{eid}/deployments/{network}", auth=EdgeGridAuth(server.credentials),
                          headers={"Accept": "application/vnd.akamai.cps.deployment.v8+json"})
    if answer.status_code == 404:
        return set()
    body = answer.json()
    certs = [body.get("primaryCertificate"), *body.get("multiStackedCertificates", [])]
    return {pem_fingerprint(c["certificate"]) for c in certs if c and c.get("certificate")}


def renewing(name: str, domain: str, **renewal: Any) -> dict[str, Any]:
    spec = third_party(name, domain, SIGNER)
    spec["renewal"] = renewal
    return spec


def renewals(server: SandboxServer, eid: int) -> list[dict[str, Any]]:
    return [r for r in server.requests() if r["method"] == "PUT" and r["path"].endswith(f"/enrollments/{eid}")
            and "force-renewal=true" in r["query"] and r["status"] in (200, 202)]


def test_a_dual_stack_certificate_is_renewed_inside_its_window_and_by_a_token_once(server: SandboxServer,
                                                                                     tmp_path: Path) -> None:
    repo, contract = tmp_path / "repo", "ctr_1-RENEW"
    write_repo(repo, contract, [renewing("shop", "shop.rn.example.com", before_expiry="30d")])
    assert run(server, repo, "apply", "--auto-approve", "--timeout", "30").returncode == 0
    eid = state_of(repo)["entries"]["shop"]["enrollment_id"]
    first = served(server, eid)
    assert len(first) == 2 and run(server, repo, "plan", "--detailed-exitcode").returncode == 0

    server.advance(65 * DAY)  # 90-day certificates: 25 days left, inside the 30-day window
    planned = run(server, repo, "plan", "--detailed-exitcode")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "↻ shop: renew (renewal-window)" in planned.stdout
    assert "days left, renewal window 30d): renew" in planned.stdout
    renewed = run(server, repo, "apply", "--auto-approve", "--timeout", "30")
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = served(server, eid)
    assert len(second) == 2 and not second & first  # both new, both old gone
    assert set(state_of(repo)["entries"]["shop"]["certificate_fingerprints"].values()) == second
    assert len(renewals(server, eid)) == 1
    assert run(server, repo, "plan", "--detailed-exitcode").returncode == 0

    write_repo(repo, contract, [renewing("shop", "shop.rn.example.com", before_expiry="30d", token="rotate-1")])
    assert "shop: renew (renewal-token)" in run(server, repo, "plan").stdout
    assert run(server, repo, "apply", "--auto-approve", "--timeout", "30").returncode == 0
    third = served(server, eid)
    assert not third & second and len(renewals(server, eid)) == 2
    again = run(server, repo, "apply", "--auto-approve", "--timeout", "30")
    assert again.returncode == 0 and len(renewals(server, eid)) == 2  # the same token never renews twice
    assert run(server, repo, "plan", "--detailed-exitcode").returncode == 0


def test_cps_renews_dv_by_itself_and_apply_publishes_the_new_challenges(server: SandboxServer,
                                                                       tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_repo(repo, "ctr_1-DVRENEW", [dv_hook("www", "www.dvrn.example.com")])
    assert run(server, repo, "apply", "--auto-approve", "--timeout", "30").returncode == 0
    eid = state_of(repo)["entries"]["www"]["enrollment_id"]
    before = served(server, eid)
    server.advance(72 * DAY)  # CPS opens the renewal 20 days before expiry
    planned = run(server, repo, "plan", "--detailed-exitcode")
    assert planned.returncode == 2 and "www: continue (awaiting-input)" in planned.stdout, planned.stdout
    published = (repo / "published.txt").read_text().count("\n")
    done = run(server, repo, "apply", "--auto-approve", "--timeout", "30")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (repo / "published.txt").read_text().count("\n") > published  # new challenges, through the hook
    after = served(server, eid)
    assert after and not after & before  # a new certificate (new serial) on production
    assert run(server, repo, "plan", "--detailed-exitcode").returncode == 0


def test_a_deploy_window_holds_the_certificate_on_staging_until_it_opens(server: SandboxServer,
                                                                        tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    now = server.now()[:10]
    opens = f"{int(now[:4]) + 1}{now[4:]}"  # a year ahead: nothing reaches production before
    spec = {**renewing("win", "win.rn.example.com"), "deploy_not_before": opens}
    write_repo(repo, "ctr_1-WINDOW", [spec])
    planned = run(server, repo, "plan")
    assert f"deploy window: not before {opens}" in planned.stdout, planned.stdout
    held = run(server, repo, "apply", "--auto-approve", "--no-wait")
    assert held.returncode == 0, held.stdout + held.stderr
    eid = state_of(repo)["entries"]["win"]["enrollment_id"]
    server.advance(3 * DAY)
    assert served(server, eid, "staging") and not served(server, eid)
    server.advance(366 * DAY)
    assert served(server, eid) == served(server, eid, "staging")


def test_an_adopted_enrollment_with_a_renewal_in_flight_is_followed_to_the_end_and_not_renewed_again(
        server: SandboxServer, tmp_path: Path) -> None:
    # Found by a new user: state forgotten (state rm --force) while a token renewal was in flight;
    # the next apply adopts the enrollment, must finish that renewal (it waited for production for
    # an hour: no fingerprints were recorded to recognise the deployment) and must not renew again.
    repo, contract = tmp_path / "repo", "ctr_1-ADOPTRN"
    write_repo(repo, contract, [renewing("shop", "shop.ad.example.com")])
    assert run(server, repo, "apply", "--auto-approve", "--timeout", "30").returncode == 0
    eid = state_of(repo)["entries"]["shop"]["enrollment_id"]
    write_repo(repo, contract, [renewing("shop", "shop.ad.example.com", token="t1")])
    assert run(server, repo, "apply", "--auto-approve", "--no-wait").returncode == 0
    assert run(server, repo, "state", "rm", "shop").returncode == 1  # a change in flight: refused
    assert run(server, repo, "state", "rm", "shop", "--force").returncode == 0
    adopted = run(server, repo, "apply", "--auto-approve", "--timeout", "30")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert "shop: adopt (adopt-existing)" in adopted.stdout and "shop: done" in adopted.stdout
    assert len(renewals(server, eid)) == 1
    assert run(server, repo, "plan", "--detailed-exitcode").returncode == 0


# -- crash-resume of a renewal -------------------------------------------------------------------

# What a renewal adds to the upload path (killed for a create in test_apply_e2e): around its PUT, and
# an upload that lands while apply is dead and the change then finishes without it.
RENEW_BOUNDARIES = tuple(os.environ.get("RENEW_BOUNDARIES", "renew:intent renew:posted upload:posted").split())


def _crash_case(server: SandboxServer, root: Path, index: int, boundary: str) -> list[str]:
    tag, contract = f"rn{index}", f"ctr_1-RNKILL{index}"
    repo = root / tag
    write_repo(repo, contract, [renewing("shop", f"shop.{tag}.example.com", before_expiry="30d")])
    if run(server, repo, "apply", "--auto-approve", "--timeout", "30").returncode != 0:
        return [f"{boundary}: first apply failed"]
    eid = state_of(repo)["entries"]["shop"]["enrollment_id"]
    old = served(server, eid)
    write_repo(repo, contract, [renewing("shop", f"shop.{tag}.example.com", before_expiry="30d", token="kill")])
    killed = run(server, repo, "apply", "--auto-approve", "--timeout", "30", env={"RECONCILE_TEST_KILL_AT": boundary})
    if killed.returncode != -signal.SIGKILL:
        return [f"{boundary}: not killed there (exit {killed.returncode}): {killed.stdout[-500:]}"]
    rerun = run(server, repo, "apply", "--auto-approve", "--timeout", "30")
    if rerun.returncode != 0:
        return [f"{boundary}: rerun exit {rerun.returncode}: {rerun.stdout[-1200:]}{rerun.stderr[-400:]}"]
    problems = []
    if len(renewals(server, eid)) != 1:
        problems.append(f"{len(renewals(server, eid))} renewals accepted (exactly one wanted)")
    uploads = [r for r in server.requests() if r["method"] == "POST" and r["status"] == 200
               and r["path"].startswith(f"/cps/v2/enrollments/{eid}/")
               and r["path"].endswith("/third-party-cert-and-trust-chain")]
    if len(uploads) != 2:
        problems.append(f"{len(uploads)} accepted uploads (one for the create, one for the renewal)")
    now = served(server, eid)
    recorded = set(state_of(repo)["entries"]["shop"]["certificate_fingerprints"].values())
    if not now or now & old or recorded != now:
        problems.append(f"production serves {sorted(now)} (before: {sorted(old)}), state records {sorted(recorded)}; "
                        f"rerun said: {rerun.stdout[-800:]}")
    plan = run(server, repo, "plan", "--detailed-exitcode")
    if plan.returncode != 0:
        problems.append(f"plan after rerun: exit {plan.returncode}: {plan.stdout[-600:]}")
    return [f"{boundary}: {p}" for p in problems]


def test_sigkill_at_each_boundary_of_a_renewal_then_rerun_converges(server: SandboxServer, tmp_path: Path) -> None:
    """Exactly one renewal accepted, exactly one upload for it, the new certificates on production."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda ib: _crash_case(server, tmp_path, ib[0], ib[1]), enumerate(RENEW_BOUNDARIES)))
    problems = [p for case in results for p in case]
    assert not problems, "\n".join(problems)
