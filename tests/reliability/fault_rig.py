"""The fault matrix rig: every CPS operation apply uses x every fault, each cell a full apply.

One sandbox (in its own process, see ``fault_server``) serves every cell over real HTTPS. Cells are kept apart by contract and names (cell
``n`` owns contract ``1-FM<n>`` and the CNs ``www.fm<n>.example.com`` / ``shop.fm<n>.example.com``)
and by the ``X-Sandbox-Tag`` header its client sends: a cell's fault rules carry its tag, so they
fire on its own first attempts only, however many cells run at once.

A cell plans and applies one DV enrollment (hook publisher) and one dual-stack third-party
enrollment (signer hook, change management), with pre- and post-verification warnings on, so one
apply passes through every input CPS can ask for. Operations only an update uses (reading one
enrollment, PUT) get a second apply that adds a SAN to the DV enrollment; DELETE gets a second
apply that drops the DV spec with ``--allow-delete``. Their faults are installed after the first
apply, which runs clean.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from reconciler.apply.context import PollPolicy
from reconciler.apply.executor import ApplyOptions
from reconciler.apply.publishers import PublisherFactory
from reconciler.apply.runner import ApplyRun, run_apply
from reconciler.config import load_config
from reconciler.cps.client import CpsClient
from reconciler.cps.retry import RetryPolicy
from reconciler.cps.session import ClientStats
from reconciler.plan.pipeline import build_plan
from reconciler.plan.planner import PlanOptions
from reconciler.sandbox.faults import TAG_HEADER
from reconciler.spec.loader import load_specs
from reconciler.state.store import StateStore
from reconciler.x509names import dns_sans
from tests.reliability.fault_server import SandboxProcess

PERSON = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1 555 0100"}
ORG = {"name": "Example Org", "phone": "+1 555 0100", "address_line_one": "1 Main St", "city": "Cambridge",
       "region": "MA", "postal_code": "02142", "country_code": "US"}
HOOK = 'echo "$RECONCILE_DOMAIN $RECONCILE_RECORD_NAME $RECONCILE_RECORD_VALUE" >> published.txt'

# Client knobs for the matrix: the real retry path, with short waits. The per-attempt timeout is
# what a "timeout" fault outlasts (it holds the connection for TIMEOUT_HOLD_MS).
ATTEMPT_TIMEOUT = 2.0
TIMEOUT_HOLD_MS = 3000.0
RETRY = RetryPolicy(base_delay=0.02, max_delay=0.2, max_retry_after=0.25, conflict_delay=0.05)
POLL = PollPolicy(initial=0.05, maximum=0.2)
APPLY_TIMEOUT = 60.0

E = "/cps/v2/enrollments"
EID = E + "/{enrollmentId}"
CHANGE = EID + "/changes/{changeId}"
INFO = CHANGE + "/input/info/"
UPDATE = CHANGE + "/input/update/"


Phase = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Operation:
    """One client operation apply uses, named by its CPS route, and the apply that uses it."""

    key: str
    method: str
    route: str
    phase: Phase = "create"

    @property
    def write(self) -> bool:
        return self.method != "GET"

    @property
    def label(self) -> str:
        """``METHOD route``, with ``{change}`` for ``/enrollments/{enrollmentId}/changes/{changeId}``."""
        route = self.route.removeprefix("/cps/v2").replace(CHANGE.removeprefix("/cps/v2"), "{change}")
        return f"{self.method} {route}"


OPERATIONS: tuple[Operation, ...] = (
    Operation("list-enrollments", "GET", E),
    Operation("create-enrollment", "POST", E),
    Operation("get-enrollment", "GET", EID, phase="update"),
    Operation("update-enrollment", "PUT", EID, phase="update"),
    Operation("delete-enrollment", "DELETE", EID, phase="delete"),
    Operation("get-change", "GET", CHANGE),
    Operation("get-pre-warnings", "GET", INFO + "pre-verification-warnings"),
    Operation("ack-pre-warnings", "POST", UPDATE + "pre-verification-warnings-ack"),
    Operation("get-dv-challenges", "GET", INFO + "lets-encrypt-challenges"),
    Operation("ack-dv-challenges", "POST", UPDATE + "lets-encrypt-challenges-completed"),
    Operation("get-csrs", "GET", INFO + "third-party-csr"),
    Operation("upload-certificates", "POST", UPDATE + "third-party-cert-and-trust-chain"),
    Operation("get-post-warnings", "GET", INFO + "post-verification-warnings"),
    Operation("ack-post-warnings", "POST", UPDATE + "post-verification-warnings-ack"),
    Operation("get-change-management", "GET", INFO + "change-management-info"),
    Operation("ack-change-management", "POST", UPDATE + "change-management-ack"),
    Operation("get-production-deployment", "GET", EID + "/deployments/production"),
)


@dataclass(frozen=True)
class Fault:
    """One way a request fails: a sandbox fault rule without its route, method and tag."""

    key: str
    rule: dict[str, Any]
    writes_only: bool = False  # after processing: for a read that is the same as before


FAULTS: tuple[Fault, ...] = (
    Fault("429+retry-after", {"status": 429, "retry_after": 1, "count": 2}),
    Fault("429", {"status": 429, "count": 2}),
    Fault("500", {"status": 500, "count": 2}),
    Fault("500-after", {"status": 500, "phase": "after", "count": 1}, writes_only=True),
    Fault("503", {"status": 503, "count": 2}),
    Fault("503-after", {"status": 503, "phase": "after", "count": 1}, writes_only=True),
    Fault("drop", {"action": "drop", "count": 1}),
    Fault("drop-after", {"action": "drop", "phase": "after", "count": 1}, writes_only=True),
    Fault("timeout", {"action": "timeout", "hold_ms": TIMEOUT_HOLD_MS, "count": 1}),
    Fault("timeout-after", {"action": "timeout", "hold_ms": TIMEOUT_HOLD_MS, "phase": "after", "count": 1},
          writes_only=True),
    Fault("truncate", {"action": "truncate", "keep": 20, "count": 1}),
)


@dataclass(frozen=True)
class Cell:
    """One operation under one fault; ``index`` picks its contract and names."""

    index: int
    operation: Operation | None  # None: the fault-free baseline
    fault: Fault | None

    @property
    def id(self) -> str:
        if self.operation is None or self.fault is None:
            return "baseline"
        return f"{self.operation.key}:{self.fault.key}"

    @property
    def tag(self) -> str:
        return f"fm{self.index}"

    @property
    def contract(self) -> str:
        return f"ctr_1-FM{self.index}"

    @property
    def phases(self) -> tuple[Phase, ...]:
        """The applies this cell runs: create, then the one its operation needs."""
        if self.operation is None:
            return ("create", "update", "delete")
        return ("create",) if self.operation.phase == "create" else ("create", self.operation.phase)


def cells() -> list[Cell]:
    """Every (operation, fault) pair that means something: reads have no after-phase variant."""
    found: list[Cell] = []
    for operation in OPERATIONS:
        for fault in FAULTS:
            if fault.writes_only and not operation.write:
                continue
            found.append(Cell(len(found) + 1, operation, fault))
    return found


BASELINE = Cell(0, None, None)


# -- the customer's CA and the repository of one cell ---------------------------------------------------

def make_customer_ca(directory: Path) -> Path:
    """A CA (key + self-signed certificate) for the signer hook; returns its directory."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fault Matrix Customer CA")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    (directory / "ca.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return directory


def signer_command(ca: Path) -> str:
    """A signer hook standing in for the customer's CA: openssl when present (fast), else Python."""
    if shutil.which("openssl"):
        return (f'openssl x509 -req -in "$RECONCILE_CSR_FILE" -CA "{ca}/ca.pem" -CAkey "{ca}/ca.key" '
                '-set_serial "0x$(openssl rand -hex 12)" -days 400 -copy_extensions copyall '
                f'-out "$RECONCILE_CERT_FILE" 2>/dev/null && cp "{ca}/ca.pem" "$RECONCILE_CHAIN_FILE"')
    return (f"{sys.executable} -c \"import os, json, pathlib; "
            "from reconciler.sandbox.ca import CertificateAuthority as CA; "
            f"p = pathlib.Path(r'{ca}') / 'py-ca.json'; "
            "ca = CA.from_json(json.loads(p.read_text())) if p.exists() else CA('Fault Matrix'); "
            "p.write_text(json.dumps(ca.to_json())); "
            "leaf, chain = ca.sign_csr(open(os.environ['RECONCILE_CSR_FILE']).read()); "
            "open(os.environ['RECONCILE_CERT_FILE'], 'w').write(leaf); "
            "open(os.environ['RECONCILE_CHAIN_FILE'], 'w').write(chain)\"")


def specs_for(cell: Cell, signer: str, phase: Phase) -> list[dict[str, Any]]:
    tag = cell.tag
    www_sans = [f"www.{tag}.example.com", f"{tag}.example.com"] + ([f"api.{tag}.example.com"] if phase == "update" else [])
    acks = {"acknowledge_pre_verification_warnings": True, "acknowledge_post_verification_warnings": True}
    www = {"name": "www", "type": "dv", "common_name": f"www.{tag}.example.com", "sans": www_sans,
           "validation": {"method": "dns-01", "publisher": "hook", "hook": {"publish": HOOK}}, **acks}
    shop = {"name": "shop", "type": "third-party", "common_name": f"shop.{tag}.example.com",
            "sans": [f"shop.{tag}.example.com", f"pay.{tag}.example.com"], "dual_stack": True,
            "signer": {"command": signer}, "change_management": True, "acknowledge_change_management": True, **acks}
    return [shop] if phase == "delete" else [www, shop]


def write_repo(root: Path, cell: Cell, signer: str, phase: Phase) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "reconcile.yaml").write_text(yaml.safe_dump({
        "default_contract": cell.contract,
        "defaults": {"admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG},
    }))
    (root / "specs").mkdir(exist_ok=True)
    for old in (root / "specs").glob("*.yaml"):
        old.unlink()
    for spec in specs_for(cell, signer, phase):
        (root / "specs" / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec))


