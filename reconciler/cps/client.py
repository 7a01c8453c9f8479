"""``CpsClient``: every CPS v2 operation the workflows need, async, typed.

One method per operation (CPS-API.md section 2), each with the exact media types of section 2 and
5.3. Sending, retries, pacing and error mapping live in ``session``; this module knows paths,
parameters and shapes. Bodies for create and update are plain dicts built by ``mapping``.

A write whose outcome is unknown (sent, then a 5xx, a lost connection, a timeout) is never simply
sent again: the client first re-reads what it was meant to change. A create is looked up by CN, a
PUT by the pending changes it would have opened, a DELETE by whether the enrollment (or change) is
still there; only when that shows it did not land is it sent again. An input update cannot be
settled from here (whether CPS still wants the input is the workflow's question, and an upload
must never go twice), so it raises ``WriteOutcomeUnknown`` for the caller to re-read the change.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import date, datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx
from pydantic import ValidationError

from reconciler import __version__
from reconciler.cps import media
from reconciler.cps.auth import EdgeGridAuth
from reconciler.cps.credentials import Credentials
from reconciler.cps.links import change_path, enrollment_path
from reconciler.cps.models import (
    CertificateAndTrustChain,
    CertificateHistory,
    Change,
    ChangeHistory,
    ChangeId,
    ChangeManagementInfo,
    Csrs,
    Deployment,
    Deployments,
    DeploymentSchedule,
    DvChallenges,
    DvHistory,
    Enrollment,
    Enrollments,
    EnrollmentStatus,
    Warnings,
    WireModel,
)
from reconciler.cps.pacing import CPS_ACCOUNT_LIMIT, Pacer, RateLimit
from reconciler.cps.retry import RetryPolicy
from reconciler.cps.session import AmbiguousWrite, CallKind, ClientStats, Params, Reply, Session
from reconciler.errors import NotFound, TransportError, WriteOutcomeUnknown

log = logging.getLogger("reconciler.cps")

DateLike = date | datetime | str
M = TypeVar("M", bound=WireModel)
R = TypeVar("R")

# Server-filled fields of an enrollment. CPS ignores them in a PUT [inferred], but the official
# schema types ``id`` as a string while CPS sends an integer, so echoing a GET back verbatim would
# fail validation; they are dropped from every body we send.
READ_ONLY_FIELDS = frozenset({
    "id", "location", "pendingChanges", "assignedSlots", "productionSlots", "stagingSlots",
    "maxAllowedSanNames", "maxAllowedWildcardSanNames", "autoRenewalStartTime",
})


def bare_contract_id(contract_id: str) -> str:
    """CPS wants ``1-AB123``; specs and other Akamai APIs say ``ctr_1-AB123``."""
    return contract_id.removeprefix("ctr_")


def _flags(**flags: bool) -> dict[str, str]:
    """Query flags CPS reads as booleans; only the ones that are on are sent."""
    return {name.replace("_", "-"): "true" for name, on in flags.items() if on}


def _dates(deploy_not_after: DateLike | None, deploy_not_before: DateLike | None) -> dict[str, str]:
    params = {}
    for name, value in (("deploy-not-after", deploy_not_after), ("deploy-not-before", deploy_not_before)):
        if value is not None:
            params[name] = value if isinstance(value, str) else value.strftime("%Y-%m-%d")
    return params


def _enrollment_body(body: Mapping[str, Any] | Enrollment) -> dict[str, Any]:
    data = body.echo() if isinstance(body, Enrollment) else dict(body)
    return {k: v for k, v in data.items() if k not in READ_ONLY_FIELDS}


def _is_loopback(host: str) -> bool:
    if host.startswith("["):  # [v6]:port
        name = host[1:host.find("]")]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _ssl_context(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext | bool:
    # httpx 0.28 deprecates a CA-bundle path for ``verify``; build the context ourselves.
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


def _shaped(model: type[M], body: Any, method: str, path: str) -> M:
    """The answer as ``model``; an answer of the wrong shape is a transport-level failure."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise TransportError(method, path, None,
                             message=f"answer does not fit {model.__name__}: {exc.error_count()} errors") from None


