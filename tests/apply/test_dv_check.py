"""Publish, verify, then acknowledge: the DV step with the propagation check, against the real
sandbox (in process) and real BIND nameservers."""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.apply.propagation import ChallengeChecker, DnsCheckSettings, HttpCheckSettings
from reconciler.apply.publishers import PublisherFactory
from reconciler.apply.publishers.hook import HookPublisher
from reconciler.apply.publishers.ledger import ChallengeLedger
from reconciler.apply.publishers.manual import ManualPublisher
from reconciler.apply.publishers.rfc2136 import Rfc2136Publisher, Rfc2136Settings
from reconciler.apply.workflow import EnrollmentWorkflow

from .conftest import BindServer
from .sandbox_rig import Rig, dv_spec, sandbox_rig

pytestmark = pytest.mark.anyio

ACK = "lets-encrypt-challenges-completed"


def acks(rig: Rig) -> list[dict[str, object]]:
    return [r for r in rig.app.runtime.requests if r["method"] == "POST" and str(r["path"]).endswith(ACK)]


def rfc2136(server: BindServer) -> Rfc2136Publisher:
    return Rfc2136Publisher(Rfc2136Settings(server=server.address, port=server.port, zone=server.zone,
                                            tsig_key_name=server.key_name, tsig_secret_env="TSIG"),
                            environ={"TSIG": server.secret})


def checker(*servers: BindServer, timeout: float = 20.0) -> ChallengeChecker:
    return ChallengeChecker(DnsCheckSettings(nameservers=tuple(s.where for s in servers), timeout=timeout,
                                             interval=0.05, query_timeout=1.0))


async def test_apply_waits_until_both_nameservers_serve_the_records(tmp_path: Path,
                                                                    bind_pair: tuple[BindServer, BindServer]) -> None:
    primary, secondary = bind_pair
    async with sandbox_rig(tmp_path) as rig:
        spec = dv_spec(cn="www.example.test", sans=("example.test",))
        eid, cid = await rig.create(spec)
        acked_before_transfer: list[int] = []

        def on_step(name: str, step: str, detail: str) -> None:
            rig.steps.append((name, step, detail))
            if detail.startswith("waiting for") and not acked_before_transfer:
                acked_before_transfer.append(len(acks(rig)))
                secondary.notify()  # the zone transfer arrives while apply waits

        ctx = rig.context(spec, publisher=rfc2136(primary), checker=checker(primary, secondary))
        ctx.report = on_step
        outcome = await EnrollmentWorkflow(ctx, eid, cid).run()
        assert outcome.status == "done", outcome
        assert acked_before_transfer == [0]  # nothing acknowledged while ns2 lagged
        assert len(acks(rig)) == 1
        waits = [d for _, s, d in rig.steps if s == "check DV challenges" and d.startswith("waiting")]
        assert waits[0].startswith("waiting for 1/2 nameservers to serve _acme-challenge.")
        steps = [s for _, s, _ in rig.steps]
        assert steps.index("publish DV challenges") < steps.index("check DV challenges") \
            < steps.index("acknowledge DV challenges")
        ledger = ChallengeLedger(tmp_path / "state" / "challenges", "www").read()
        assert ledger is not None and ledger.verified is True and ledger.cleaned_up
        assert primary.txt_values("_acme-challenge.www.example.test.") == set()  # removed after validation


async def test_hook_that_publishes_nowhere_is_never_acknowledged(tmp_path: Path, bind_server: BindServer) -> None:
    async with sandbox_rig(tmp_path) as rig:
        spec = dv_spec(cn="www.example.test", sans=("example.test",))
        eid, cid = await rig.create(spec)
        silent = HookPublisher("true", None, cwd=tmp_path)  # exits 0, publishes nothing
        first = await EnrollmentWorkflow(rig.context(spec, publisher=silent, checker=checker(bind_server, timeout=0.3)),
                                         eid, cid).run()
        assert first.status == "waiting", first
        assert "_acme-challenge.www.example.test" in first.message and "_acme-challenge.example.test" in first.message
        assert "not acknowledged" in first.message
        details = "\n".join(first.details)
        assert f"_acme-challenge.www.example.test.: not served by 1 of 1 nameserver(s): {bind_server.where}" in details
        assert "reconcile challenges www --check" in details
        assert acks(rig) == []
        ledger = ChallengeLedger(tmp_path / "state" / "challenges", "www")
        entry = ledger.read()
        assert entry is not None and entry.published and entry.verified is False

        # The person publishes the records (here: RFC 2136 into BIND); the next apply finishes.
        assert (await rfc2136(bind_server).publish(list(entry.records))).ready
        second = await EnrollmentWorkflow(rig.context(spec, publisher=silent, checker=checker(bind_server)),
                                          eid, cid).run()
        assert second.status == "done", second
        assert len(acks(rig)) == 1