# -- talking to the sandbox as one cell -------------------------------------------------------------

class TaggedTransport(httpx.AsyncBaseTransport):
    """The real HTTPS transport, adding the cell's ``X-Sandbox-Tag`` to every request."""

    def __init__(self, tag: str | None, ca_bundle: str) -> None:
        self._tag = tag
        self._inner = httpx.AsyncHTTPTransport(verify=ssl.create_default_context(cafile=ca_bundle))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._tag is not None:
            request.headers[TAG_HEADER] = self._tag
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def open_client(server: SandboxProcess, tag: str | None) -> CpsClient:
    """A client for one cell (``tag``) or for checking (``None``: never faulted, patient)."""
    return CpsClient(server.credentials, base_url=server.base_url, transport=TaggedTransport(tag, server.ca_bundle),
                     timeout=ATTEMPT_TIMEOUT if tag else 30.0, retry=RETRY)


def cell_log(server: SandboxProcess, tag: str) -> list[dict[str, Any]]:
    """The sandbox's log of this cell's requests."""
    return server.requests(tag)


async def apply_once(server: SandboxProcess, root: Path, tag: str, *,
                     allow_delete: bool = False) -> tuple[ApplyRun, ClientStats]:
    """``reconcile apply --auto-approve`` in process, as the cell; the run and the client's counters."""
    config = load_config(root / "reconcile.yaml")
    specs = load_specs(config)
    async with open_client(server, tag) as client:
        publishers = PublisherFactory(root=config.root, state_dir=config.state_path.parent, run_id=os.urandom(6).hex())
        run = await run_apply(config=config, specs=specs, store=StateStore(config.state_path), client=client,
                              plan_file=None, plan_options=PlanOptions(allow_delete=allow_delete),
                              apply_options=ApplyOptions(timeout=APPLY_TIMEOUT, poll=POLL),
                              show=lambda plan: None, confirm=lambda plan: True, publishers=publishers,
                              run_id=publishers.run_id)
        return run, client.stats


