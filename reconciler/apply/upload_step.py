"""The ``third-party-certificate`` input: export CSRs, get them signed, check, upload once.

Flow per change: write every CSR CPS issued to ``state/csr/<name>.<rsa|ecdsa>.csr.pem``; if a
spec certificate file is missing or belongs to an older CSR, run the signer hook (when the spec
has one); without a signed certificate for every CSR the enrollment waits (exit 3). Certificates
that exist are checked locally against their CSR (``thirdparty.check_certificate``) and a
mismatch is refused. The upload itself is recorded as an intent (fingerprints) before the POST,
so a crash can never lead to uploading the same certificate twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.apply.context import WorkflowContext
from reconciler.apply.thirdparty import (
    CheckedCertificate,
    certificate_matches_csr,
    check_certificate,
    pem_fingerprint,
    run_signer,
)
from reconciler.apply.workfiles import csr_path
from reconciler.cps.models import CertificateAndTrustChain
from reconciler.errors import CertificateMismatch, Conflict, NotFound, WriteOutcomeUnknown
from reconciler.spec.certfiles import resolve_inside
from reconciler.spec.models import ThirdPartyEnrollmentSpec
from reconciler.state.files import atomic_write, make_dirs
from reconciler.x509names import validity_of

log = logging.getLogger("reconciler.apply")

THIRD_PARTY = "third-party-certificate"
# Reads of a change still asking for certificates already uploaded before apply stops waiting for
# CPS to process them (an upload is taken asynchronously) and hands the question to a person.
_PATIENCE = 5


@dataclass(frozen=True)
class CsrSlot:
    """One CSR CPS issued and the files its signed certificate lives in."""

    key_algorithm: str  # rsa | ecdsa
    csr_pem: str
    csr_file: Path
    cert_file: Path
    chain_file: Path | None




def validity(checked: list[CheckedCertificate], now: datetime) -> dict[str, str]:
    """When the certificates going up are valid together, and when they go up (CPS's ``now``), in
    ISO: what state records of them."""
    not_before, not_after = validity_of(c.certificate_pem for c in checked)
    return {"not_before": not_before.isoformat(), "not_after": not_after.isoformat(), "uploaded_at": now.isoformat()}


def validity_from(detail: dict[str, Any]) -> dict[str, str] | None:
    """The validity an upload intent recorded (see :func:`validity`), if it did."""
    if isinstance(detail.get("not_before"), str) and isinstance(detail.get("not_after"), str):
        return {key: detail[key] for key in ("not_before", "not_after", "uploaded_at") if isinstance(detail.get(key), str)}
    return None


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    make_dirs(path.parent)
    atomic_write(path, text.encode("utf-8"))


def _file_fingerprint(path: Path) -> str | None:
    try:
        return pem_fingerprint(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class UploadStep:
    """Answers ``third-party-certificate`` for one enrollment."""

    def __init__(self, ctx: WorkflowContext, enrollment_id: int) -> None:
        self.ctx = ctx
        self.enrollment_id = enrollment_id
        self._asked_again = 0
        self._uploaded: set[int] = set()

    @property
    def spec(self) -> ThirdPartyEnrollmentSpec:
        assert isinstance(self.ctx.spec, ThirdPartyEnrollmentSpec)
        return self.ctx.spec

    def _slots(self, csrs: list[tuple[str, str]]) -> list[CsrSlot]:
        slots = []
        for algorithm, pem in csrs:
            files = getattr(self.spec.certificates, algorithm, None)
            if files is None:
                raise self.ctx.fail(f"CPS issued an {algorithm.upper()} CSR but the spec has no "
                                    f"certificates.{algorithm} files")
            csr_file = csr_path(self.ctx.state_dir, self.ctx.name, algorithm)
            _write_if_changed(csr_file, pem if pem.endswith("\n") else pem + "\n")
            chain = self._inside(files.trust_chain) if files.trust_chain else None
            slots.append(CsrSlot(algorithm, pem, csr_file, self._inside(files.certificate), chain))
        return slots

    def _inside(self, value: str) -> Path:
        # Validation checked the path, but a symlink may have been swapped in since; the signer
        # hook writes here, so check again at the moment of use.
        try:
            return resolve_inside(self.ctx.root, value)
        except ValueError as exc:
            raise self.ctx.fail(f"certificate file {exc}") from None

    def _condition(self, slot: CsrSlot, uploaded_before: set[str], now: datetime) -> str:
        """``missing``, ``fresh`` (not uploaded yet), ``previous`` (already uploaded, still fits this
        CSR) or ``stale`` (already uploaded for an older CSR: needs a new signature)."""
        if not slot.cert_file.exists():
            return "missing"
        if _file_fingerprint(slot.cert_file) not in uploaded_before:
            return "fresh"
        try:
            check_certificate(enrollment=self.ctx.name, key_algorithm=slot.key_algorithm, csr_pem=slot.csr_pem,
                              cert_file=slot.cert_file, chain_file=slot.chain_file, now=now)
        except CertificateMismatch:
            return "stale"
        return "previous"

    async def answer(self, change_id: int) -> bool:
        """Upload checked certificates for every CSR; True when the upload was sent."""
        ctx = self.ctx
        if change_id in self._uploaded:
            return False  # uploaded in this run: CPS takes it asynchronously
        try:
            csrs = await ctx.client.get_third_party_csrs(self.enrollment_id, change_id)
        except NotFound:
            return False
        pairs = [((c.key_algorithm or "RSA").lower(), c.csr) for c in csrs.csrs]
        if not pairs:
            return False
        slots = self._slots(pairs)
        ctx.step("export CSRs", ", ".join(str(s.csr_file) for s in slots))
        entry = ctx.journal.entry(ctx.name)
        uploaded_before = set(entry.certificate_fingerprints.values()) if entry else set()
        now = ctx.client.cps_now()  # validity is judged by CPS's clock, as CPS will judge it
        conditions = {s.key_algorithm: self._condition(s, uploaded_before, now) for s in slots}
        if self.spec.signer is not None:
            await self._sign(slots, conditions)
            slots = self._slots(pairs)  # the hook may have moved things: the paths are checked again
            now = ctx.client.cps_now()  # a certificate signed just now is valid from now, not from before signing
            conditions = {s.key_algorithm: self._condition(s, uploaded_before, now) for s in slots}
        unsigned = [s for s in slots if conditions[s.key_algorithm] in ("missing", "stale")]
        if unsigned:
            raise ctx.wait(
                "waiting for signed certificate(s): " + ", ".join(s.key_algorithm.upper() for s in unsigned),
                [f"sign {s.csr_file} and save the certificate as {s.cert_file}"
                 + (f" (chain: {s.chain_file})" if s.chain_file else "") for s in unsigned])
        checked = [check_certificate(enrollment=ctx.name, key_algorithm=s.key_algorithm, csr_pem=s.csr_pem,
                                     cert_file=s.cert_file, chain_file=s.chain_file, now=now) for s in slots]
        fingerprints = {c.key_algorithm: c.sha256 for c in checked}
        if all(c == "previous" for c in conditions.values()):
            # Never upload the same certificate twice; give CPS a few reads to take the first one.
            self._asked_again += 1
            if self._asked_again < _PATIENCE:
                return False
            raise ctx.wait("CPS asks again for certificates that were already uploaded",
                           [f"{a.upper()} {f}" for a, f in sorted(fingerprints.items())]
                           + ["check the change in CPS; sign new certificates from the CSRs to retry"])
        if entry is not None and entry.intent is not None and entry.intent.op == "uploading" \
                and entry.intent.detail.get("fingerprints") == fingerprints \
                and await self._in_history(set(fingerprints.values())):
            ctx.journal.uploaded(ctx.name, fingerprints, validity(checked, ctx.client.cps_now()))  # earlier POST landed
            self._uploaded.add(change_id)
            return True
        return await self._upload(change_id, checked, fingerprints)

    async def _sign(self, slots: list[CsrSlot], conditions: dict[str, str]) -> None:
        signer = self.spec.signer
        assert signer is not None
        for slot in slots:
            condition = conditions[slot.key_algorithm]
            if condition == "previous" or (condition == "fresh" and certificate_matches_csr(slot.cert_file,
                                                                                               slot.csr_pem)):
                continue
            chain_file = slot.chain_file or slot.cert_file.with_name(slot.cert_file.stem + "-chain.pem")
            self.ctx.step("sign CSR", f"{slot.key_algorithm.upper()} via signer hook")
            await run_signer(signer.command, enrollment=self.ctx.name, key_algorithm=slot.key_algorithm,
                             csr_file=slot.csr_file, cert_file=slot.cert_file, chain_file=chain_file,
                             cwd=self.ctx.root, timeout=signer.timeout)

    def settle(self, change_id: int, still_asked: bool) -> None:
        """A crashed run's upload landed if CPS stopped asking for it: record it as uploaded."""
        entry = self.ctx.journal.entry(self.ctx.name)
        intent = entry.intent if entry is not None else None
        if intent is None or intent.op != "uploading" or still_asked:
            return
        fingerprints = intent.detail.get("fingerprints")
        if intent.detail.get("change_id") == change_id and isinstance(fingerprints, dict):
            self.ctx.journal.uploaded(self.ctx.name, {str(k): str(v) for k, v in fingerprints.items()},
                                      validity_from(intent.detail))

    async def _in_history(self, fingerprints: set[str]) -> bool:
        """Whether CPS already holds these certificates (a crashed run's upload that landed)."""
        try:
            history = await self.ctx.client.get_change_history(self.enrollment_id)
        except NotFound:
            return False
        for change in history.changes:
            for cert in [change.primary_certificate, *change.multi_stacked_certificates]:
                if cert is not None and cert.certificate:
                    try:
                        if pem_fingerprint(cert.certificate) in fingerprints:
                            return True
                    except ValueError:
                        continue
        return False

    async def _upload(self, change_id: int, checked: list[CheckedCertificate], fingerprints: dict[str, str]) -> bool:
        ctx = self.ctx
        ctx.journal.intent(ctx.name, "uploading", {"change_id": change_id, "fingerprints": fingerprints,
                                                   **validity(checked, ctx.client.cps_now())})
        ctx.checkpoint("upload:intent")
        ctx.step("upload certificates", ", ".join(f"{a.upper()} {f[:16]}" for a, f in sorted(fingerprints.items())))
        body = [CertificateAndTrustChain(key_algorithm=c.key_algorithm.upper(), certificate=c.certificate_pem,
                                         trust_chain=c.trust_chain_pem) for c in checked]
        try:
            await ctx.client.upload_third_party_certificates(self.enrollment_id, change_id, body)
        except (Conflict, NotFound, WriteOutcomeUnknown) as exc:
            # Not taken (the change moved on, or was cancelled), or maybe taken (the answer was
            # lost): keep the intent and re-read the change. A change that stops asking settles the
            # upload as done; one still asking gets these certificates again only if the change
            # history does not hold them (``answer``), so they never go up twice.
            log.info("%s: upload not confirmed (%s); re-reading the change", ctx.name, exc)
            return False
        ctx.checkpoint("upload:posted")
        self._uploaded.add(change_id)
        ctx.journal.uploaded(ctx.name, fingerprints, validity(checked, ctx.client.cps_now()))
        ctx.checkpoint("upload:saved")
        return True
