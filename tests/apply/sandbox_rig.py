"""A rig for workflow tests: the real sandbox app in process, a real client through EdgeGrid, and a
poll "sleep" that moves the sandbox's virtual clock instead of waiting (so CPS's hours take ms)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from reconciler.apply.context import PollPolicy, WorkflowContext
from reconciler.apply.journal import StateJournal
from reconciler.apply.propagation import ChallengeChecker
from reconciler.apply.publishers.base import Publisher
from reconciler.cps.client import CpsClient
from reconciler.cps.mapping import spec_to_wire
from reconciler.cps.retry import RetryPolicy
from reconciler.sandbox.app import SandboxApp, create_app
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.engine import EngineConfig
from reconciler.spec.models import DvEnrollmentSpec, ThirdPartyEnrollmentSpec
from reconciler.state.store import StateStore

CONTRACT = "ctr_1-TEST"
PERSON = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1 555 0100"}
ORG = {"name": "Example Org", "phone": "+1 555 0100", "address_line_one": "1 Main St", "city": "Cambridge",
       "region": "MA", "postal_code": "02142", "country_code": "US"}
# A signer hook playing the customer's CA with a CA kept in the working directory.
SIGNER = (
    f"{sys.executable} -c \"import os, json, pathlib; "
    "from reconciler.sandbox.ca import CertificateAuthority; "
    "p = pathlib.Path('customer-ca.json'); "
    "ca = CertificateAuthority.from_json(json.loads(p.read_text())) if p.exists() else CertificateAuthority('Customer'); "
    "p.write_text(json.dumps(ca.to_json())); "
    "leaf, chain = ca.sign_csr(open(os.environ['RECONCILE_CSR_FILE']).read()); "
    "open(os.environ['RECONCILE_CERT_FILE'], 'w').write(leaf); "
    "open(os.environ['RECONCILE_CHAIN_FILE'], 'w').write(chain)\""
)


def dv_spec(name: str = "www", cn: str = "www.example.com", sans: tuple[str, ...] = ("example.com",),
            **extra: Any) -> DvEnrollmentSpec:
    data = {"name": name, "type": "dv", "contract_id": CONTRACT, "common_name": cn, "sans": list(sans),
            "admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG, **extra}
    return DvEnrollmentSpec.model_validate(data)


def tp_spec(name: str = "shop", cn: str = "shop.example.com", sans: tuple[str, ...] = ("pay.example.com",),
            **extra: Any) -> ThirdPartyEnrollmentSpec:
    data = {"name": name, "type": "third-party", "contract_id": CONTRACT, "common_name": cn, "sans": list(sans),
            "admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG, **extra}
    return ThirdPartyEnrollmentSpec.model_validate(data)


@dataclass
class Rig:
    """The sandbox app, a client on it, a state store and a clock-moving poll policy."""

    app: SandboxApp
    client: CpsClient
    root: Path
    store: StateStore
    step_seconds: float = 120.0
    steps: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def journal(self) -> StateJournal:
        return StateJournal(self.store)

    async def _advance(self, _seconds: float) -> None:
        self.app.runtime.advance(self.step_seconds)
        await asyncio.sleep(0)

    def poll(self) -> PollPolicy:
        return PollPolicy(initial=1.0, maximum=1.0, jitter=0.0, sleep=self._advance)

    async def create(self, spec: DvEnrollmentSpec | ThirdPartyEnrollmentSpec) -> tuple[int, int]:
        status = await self.client.create_enrollment(CONTRACT, spec_to_wire(spec))
        self.journal.bind(spec.name, contract_id=CONTRACT, common_name=spec.common_name, prevent_destroy=False,
                          enrollment_id=status.enrollment_id)
        return status.enrollment_id, status.change_ids[0]

    def context(self, spec: DvEnrollmentSpec | ThirdPartyEnrollmentSpec, *, publisher: Publisher | None = None,
                run_id: str | None = None, wait: bool = True, timeout: float = 30.0,
                checker: ChallengeChecker | None = None) -> WorkflowContext:
        return WorkflowContext(
            name=spec.name, spec=spec, client=self.client, journal=self.journal, root=self.root,
            state_dir=self.root / "state", run_id=run_id or uuid.uuid4().hex, deadline=time.monotonic() + timeout,
            poll=self.poll(), wait_for_deployment=wait,
            publisher=(lambda: publisher) if publisher is not None else None,  # type: ignore[return-value]
            checker=(lambda: checker) if checker is not None else None,
            report=lambda n, s, d: self.steps.append((n, s, d)))


# The rig's sandbox trusts DV acknowledgements, said explicitly: these tests are about apply's
# workflow, and their publishers (hooks writing files, `true`) publish nowhere a sandbox could
# look. Tests of validation by looking pass their own EngineConfig (policy "look" or "dns").
RIG_ENGINE = EngineConfig(create_throttle_seconds=0, validation_policy="trust-ack")


@asynccontextmanager
async def sandbox_rig(root: Path, engine: EngineConfig | None = None) -> AsyncIterator[Rig]:
    config = SandboxConfig(engine=engine or RIG_ENGINE)
    app = create_app(config)
    creds = config.credentials.for_host("cps.sandbox.test")
    async with CpsClient(creds, base_url="https://cps.sandbox.test", transport=httpx.ASGITransport(app=app),
                         retry=RetryPolicy(base_delay=0.01, conflict_delay=0.01)) as client:
        yield Rig(app=app, client=client, root=root, store=StateStore(root / "state" / "reconcile-state.json"))