def install_faults(server: SandboxProcess, cell: Cell) -> None:
    if cell.operation is None or cell.fault is None:
        return
    server.set_faults(rules=[{**cell.fault.rule, "method": cell.operation.method, "path": cell.operation.route,
                              "tag": cell.tag}])


# -- what a cell ends with ---------------------------------------------------------------------------

def _names(pem: str) -> list[str]:
    return sorted(dns_sans(x509.load_pem_x509_certificate(pem.encode())))


async def cps_view(client: CpsClient, cell: Cell) -> dict[str, Any]:
    """CPS as the cell left it, with the cell's tag replaced so that cells compare equal."""
    out: dict[str, Any] = {}
    for enrollment in await client.list_enrollments(cell.contract):
        eid = enrollment.enrollment_id
        wire = enrollment.to_wire()
        networks: dict[str, Any] = {}
        for network, read in (("production", client.get_production_deployment),
                              ("staging", client.get_staging_deployment)):
            deployment = await read(eid)
            networks[network] = sorted(
                (c.key_algorithm or "?", _names(c.certificate)) for c in deployment.certificates if c.certificate
            ) if deployment is not None else None
        cn = enrollment.csr.cn if enrollment.csr else "?"
        out[cn] = {
            "sans": sorted(wire.get("csr", {}).get("sans") or []),
            "validationType": wire.get("validationType"),
            "certificateType": wire.get("certificateType"),
            "changeManagement": wire.get("changeManagement"),
            "pendingChanges": len(enrollment.pending_change_ids),
            **networks,
        }
    return _untag(out, cell.tag)