async def test_manual_publisher_with_check_looks_once_then_acknowledges_what_is_served(
        tmp_path: Path, bind_server: BindServer) -> None:
    async with sandbox_rig(tmp_path) as rig:
        spec = dv_spec(cn="www.example.test", sans=())
        eid, cid = await rig.create(spec)
        ledger = ChallengeLedger(tmp_path / "state" / "challenges", "www")

        def manual(run: str) -> ManualPublisher:
            return ManualPublisher(ledger, run, confirmation_required=False)

        first = await EnrollmentWorkflow(rig.context(spec, publisher=manual("r1"), run_id="r1",
                                                     checker=checker(bind_server)), eid, cid).run()
        assert first.status == "waiting" and "DNS publication" in first.message
        # A later run (a CI push) while nobody published: one look, no 20 s wait, no acknowledgement.
        started = asyncio.get_running_loop().time()
        second = await EnrollmentWorkflow(rig.context(spec, publisher=manual("r2"), run_id="r2",
                                                      checker=checker(bind_server)), eid, cid).run()
        assert second.status == "waiting" and "not acknowledged" in second.message
        assert asyncio.get_running_loop().time() - started < 10
        assert acks(rig) == []
        entry = ledger.read()
        assert entry is not None
        await rfc2136(bind_server).publish(list(entry.records))
        third = await EnrollmentWorkflow(rig.context(spec, publisher=manual("r3"), run_id="r3",
                                                     checker=checker(bind_server)), eid, cid).run()
        assert third.status == "done", third
        assert len(acks(rig)) == 1


# -- who checks by default ------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "kwargs", "real"), [
    ("akab-x.luna.akamaiapis.net", {}, True),
    ("127.0.0.1:8443", {}, False),  # `reconcile sandbox`
    ("akab-x.luna.akamaiapis.net", {"transport": "in-process"}, False),  # `--sandbox`
])
async def test_check_is_on_by_default_only_against_akamai(tmp_path: Path, host: str, kwargs: dict[str, Any],
                                                          real: bool) -> None:
    from reconciler.cps.auth import Credentials
    from reconciler.cps.client import CpsClient
    from reconciler.sandbox.app import create_app
    from reconciler.sandbox.config import SandboxConfig

    if kwargs.get("transport") == "in-process":
        kwargs = {"transport": httpx.ASGITransport(app=create_app(SandboxConfig()))}
    creds = Credentials(host=host, client_token="t", client_secret="s", access_token="a")
    async with CpsClient(creds, **kwargs) as client:
        assert client.real_cps is real
        factory = PublisherFactory(root=tmp_path, state_dir=tmp_path / "state", run_id="r",
                                   check_by_default=client.real_cps)
    default, off, on = (dv_spec(validation={"publisher": "manual", **extra})
                        for extra in ({}, {"check": False}, {"check": True}))
    assert (factory.checker_for(default) is not None) is real
    assert factory.checker_for(off) is None and factory.checker_for(on) is not None
    manual, checked = factory.for_spec(default), factory.for_spec(on)
    assert isinstance(manual, ManualPublisher) and manual.confirmation_required is not real
    assert isinstance(checked, ManualPublisher) and not checked.confirmation_required


# -- http-01 ---------------------------------------------------------------------------------------

class _QuietFiles(SimpleHTTPRequestHandler):
    """A plain static web server (the web root a real http-01 hook writes into), without access logs."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


async def test_http01_token_served_by_a_real_web_server_is_checked_then_acknowledged(tmp_path: Path) -> None:
    webroot = tmp_path / "webroot"
    (webroot / ".well-known" / "acme-challenge").mkdir(parents=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(webroot)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        web = ChallengeChecker(http_settings=HttpCheckSettings(connect_to=f"127.0.0.1:{server.server_address[1]}",
                                                               timeout=0.3, interval=0.05))
        async with sandbox_rig(tmp_path) as rig:
            spec = dv_spec(validation={"method": "http-01", "publisher": "hook", "hook": {"publish": "true"}})
            eid, cid = await rig.create(spec)
            nowhere = HookPublisher("true", None, cwd=tmp_path)
            first = await EnrollmentWorkflow(rig.context(spec, publisher=nowhere, checker=web), eid, cid).run()
            assert first.status == "waiting" and "not acknowledged" in first.message, first
            assert "http://www.example.com/.well-known/acme-challenge/" in first.message
            assert "HTTP 404" in "\n".join(first.details) and acks(rig) == []
            # A hook that writes the token into the web root, as a real http-01 hook would.
            writer = HookPublisher(f'printf %s "$RECONCILE_RESPONSE_BODY" > "{webroot}/.well-known/acme-challenge/'
                                   '$RECONCILE_TOKEN"', None, cwd=tmp_path)
            second = await EnrollmentWorkflow(rig.context(spec, publisher=writer, checker=web), eid, cid).run()
            assert second.status == "done", second
            assert len(acks(rig)) == 1
    finally:
        server.shutdown()
        server.server_close()
