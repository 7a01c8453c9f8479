"""Plan-room fixtures: a miniature GitOps repository on disk and a CPS sandbox over real HTTPS.

``repo`` writes reconcile.yaml and spec files and loads them with the real loader; ``cps`` is a
sandbox (create throttle off, virtual clock only moved by ``advance``) with an open client;
``arrange_apply`` stands in for apply until the executor exists: it creates an enrollment from
``spec_to_wire``, records state, and walks the DV workflow to deployment with the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.config import Config, load_config
from reconciler.cps.client import CpsClient
from reconciler.cps.mapping import spec_to_wire
from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.testing import SandboxServer
from reconciler.spec.loader import LoadedSpec, LoadedSpecs, load_specs
from reconciler.state.model import StateEntry
from reconciler.state.store import StateStore
from tests.sandbox.helpers import publish_in_edge_dns

CONTRACT = "ctr_1-AB123"
CONTACT = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1-555-0100"}
ORG = {"name": "Example Inc", "phone": "+1-555-0100", "address_line_one": "1 Main St", "city": "Cambridge",
       "region": "MA", "postal_code": "02142", "country_code": "US"}


@dataclass
class Repo:
    """A repository root with reconcile.yaml, specs/ and state/."""

    root: Path

    def write_spec(self, name: str, cn: str, **fields: Any) -> None:
        spec = {"name": name, "type": "dv", "common_name": cn, "sans": [], **fields}
        (self.root / "specs" / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

    def remove_spec(self, name: str) -> None:
        (self.root / "specs" / f"{name}.yaml").unlink()

    @property
    def config(self) -> Config:
        return load_config(cwd=self.root)

    def load(self) -> LoadedSpecs:
        return load_specs(self.config)

    @property
    def store(self) -> StateStore:
        return StateStore(self.config.state_path)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    (root / "state").mkdir()
    config = {
        "default_contract": CONTRACT,
        "defaults": {"admin_contact": CONTACT, "tech_contact": CONTACT, "organization": ORG,
                     "validation": {"method": "dns-01", "publisher": "hook", "hook": {"publish": "true"}}},
    }
    (root / "reconcile.yaml").write_text(yaml.safe_dump(config))
    return Repo(root)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(engine=EngineConfig(create_throttle_seconds=0), speed=0.0) as server:
        yield server


@pytest.fixture
async def client(sandbox: SandboxServer) -> AsyncIterator[CpsClient]:
    async with CpsClient(sandbox.credentials, base_url=sandbox.base_url, verify=sandbox.ca_bundle) as c:
        yield c


async def arrange_apply(client: CpsClient, sandbox: SandboxServer, store: StateStore, loaded: LoadedSpec) -> int:
    """Create the enrollment, record it in state, and drive its DV change to completion."""
    spec = loaded.spec
    status = await client.create_enrollment(spec.contract_id or CONTRACT, spec_to_wire(spec))
    eid, cid = status.enrollment_id, status.change_ids[0]
    store.save_entry(spec.name, StateEntry(enrollment_id=eid, contract_id=spec.contract_id or CONTRACT,
                                           common_name=spec.common_name, spec_hash=loaded.spec_hash,
                                           prevent_destroy=spec.prevent_destroy))
    sandbox.advance(300)
    publish_in_edge_dns(sandbox, await client.get_dv_challenges(eid, cid))  # where the sandbox looks
    await client.acknowledge_dv_challenges(eid, cid)
    sandbox.advance(6 * 3600)
    change = await client.get_change(eid, cid)
    assert change.state == "completed", change
    return eid