def _untag(value: Any, tag: str) -> Any:
    if isinstance(value, str):
        return value.replace(f".{tag}.", ".T.").replace(f"{tag}.example", "T.example")
    if isinstance(value, dict):
        return {_untag(k, tag): _untag(v, tag) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_untag(v, tag) for v in value]
    return value


def landed(entry: dict[str, Any]) -> bool:
    """Whether CPS accepted the request (also when a fault lost its answer afterwards)."""
    status = entry.get("processedStatus") or entry.get("status")
    return status is not None and 200 <= int(status) < 300


@dataclass
class CellResult:
    """How one cell ended: problems (empty: passed), faults fired, client retries, wall time."""

    cell: Cell
    problems: list[str] = field(default_factory=list)
    fired: int = 0
    retries: int = 0
    paced: float = 0.0  # seconds the client held every request after a 429
    seconds: float = 0.0
    views: dict[Phase, dict[str, Any]] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # every apply's outcomes, for the secret scan

    @property
    def passed(self) -> bool:
        return not self.problems


def _outcomes(run: ApplyRun) -> str:
    result = run.result
    return "; ".join(f"{o.name}: {o.status} - {o.message}" for o in (result.outcomes if result else []))


async def _settled_view(client: CpsClient, cell: Cell, cns: list[str]) -> dict[str, Any]:
    """The CPS view once a deleted enrollment has gone (CPS removes a deployed one a while after
    the DELETE; the sandbox's clock makes that a fraction of a second)."""
    deadline = time.monotonic() + 10.0
    while True:
        listed = sorted(e.csr.cn for e in await client.list_enrollments(cell.contract) if e.csr)
        if listed == cns or time.monotonic() > deadline:
            return await cps_view(client, cell)
        await asyncio.sleep(0.1)


async def _check(server: SandboxProcess, cell: Cell, root: Path, log: list[dict[str, Any]], phases: tuple[Phase, ...],
                 baseline: dict[str, Any] | None) -> tuple[list[str], dict[str, Any]]:
    """Problems after the apply of ``phases[-1]`` (``phases``: the applies run so far)."""
    problems: list[str] = []
    config = load_config(root / "reconcile.yaml")
    state = StateStore(config.state_path).read()
    names = ["shop"] if phases[-1] == "delete" else ["shop", "www"]
    wanted = [f"{n}.{cell.tag}.example.com" for n in names]
    async with open_client(server, None) as client:
        view = await _settled_view(client, cell, wanted)
        listed = await client.list_enrollments(cell.contract)
        by_cn = {e.csr.cn: e.enrollment_id for e in listed if e.csr}
        if sorted(e.csr.cn for e in listed if e.csr) != wanted:
            problems.append(f"enrollments in CPS: {sorted(by_cn)} (want exactly {wanted})")
        if baseline is not None and view != baseline:
            problems.append(f"CPS differs from the fault-free run: {view} vs {baseline}")
        if sorted(state.entries) != names:
            problems.append(f"state entries {sorted(state.entries)}, want {names}")
        for name, entry in state.entries.items():
            if entry.enrollment_id != by_cn.get(entry.common_name):
                problems.append(f"state {name} -> {entry.enrollment_id}, CPS {entry.common_name} -> "
                                f"{by_cn.get(entry.common_name)}")
            if entry.intent is not None or entry.change is not None or entry.spec_hash is None:
                problems.append(f"state {name} not settled: intent={entry.intent}, change={entry.change}")
        plan = (await build_plan(load_specs(config), state, client, PlanOptions())).plan
        if plan.has_changes or plan.actions:
            problems.append(f"next plan not empty: {[(a.name, a.kind) for a in plan.actions]}")
    accepted: dict[str, int] = {}
    for entry in log:
        if landed(entry) and entry["method"] != "GET":
            kind = "upload" if entry["path"].endswith("/third-party-cert-and-trust-chain") else \
                "create" if entry["path"] == E else {"PUT": "update", "DELETE": "delete"}.get(entry["method"])
            if kind:
                accepted[kind] = accepted.get(kind, 0) + 1
    # A DELETE is the one write that may go twice: after a lost answer the enrollment is still
    # listed while CPS removes it, and a second DELETE asks for the same end state.
    deletes = accepted.pop("delete", 0)
    expected = {"create": 2, "upload": 1, **({"update": 1} if "update" in phases else {})}
    if accepted != expected:
        problems.append(f"writes CPS accepted {accepted}, expected {expected}")
    if ("delete" in phases) != (deletes > 0):
        problems.append(f"{deletes} DELETE(s) accepted")
    return problems, view