def _written(model: type[M], reply: Reply, method: str, path: str) -> M:
    """A write's answer as ``model``. A 2xx with no body means CPS acted but did not say what it
    opened (production answers some writes that way): ``AmbiguousWrite`` with ``landed``, so the
    caller settles the outcome by re-reading CPS, as after any other unreadable answer."""
    if reply.body is None:
        raise AmbiguousWrite(TransportError(method, path, reply.status, message="empty answer"), landed=True)
    return _shaped(model, reply.body, method, path)


def enrollment_wire(item: dict[str, Any]) -> dict[str, Any]:
    """One item of ``list_enrollments_wire`` validated, as ``list_enrollments(...)[i].to_wire()``."""
    return _shaped(Enrollment, item, "GET", "/cps/v2/enrollments").to_wire()


class CpsClient:
    """Async CPS v2 client. Use as ``async with CpsClient(credentials) as cps: ...``.

    ``base_url`` defaults to ``https://{credentials.host}``. ``transport`` replaces the network
    (an ``httpx.ASGITransport`` for an in-process sandbox, ``httpx.MockTransport`` in tests).
    ``verify`` is True, False, a CA bundle path or an ``ssl.SSLContext``. At most ``max_in_flight``
    requests run at once; each attempt must complete within ``timeout`` seconds. ``rate_limit``
    paces requests with a token bucket: ``"auto"`` turns it on (``CPS_ACCOUNT_LIMIT``) only when
    talking to the real host from the credentials, i.e. when neither ``base_url`` nor
    ``transport`` is given and the host is not a loopback address (a local sandbox).
    ``real_cps`` says the same for others (apply's DV propagation check is on by default there).
    """

    def __init__(self, credentials: Credentials, *, base_url: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 verify: ssl.SSLContext | str | bool = True, max_in_flight: int = 10,
                 timeout: float = 30.0, retry: RetryPolicy | None = None,
                 rate_limit: RateLimit | None | Literal["auto"] = "auto") -> None:
        policy = retry or RetryPolicy()
        self.real_cps = base_url is None and transport is None and not _is_loopback(credentials.host)
        """True when talking to Akamai's CPS, not a sandbox (in process, or on a loopback address)."""
        if rate_limit == "auto":
            rate_limit = CPS_ACCOUNT_LIMIT if self.real_cps else None
        self._http = httpx.AsyncClient(
            base_url=base_url or f"https://{credentials.host}",
            auth=EdgeGridAuth(credentials),
            transport=transport,
            verify=_ssl_context(verify),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": f"cps-reconciler/{__version__}"},
        )
        self._session = Session(self._http, policy=policy, pacer=Pacer(rate_limit, sleep=policy.sleep),
                                max_in_flight=max_in_flight, timeout=timeout)

    def __repr__(self) -> str:
        return f"CpsClient(base_url={str(self._http.base_url)!r})"

    async def __aenter__(self) -> CpsClient:
        await self._http.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._http.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def stats(self) -> ClientStats:
        """Live counters: attempts sent, retries, answers by status, seconds spent pacing."""
        return self._session.stats

    def cps_now(self) -> datetime:
        """CPS's time now, from the ``Date`` of its answers (this machine's before the first one)."""
        return self._session.clock.now()

    async def _get(self, path: str, accept: str, model: type[M], params: Params | None = None) -> M:
        reply = await self._session.call("GET", path, kind=CallKind.READ, accept=accept, params=params)
        return _shaped(model, reply.body, "GET", path)

    async def _settled(self, send: Callable[[], Awaitable[R]],
                       settle: Callable[[AmbiguousWrite], Awaitable[R | None]]) -> R:
        """Send a write; after an ambiguous failure ``settle`` re-reads CPS and returns the result
        if the write landed, or None if it did not, and only then is it sent again (within the
        retry budget). ``settle`` raises when CPS shows something it cannot explain."""
        policy = self._session.policy
        attempt = 0
        while True:
            attempt += 1
            try:
                return await send()
            except AmbiguousWrite as ambiguous:
                await policy.sleep(policy.backoff(attempt))  # give CPS a moment before asking it
                found = await settle(ambiguous)
                if found is not None:
                    return found
                if attempt >= policy.attempts:
                    raise WriteOutcomeUnknown.of(ambiguous.error) from None
                log.info("cps %s %s: not applied after %s; sending it again", ambiguous.error.method,
                         ambiguous.error.path, ambiguous.error)

    # --- enrollments -----------------------------------------------------------------------------

    async def list_enrollments(self, contract_id: str) -> list[Enrollment]:
        listed = await self._get("/cps/v2/enrollments", media.ENROLLMENTS, Enrollments,
                                 {"contractId": bare_contract_id(contract_id)})
        return listed.enrollments

    async def list_enrollments_wire(self, contract_id: str) -> list[dict[str, Any]]:
        """The contract's enrollments as CPS sent them, not yet validated: for a caller that needs a
        few fields at once (ids, pending changes) and validates each later with ``enrollment_wire``.

        Validating a list of a thousand enrollments takes tens of milliseconds; refresh reads the
        pending change ids first and sends those reads before paying for it.
        """
        path = "/cps/v2/enrollments"
        reply = await self._session.call("GET", path, kind=CallKind.READ, accept=media.ENROLLMENTS,
                                         params={"contractId": bare_contract_id(contract_id)})
        items = reply.body.get("enrollments") if isinstance(reply.body, dict) else None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise TransportError("GET", path, None, message="answer does not fit Enrollments: not a list of objects")
        return items

    async def find_enrollments_by_cn(self, contract_id: str, cn: str) -> list[Enrollment]:
        """Enrollments of the contract whose CSR common name is ``cn`` (case-insensitive)."""
        wanted = cn.strip().lower()
        return [e for e in await self.list_enrollments(contract_id)
                if e.csr is not None and e.csr.cn.strip().lower() == wanted]

    async def get_enrollment(self, eid: int) -> Enrollment:
        return await self._get(enrollment_path(eid), media.ENROLLMENT, Enrollment)

    async def create_enrollment(self, contract_id: str, body: Mapping[str, Any] | Enrollment, *,
                                allow_duplicate_cn: bool = False, deploy_not_after: DateLike | None = None,
                                deploy_not_before: DateLike | None = None,
                                same_cn_ids: Collection[int] | None = None) -> EnrollmentStatus:
        """POST a new enrollment; never two for one call.

        Before sending, the contract's enrollments with the same CN are noted. If the POST fails
        ambiguously (sent, then no usable answer), the enrollments are listed again: exactly one
        new enrollment with that CN is taken as ours; none means the POST did not land and it is
        sent again; several (or none after a 2xx) raise ``WriteOutcomeUnknown``.

        ``same_cn_ids``: the ids of every enrollment of the contract with this CN, as the caller
        saw them moments ago (a refresh); given, they are the note and the list before the POST
        is not sent. The caller vouches that nothing it does creates one meanwhile: an enrollment
        with the CN created by someone else since it looked would, after a lost answer, count as
        new (as one created between the list and the POST always could).
        """
        data = _enrollment_body(body)
        cn = str((data.get("csr") or {}).get("cn") or "")
        before: set[int] | None = None
        if cn:
            before = set(same_cn_ids) if same_cn_ids is not None else {
                e.enrollment_id for e in await self.find_enrollments_by_cn(contract_id, cn)}
        params = {"contractId": bare_contract_id(contract_id), **_flags(allow_duplicate_cn=allow_duplicate_cn),
                  **_dates(deploy_not_after, deploy_not_before)}

        async def send() -> EnrollmentStatus:
            reply = await self._session.call("POST", "/cps/v2/enrollments", kind=CallKind.CREATE,
                                             accept=media.ENROLLMENT_STATUS, content_type=media.ENROLLMENT,
                                             body=data, params=params)
            return _written(EnrollmentStatus, reply, "POST", "/cps/v2/enrollments")

        async def settle(ambiguous: AmbiguousWrite) -> EnrollmentStatus | None:
            if before is None:
                raise WriteOutcomeUnknown.of(ambiguous.error)
            return await self._created_meanwhile(contract_id, cn, before, ambiguous)

        return await self._settled(send, settle)

    async def _created_meanwhile(self, contract_id: str, cn: str, before: set[int],
                                 ambiguous: AmbiguousWrite) -> EnrollmentStatus | None:
        new = [e for e in await self.find_enrollments_by_cn(contract_id, cn) if e.enrollment_id not in before]
        if not new and not ambiguous.landed:
            return None
        if len(new) != 1:
            log.warning("cps create: answer lost and %d new enrollments for CN %s; not resolved", len(new), cn)
            raise WriteOutcomeUnknown.of(ambiguous.error)
        enrollment = new[0]
        log.info("cps create: answer lost; found enrollment %d for CN %s", enrollment.enrollment_id, cn)
        return EnrollmentStatus(
            enrollment=enrollment.location or enrollment_path(enrollment.enrollment_id),
            changes=[p.location for p in enrollment.pending_changes or []],
        )

    async def update_enrollment(self, eid: int, body: Mapping[str, Any] | Enrollment, *,
                                allow_cancel_pending_changes: bool = False, allow_staging_bypass: bool = False,
                                force_renewal: bool = False, renewal_date_check_override: bool = False,
                                allow_missing_certificate_addition: bool = False,
                                deploy_not_after: DateLike | None = None,
                                deploy_not_before: DateLike | None = None) -> EnrollmentStatus:
        params = {
            **_flags(allow_cancel_pending_changes=allow_cancel_pending_changes,
                     allow_staging_bypass=allow_staging_bypass, force_renewal=force_renewal,
                     renewal_date_check_override=renewal_date_check_override,
                     allow_missing_certificate_addition=allow_missing_certificate_addition),
            **_dates(deploy_not_after, deploy_not_before),
        }
        path = enrollment_path(eid)
        data = _enrollment_body(body)
        # The pending changes before the PUT: after an ambiguous failure, a new one is the PUT's.
        before = set((await self.get_enrollment(eid)).pending_change_ids)

        async def send() -> EnrollmentStatus:
            reply = await self._session.call("PUT", path, kind=CallKind.REPLACE, accept=media.ENROLLMENT_STATUS,
                                             content_type=media.ENROLLMENT, body=data, params=params)
            return _written(EnrollmentStatus, reply, "PUT", path)

        async def settle(ambiguous: AmbiguousWrite) -> EnrollmentStatus | None:
            pending = (await self.get_enrollment(eid)).pending_changes or []
            opened = [c.location for c in pending if c.change_id not in before]
            if opened or ambiguous.landed:
                log.info("cps update: answer lost; enrollment %d has %d new change(s)", eid, len(opened))
                return EnrollmentStatus(enrollment=path, changes=opened)
            return None  # no change opened: it did not land (or needed none, and repeating it is harmless)

        return await self._settled(send, settle)

    async def delete_enrollment(self, eid: int, *, allow_cancel_pending_changes: bool = False,
                                deploy_not_after: DateLike | None = None,
                                deploy_not_before: DateLike | None = None) -> EnrollmentStatus:
        """DELETE; after an ambiguous failure an enrollment that is gone counts as deleted."""
        params = {**_flags(allow_cancel_pending_changes=allow_cancel_pending_changes),
                  **_dates(deploy_not_after, deploy_not_before)}
        path = enrollment_path(eid)
        gone = EnrollmentStatus(enrollment=path, changes=[])
        sent = 0

        async def send() -> EnrollmentStatus:
            nonlocal sent
            sent += 1
            try:
                reply = await self._session.call("DELETE", path, kind=CallKind.REPLACE,
                                                 accept=media.ENROLLMENT_STATUS, params=params)
            except NotFound:
                if sent == 1:
                    raise
                return gone  # an earlier attempt deleted it
            return _written(EnrollmentStatus, reply, "DELETE", path)

        async def settle(ambiguous: AmbiguousWrite) -> EnrollmentStatus | None:
            if ambiguous.landed:
                return gone
            try:
                await self.get_enrollment(eid)
            except NotFound:
                return gone
            return None  # still there: another DELETE asks for the same end state

        return await self._settled(send, settle)

    # --- changes ----------------------------------------------------------------------------------

    async def get_change(self, eid: int, cid: int) -> Change:
        return await self._get(change_path(eid, cid), media.CHANGE, Change)

    async def cancel_change(self, eid: int, cid: int) -> ChangeId:
        path = change_path(eid, cid)
        done = ChangeId(change=path)

        async def send() -> ChangeId:
            reply = await self._session.call("DELETE", path, kind=CallKind.REPLACE, accept=media.CHANGE_ID)
            return _written(ChangeId, reply, "DELETE", path)

        async def settle(ambiguous: AmbiguousWrite) -> ChangeId | None:
            if ambiguous.landed:
                return done
            try:
                change = await self.get_change(eid, cid)
            except NotFound:
                return done
            return done if change.state == "cancelled" else None

        return await self._settled(send, settle)

    async def get_deployment_schedule(self, eid: int, cid: int) -> DeploymentSchedule:
        return await self._get(f"{change_path(eid, cid)}/deployment-schedule", media.DEPLOYMENT_SCHEDULE,
                               DeploymentSchedule)

    async def update_deployment_schedule(self, eid: int, cid: int, not_before: str | None,
                                         not_after: str | None) -> ChangeId:
        path = f"{change_path(eid, cid)}/deployment-schedule"

        async def send() -> ChangeId:
            reply = await self._session.call("PUT", path, kind=CallKind.REPLACE, accept=media.CHANGE_ID,
                                             content_type=media.DEPLOYMENT_SCHEDULE,
                                             body={"notBefore": not_before, "notAfter": not_after})
            return _written(ChangeId, reply, "PUT", path)

        async def settle(ambiguous: AmbiguousWrite) -> ChangeId | None:
            # The same schedule again asks for the same end state.
            return ChangeId(change=change_path(eid, cid)) if ambiguous.landed else None

        return await self._settled(send, settle)

    # --- change inputs (CPS-API.md 5.3) -------------------------------------------------------

    async def _info(self, eid: int, cid: int, segment: str, accept: str, model: type[M]) -> M:
        return await self._get(f"{change_path(eid, cid)}/input/info/{segment}", accept, model)

    async def _update(self, eid: int, cid: int, segment: str, content_type: str, body: dict[str, Any]) -> ChangeId:
        """POST an input; ``WriteOutcomeUnknown`` when it may or may not have been taken (the
        caller re-reads the change: an input still asked for was not taken)."""
        path = f"{change_path(eid, cid)}/input/update/{segment}"
        try:
            reply = await self._session.call("POST", path, kind=CallKind.INPUT, accept=media.CHANGE_ID,
                                             content_type=content_type, body=body)
        except AmbiguousWrite as ambiguous:
            if ambiguous.landed:  # CPS took it; only its (unused) answer is unreadable
                return ChangeId(change=change_path(eid, cid))
            raise WriteOutcomeUnknown.of(ambiguous.error) from None
        # Any 2xx means CPS took the input. Its answer is only a link back to the change, which
        # the caller re-reads anyway; production answers some updates with 200/204 and no body
        # (Akamai's Go client accepts 200, 202 and 204 and never reads it), so it is not required.
        try:
            return ChangeId.model_validate(reply.body)
        except ValidationError:
            log.debug("cps %s: answered %d without a change link; taken", path, reply.status)
            return ChangeId(change=change_path(eid, cid))

    @staticmethod
    def _ack(acknowledge: bool) -> dict[str, Any]:
        return {"acknowledgement": "acknowledge" if acknowledge else "deny"}

    async def get_dv_challenges(self, eid: int, cid: int) -> DvChallenges:
        return await self._info(eid, cid, "lets-encrypt-challenges", media.DV_CHALLENGES, DvChallenges)

    async def acknowledge_dv_challenges(self, eid: int, cid: int) -> ChangeId:
        """Tell CPS the challenges are published (optional: CPS also checks by itself)."""
        return await self._update(eid, cid, "lets-encrypt-challenges-completed", media.ACKNOWLEDGEMENT,
                                  self._ack(True))

    async def get_third_party_csrs(self, eid: int, cid: int) -> Csrs:
        return await self._info(eid, cid, "third-party-csr", media.CSR, Csrs)

    async def upload_third_party_certificates(self, eid: int, cid: int,
                                              certs: list[CertificateAndTrustChain]) -> ChangeId:
        body = {"certificatesAndTrustChains": [c.to_wire() for c in certs]}
        return await self._update(eid, cid, "third-party-cert-and-trust-chain",
                                  media.CERTIFICATE_AND_TRUST_CHAIN, body)

    async def get_pre_verification_warnings(self, eid: int, cid: int) -> Warnings:
        return await self._info(eid, cid, "pre-verification-warnings", media.WARNINGS, Warnings)

    async def acknowledge_pre_verification_warnings(self, eid: int, cid: int,
                                                    acknowledge: bool = True) -> ChangeId:
        return await self._update(eid, cid, "pre-verification-warnings-ack", media.ACKNOWLEDGEMENT,
                                  self._ack(acknowledge))

    async def get_post_verification_warnings(self, eid: int, cid: int) -> Warnings:
        return await self._info(eid, cid, "post-verification-warnings", media.WARNINGS, Warnings)

    async def acknowledge_post_verification_warnings(self, eid: int, cid: int,
                                                     acknowledge: bool = True) -> ChangeId:
        return await self._update(eid, cid, "post-verification-warnings-ack", media.ACKNOWLEDGEMENT,
                                  self._ack(acknowledge))

    async def get_change_management_info(self, eid: int, cid: int) -> ChangeManagementInfo:
        return await self._info(eid, cid, "change-management-info", media.CHANGE_MANAGEMENT_INFO,
                                ChangeManagementInfo)

    async def get_change_management_deployment(self, eid: int, cid: int) -> Deployment:
        """The certificate waiting on staging: same URL as the info, asked as a deployment."""
        return await self._info(eid, cid, "change-management-info", media.DEPLOYMENT, Deployment)

    async def acknowledge_change_management(self, eid: int, cid: int, validation_hash: str | None = None,
                                            acknowledge: bool = True) -> ChangeId:
        """Let the certificate go to production; with the hash, only if it is still what was read."""
        body = self._ack(acknowledge)
        if validation_hash is None:
            return await self._update(eid, cid, "change-management-ack", media.ACKNOWLEDGEMENT, body)
        return await self._update(eid, cid, "change-management-ack", media.ACKNOWLEDGEMENT_WITH_HASH,
                                  {**body, "hash": validation_hash})

    # --- deployments and history ------------------------------------------------------------------

    async def get_deployments(self, eid: int) -> Deployments:
        return await self._get(f"{enrollment_path(eid)}/deployments", media.DEPLOYMENTS, Deployments)

    async def _network(self, eid: int, network: str) -> Deployment | None:
        try:
            return await self._get(f"{enrollment_path(eid)}/deployments/{network}", media.DEPLOYMENT, Deployment)
        except NotFound:
            return None

    async def get_production_deployment(self, eid: int) -> Deployment | None:
        """What production serves, or ``None`` when nothing is deployed there."""
        return await self._network(eid, "production")

    async def get_staging_deployment(self, eid: int) -> Deployment | None:
        """What staging serves, or ``None`` when nothing is deployed there."""
        return await self._network(eid, "staging")

    async def get_change_history(self, eid: int, include_all: bool = False) -> ChangeHistory:
        return await self._get(f"{enrollment_path(eid)}/history/changes", media.CHANGE_HISTORY, ChangeHistory,
                               {"includeAll": "true"} if include_all else None)

    async def get_certificate_history(self, eid: int, include_all: bool = False) -> CertificateHistory:
        return await self._get(f"{enrollment_path(eid)}/history/certificates", media.CERTIFICATE_HISTORY,
                               CertificateHistory, {"includeAll": "true"} if include_all else None)

    async def get_dv_history(self, eid: int) -> DvHistory:
        return await self._get(f"{enrollment_path(eid)}/dv-history", media.DV_HISTORY, DvHistory)