def _log_summary(log: list[dict[str, Any]]) -> str:
    """What a failed cell sent, compressed: ``METHOD last-segment -> status/fault xN`` in order."""
    runs: list[list[Any]] = []
    for entry in log:
        key = f"{entry['method']} {entry['path'].rsplit('/', 1)[-1]} -> {entry.get('fault') or entry.get('status')}"
        if runs and runs[-1][0] == key:
            runs[-1][1] += 1
        else:
            runs.append([key, 1])
    return ", ".join(f"{key} x{n}" if n > 1 else key for key, n in runs[-40:])


def _fault_problems(fault: Fault, result: CellResult) -> list[str]:
    """The fault hit the first ``count`` attempts, and a ``Retry-After`` was waited for."""
    problems = []
    if result.fired != fault.rule["count"]:
        problems.append(f"the fault fired {result.fired} time(s), not {fault.rule['count']}")
    if "retry_after" in fault.rule and result.paced < RETRY.max_retry_after * 0.8:
        # A 429 holds every request of the client for Retry-After (capped by the policy).
        problems.append(f"after a 429 with Retry-After the client held off only {result.paced:.3f}s")
    return problems


async def run_cell(server: SandboxProcess, base: Path, cell: Cell, signer: str,
                   baselines: dict[Phase, dict[str, Any]] | None) -> CellResult:
    """Run one cell end to end and check it; never raises for a failed check."""
    started = time.monotonic()
    result = CellResult(cell)
    root = base / cell.tag
    try:
        for done, phase in enumerate(cell.phases, start=1):
            write_repo(root, cell, signer, phase)
            if done == len(cell.phases):
                install_faults(server, cell)
            run, stats = await apply_once(server, root, cell.tag, allow_delete=phase == "delete")
            result.retries += stats.retries
            result.paced += stats.paced_seconds
            result.notes.append(_outcomes(run))
            if run.exit_code != 0 or run.result is None or any(o.status != "done" for o in run.result.outcomes):
                result.problems.append(f"{phase} apply exit {run.exit_code}: {_outcomes(run)}; "
                                       f"requests: {_log_summary(cell_log(server, cell.tag))}")
                break
            want = baselines[phase] if baselines is not None else None
            problems, view = await _check(server, cell, root, cell_log(server, cell.tag), cell.phases[:done], want)
            result.views[phase] = view
            result.problems += [f"after the {phase} apply: {p}" for p in problems]
        result.log = cell_log(server, cell.tag)
        result.fired = sum(1 for r in result.log if r.get("fault"))
        if cell.fault is not None:
            result.problems += _fault_problems(cell.fault, result)
    except Exception as exc:  # a crash is a failed cell, reported with the others
        result.problems.append(f"{type(exc).__name__}: {exc}")
    result.seconds = time.monotonic() - started
    return result


async def run_matrix(server: SandboxProcess, base: Path, selected: list[Cell], signer: str,
                     concurrency: int = 24) -> tuple[CellResult, list[CellResult]]:
    """The baseline first (its CPS views are the reference), then every selected cell at once."""
    baseline = await run_cell(server, base, BASELINE, signer, None)
    if not baseline.passed:
        return baseline, []
    gate = asyncio.Semaphore(concurrency)

    async def one(cell: Cell) -> CellResult:
        async with gate:
            return await run_cell(server, base, cell, signer, baseline.views)

    return baseline, list(await asyncio.gather(*(one(cell) for cell in selected)))


def matrix_table(results: list[CellResult]) -> list[str]:
    """Operations down, faults across: ``ok`` / ``FAIL`` / ``-`` (not a meaningful pair)."""
    by_id = {r.cell.id: r for r in results}
    head = ["operation"] + [f.key for f in FAULTS]
    rows = [head, ["---"] * len(head)]
    for operation in OPERATIONS:
        row = [f"`{operation.label}`"]
        for fault in FAULTS:
            cell = by_id.get(f"{operation.key}:{fault.key}")
            row.append("-" if cell is None else "ok" if cell.passed else "FAIL")
        rows.append(row)
    return ["| " + " | ".join(r) + " |" for r in rows]
