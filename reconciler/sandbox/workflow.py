"""The change state machine (CPS-API.md 5.2 and 5.5) on virtual time.

A change moves through statuses; automatic steps carry a ``due`` time and run when the clock
passes it (at their due time, so histories read as if CPS had done them in the background);
waiting steps name the input they need. Certificate changes go
pre-verification → (pre-verification warnings) → DV validation or third-party upload and
verification → (post-verification warnings) → deploy-staging → (change management) →
deploy-production → complete. Network-only changes skip to deployment.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from reconciler.sandbox import dv, third_party
from reconciler.sandbox.ca import CertificateAuthority
from reconciler.sandbox.engine_config import EngineConfig
from reconciler.sandbox.enrollment_rules import all_names, is_dv
from reconciler.sandbox.looking import TxtLookup
from reconciler.sandbox.problems import bad_request, invalid_state, not_found
from reconciler.sandbox.schedule import DueSchedule
from reconciler.sandbox.store import Json, Store, change_link, iso, parse, pending_change, wire
from reconciler.sandbox.versions import upgrade_certificates
from reconciler.sandbox.views import cm_info, pending_deployment

CERTIFICATE_CHANGES = ("new-certificate", "modify-san", "modify-certificate", "renewal")
NETWORK_CHANGE = "update-network-configuration"

# allowedInput.type -> (info path segment, update path segment, requiredToProceed)
INPUTS: dict[str, tuple[str, str, bool]] = {
    "lets-encrypt-challenges": ("lets-encrypt-challenges", "lets-encrypt-challenges-completed", False),
    "third-party-certificate": ("third-party-csr", "third-party-cert-and-trust-chain", True),
    "pre-verification-warnings-acknowledgement": ("pre-verification-warnings", "pre-verification-warnings-ack", True),
    "post-verification-warnings-acknowledgement": (
        "post-verification-warnings",
        "post-verification-warnings-ack",
        True,
    ),
    "change-management": ("change-management-info", "change-management-ack", True),
}
INFO_SEGMENTS = {info: kind for kind, (info, _, _) in INPUTS.items()}
UPDATE_SEGMENTS = {update: kind for kind, (_, update, _) in INPUTS.items()}
STATUS_INPUT = {
    "wait-review-pre-verification-safety-checks": "pre-verification-warnings-acknowledgement",
    "coodinate-domain-validation": "lets-encrypt-challenges",
    "wait-upload-third-party": "third-party-certificate",
    "wait-review-third-party-cert": "post-verification-warnings-acknowledgement",
    "wait-review-cert-warning": "post-verification-warnings-acknowledgement",
    "wait-ack-change-management": "change-management",
}
DESCRIPTIONS = {
    "pre-verification-safety-checks": "Running safety checks on the requested change.",
    "wait-review-pre-verification-safety-checks": "Waiting for you to review and acknowledge the pre-verification warnings.",
    "coodinate-domain-validation": "Waiting for the domains to be validated with Let's Encrypt.",
    "wait-upload-third-party": "Waiting for you to upload and submit your third party certificate and trust chain.",
    "verify-third-party-cert": "Verifying the uploaded third party certificate.",
    "wait-review-third-party-cert": "Waiting for you to review and acknowledge the post-verification warnings.",
    "wait-review-cert-warning": "Waiting for you to review and acknowledge the certificate warnings.",
    "deploy-staging": "Deploying to the staging network.",
    "wait-ack-change-management": "Waiting for you to acknowledge the change on staging before production.",
    "deploy-production": "Deploying to the production network.",
    "complete": "The change is complete.",
    "cancelled": "The change was cancelled.",
}
CM_DEADLINE_BEFORE_EXPIRY = timedelta(days=7)


def waiting_for(change: Json) -> str | None:
    """The allowedInput type the change waits for, if any."""
    if change["state"] != "awaiting-input":
        return None
    return STATUS_INPUT.get(change["status"])


def change_view(enrollment_id: int, change: Json) -> Json:
    """``change.v2``."""
    link = change_link(enrollment_id, int(change["id"]))
    allowed = []
    kind = waiting_for(change)
    if kind is not None:
        info, update, required = INPUTS[kind]
        allowed.append(
            {
                "type": kind,
                "requiredToProceed": required,
                "info": f"{link}/input/info/{info}",
                "update": f"{link}/input/update/{update}",
            }
        )
    return {
        "statusInfo": {
            "state": change["state"],
            "status": change["status"],
            "description": DESCRIPTIONS.get(change["status"], change["status"]),
            "error": change["error"],
            "deploymentSchedule": {
                "notBefore": wire(change["schedule"]["notBefore"]),
                "notAfter": wire(change["schedule"]["notAfter"]),
            },
        },
        "allowedInput": allowed,
    }


class Workflow:
    """Opens, advances, feeds and cancels changes; owns the rules of every step."""

    def __init__(self, config: EngineConfig, ca: CertificateAuthority, store: Store) -> None:
        self.config = config
        self.ca = ca
        self.store = store
        self.txt_lookup: TxtLookup | None = None
        self._dv_key: rsa.RSAPrivateKey | None = None
        self.schedule = DueSchedule(store, self._next_due)

    def _dv_private_key(self) -> rsa.RSAPrivateKey:
        # DV keys never leave CPS, so clients cannot tell one key per process from one per
        # certificate; generating RSA 2048 for every issuance would dominate test and
        # benchmark time. ``fresh_dv_keys`` restores one key per certificate.
        if self.config.fresh_dv_keys:
            return rsa.generate_private_key(65537, 2048)
        if self._dv_key is None:
            self._dv_key = rsa.generate_private_key(65537, 2048)
        return self._dv_key

    # -- opening and cancelling ----------------------------------------------------------------

    def open(
        self,
        record: Json,
        change_type: str,
        at: datetime,
        *,
        previous_body: Json | None = None,
        schedule: Json | None = None,
        staging_bypass: bool = False,
        pre_warnings: list[str] | None = None,
    ) -> Json:
        """Start a change on the enrollment's current body."""
        change_id = self.store.new_change_id()
        change: Json = {
            "id": change_id,
            "type": change_type,
            "status": "",
            "state": "new",
            "due": None,
            "created": iso(at),
            "updated": iso(at),
            "body": copy.deepcopy(record["body"]),
            "previous_body": copy.deepcopy(previous_body),
            "schedule": schedule or {"notBefore": None, "notAfter": None},
            "staging_bypass": staging_bypass,
            "pre_warnings": pre_warnings or [],
            "post_warnings": [],
            "cm_warnings": [],
            "domains": [],
            "csrs": [],
            "certificates": [],
            "cert_set": None,
            "error": None,
            "ack_deadline": None,
        }
        if change_type == NETWORK_CHANGE:
            live = record["deployments"]["production"] or record["deployments"]["staging"]
            change["certificates"] = copy.deepcopy(live["certificates"])
            change["cert_set"] = live["cert_set"]
        record["changes"][str(change_id)] = change
        checks = self.config.durations.pre_verification
        if change_type != NETWORK_CHANGE and is_dv(change["body"]):
            checks += self.config.durations.challenge_issuance
        self._enter(change, "pre-verification-safety-checks", "running", at, at + timedelta(seconds=checks))
        return change

    def cancel(self, record: Json, change: Json, at: datetime, *, revert: bool) -> None:
        """End a change. ``revert`` restores the body the change's PUT replaced (an explicit
        cancel or a deny); a PUT that supersedes the change keeps its own new body."""
        self._enter(change, "cancelled", "cancelled", at)
        deployments = record["deployments"]
        staged = deployments["staging"]
        if staged is not None and staged.get("change") == change["id"]:
            deployments["staging"] = copy.deepcopy(deployments["production"])
        if revert and change["previous_body"] is not None and record["body"] == change["body"]:
            record["body"] = copy.deepcopy(change["previous_body"])

    # -- time ----------------------------------------------------------------------------------

    def run_due(self, now: datetime) -> None:
        """Run every transition due at or before ``now``, in time order per enrollment (and
        enrollment after enrollment in store order, as a scan of them all would)."""
        for key in self.schedule.due(now):
            self.store.touched[key] = None
            self.run_due_for(self.store.enrollments[key], now)

    def run_due_for(self, record: Json, now: datetime) -> None:
        """Run one enrollment's transitions due at or before ``now``, in time order."""
        for _ in range(10_000):  # a guard; each event moves time or state forward
            event = self._next_event(record)
            if event is None or event[0] > now:
                break
            at, kind = event
            if kind == "delete":
                self.store.remove(int(record["id"]))
                break
            if kind == "renew":
                self.open(record, "renewal", at)
                continue
            change = pending_change(record)
            assert change is not None
            self._step(record, change, at, now)

    def _next_due(self, record: Json) -> datetime | None:
        event = self._next_event(record)
        return None if event is None else event[0]

    def _next_event(self, record: Json) -> tuple[datetime, str] | None:
        events: list[tuple[datetime, str]] = []
        change = pending_change(record)
        if change is not None and change["due"] is not None:
            events.append((parse(change["due"]), "change"))
        if record["delete_at"] is not None:
            events.append((parse(record["delete_at"]), "delete"))
        elif change is None:
            renew_at = self.renewal_start(record)
            if renew_at is not None:
                events.append((renew_at, "renew"))
        return min(events) if events else None

    def renewal_start(self, record: Json) -> datetime | None:
        """When CPS starts renewing a DV certificate by itself (None for third-party)."""
        production = record["deployments"]["production"]
        if production is None or not is_dv(record["body"]):
            return None
        expiry = parse(production["certificates"][0]["expiry"])
        return expiry - timedelta(days=self.config.dv_renewal_days)

    def _enter(self, change: Json, status: str, state: str, at: datetime, due: datetime | None = None) -> None:
        change.update(status=status, state=state, updated=iso(at), due=iso(due) if due else None)

    def _step(self, record: Json, change: Json, at: datetime, now: datetime) -> None:
        status = change["status"]
        if status == "pre-verification-safety-checks":
            if change["pre_warnings"]:
                self._enter(change, "wait-review-pre-verification-safety-checks", "awaiting-input", at)
            else:
                self._after_checks(record, change, at, now)
        elif status == "coodinate-domain-validation":
            if change["state"] == "running":
                self._issue_dv(record, change, at)
            else:
                self._check_domains(record, change, at, now)
        elif status == "verify-third-party-cert":
            if change["post_warnings"]:
                self._enter(change, "wait-review-third-party-cert", "awaiting-input", at)
            else:
                self._start_deploy(change, at)
        elif status == "deploy-staging":
            self._staged(record, change, at)
        elif status == "wait-ack-change-management":  # the acknowledgement deadline passed
            self._deploy_production(change, at)
        elif status == "deploy-production":
            self._completed(record, change, at)
        else:  # pragma: no cover - every automatic status is handled above
            raise AssertionError(f"no automatic step from {status}")

    # -- steps ---------------------------------------------------------------------------------

    def _after_checks(self, record: Json, change: Json, at: datetime, now: datetime) -> None:
        body = change["body"]
        if change["type"] == NETWORK_CHANGE:
            self._start_deploy(change, at)
        elif not is_dv(body):
            change["csrs"] = third_party.make_csrs(body)
            self._enter(change, "wait-upload-third-party", "awaiting-input", at)
        else:
            reuse = timedelta(days=self.config.dv_authorization_reuse_days)
            domains = []
            for name in all_names(body):
                validated = record["validated_domains"].get(name.lower())
                if validated is not None and parse(validated) + reuse > at:
                    domains.append(dv.reused_domain(name, at, validated))
                else:
                    domains.append(dv.new_domain(name, at))
            change["domains"] = domains
            self._after_domains(change, at, now)

    def _after_domains(self, change: Json, at: datetime, now: datetime) -> None:
        if all(dv.is_valid(d) for d in change["domains"]):
            due = at + timedelta(seconds=self.config.durations.issuance)
            self._enter(change, "coodinate-domain-validation", "running", at, due)
            return
        next_check = None
        if self.config.validation_policy != "trust-ack":
            # After a long jump of the clock, one check now stands for all the missed ones.
            next_check = max(at, now) + timedelta(seconds=self.config.durations.token_check_interval)
        self._enter(change, "coodinate-domain-validation", "awaiting-input", at, next_check)

    def _check_domains(self, record: Json, change: Json, at: datetime, now: datetime,
                       acknowledged: bool = False) -> None:
        for domain in change["domains"]:
            if dv.is_valid(domain):
                continue
            passed, error, by = dv.check(domain, self.config, self.txt_lookup)
            domain["lastCheck"] = iso(at)
            if passed:
                dv.mark_valid(domain, at, by)
                record["validated_domains"][domain["domain"].lower()] = iso(at)
            elif acknowledged:
                # Told to validate and nothing was there: the challenge fails, as Let's Encrypt
                # fails the authorisation; the domain gets new challenges to publish.
                dv.fail_challenges(domain, at, f"The challenge failed when acknowledged: {error}")
            else:
                domain.update(validationStatus="RESPONSE_ERROR", error=error)
        self._after_domains(change, at, now)

    def _issue_dv(self, record: Json, change: Json, at: datetime) -> None:
        body = change["body"]
        key = self._dv_private_key()
        request = third_party.make_csr(body, "RSA", key)
        names = all_names(body)
        leaf, chain = self.ca.issue(
            key.public_key(),
            names[0],
            names[1:],
            not_after=at + timedelta(days=self.config.certificate_days),
            now=at,
        )
        change["certificates"] = [
            {
                "keyAlgorithm": "RSA",
                "certificate": leaf,
                "trustChain": chain,
                "expiry": iso(at + timedelta(days=self.config.certificate_days)),
                "csr": request["csr"],
                "signatureAlgorithm": "SHA-256",
            }
        ]
        change["cert_set"] = change["id"]
        if self.config.post_verification_warnings:
            change["post_warnings"] = [
                f"DNS_NAME_CAA_NOT_VALIDATED: The CAA records of {names[0]} could not be verified."
            ]
            self._enter(change, "wait-review-cert-warning", "awaiting-input", at)
        else:
            self._start_deploy(change, at)

    def _start(self, change: Json, at: datetime) -> datetime:
        not_before = change["schedule"]["notBefore"]
        return max(at, parse(not_before)) if not_before else at

    def _start_deploy(self, change: Json, at: datetime) -> None:
        durations = self.config.durations
        if change["staging_bypass"]:
            self._deploy_production(change, at)
        else:  # a deploy window (notBefore) holds production only: staging deploys at once
            self._enter(change, "deploy-staging", "running", at, at + timedelta(seconds=durations.staging))

    def _deploy_production(self, change: Json, at: datetime) -> None:
        due = self._start(change, at) + timedelta(seconds=self.config.durations.production)
        self._enter(change, "deploy-production", "running", at, due)

    def _deployment(self, record: Json, change: Json, at: datetime) -> Json:
        if change["cert_set"] == change["id"]:
            record["certificate_sets"][str(change["id"])] = {
                "certificates": copy.deepcopy(change["certificates"]),
                "certificateType": change["body"]["certificateType"],
                "ra": change["body"]["ra"],
                "geography": change["body"]["networkConfiguration"]["geography"],
            }
        return {
            "change": change["id"],
            "cert_set": change["cert_set"],
            "certificates": copy.deepcopy(change["certificates"]),
            "body": copy.deepcopy(change["body"]),
            "deployed": iso(at),
        }

    def _staged(self, record: Json, change: Json, at: datetime) -> None:
        record["deployments"]["staging"] = self._deployment(record, change, at)
        if change["type"] in CERTIFICATE_CHANGES and record["body"]["changeManagement"]:
            deadline = None
            production = record["deployments"]["production"]
            if production is not None:
                live_expiry = parse(production["certificates"][0]["expiry"])
                deadline = max(at + timedelta(hours=1), live_expiry - CM_DEADLINE_BEFORE_EXPIRY)
                live_names = {n.lower(): n for n in all_names(production["body"])}
                new_names = {n.lower() for n in all_names(change["body"])}
                removed = [name for key, name in live_names.items() if key not in new_names]
                if removed:
                    text = ", ".join(
                        f"SAN name [{name}] removed from certificate is still live on the network." for name in removed
                    )
                    change["cm_warnings"] = [{"message": f"[{text}]", "messageCode": "no-code"}]
            change["ack_deadline"] = iso(deadline) if deadline else None
            self._enter(change, "wait-ack-change-management", "awaiting-input", at, deadline)
        else:
            self._deploy_production(change, at)

    def _completed(self, record: Json, change: Json, at: datetime) -> None:
        deployment = self._deployment(record, change, at)
        record["deployments"]["production"] = deployment
        if change["staging_bypass"] or record["deployments"]["staging"] is None:
            record["deployments"]["staging"] = copy.deepcopy(deployment)
        self._enter(change, "complete", "completed", at)

    # -- inputs --------------------------------------------------------------------------------

    def info(self, record: Json, change: Json, segment: str, shape: str) -> Json:
        """The document behind an ``input/info/<segment>`` link (404 unless the change waits for it)."""
        kind = INFO_SEGMENTS.get(segment)
        if kind is None or waiting_for(change) != kind:
            raise not_found(f"Change {change['id']} is not waiting for input {segment!r}.")
        if kind == "lets-encrypt-challenges":
            return {"dv": [dv.domain_view(domain) for domain in change["domains"]]}
        if kind == "third-party-certificate":
            return {"csrs": [{"keyAlgorithm": c["keyAlgorithm"], "csr": c["csr"]} for c in change["csrs"]]}
        if kind == "pre-verification-warnings-acknowledgement":
            return {"warnings": "".join(f"{line}\n" for line in change["pre_warnings"])}
        if kind == "post-verification-warnings-acknowledgement":
            return {"warnings": third_party.warnings_text(change["post_warnings"])}
        if shape == "deployment":
            return pending_deployment(change)
        return cm_info(change)

    def update(self, record: Json, change: Json, segment: str, body: Json, now: datetime) -> None:
        """Apply an ``input/update/<segment>`` POST (409 unless the change waits for it)."""
        kind = UPDATE_SEGMENTS.get(segment)
        if kind is None:
            raise not_found(f"Unknown input update {segment!r}.")
        if waiting_for(change) != kind:
            raise invalid_state(
                f"Change {change['id']} is in status {change['status']!r} and does not accept {segment!r} now."
            )
        if kind == "third-party-certificate":
            # certificate-and-trust-chain.v1 carries one certificate: the one for the first CSR.
            first = change["csrs"][0]["keyAlgorithm"] if change["csrs"] else "RSA"
            items = upgrade_certificates(body, first).get("certificatesAndTrustChains")
            if not isinstance(items, list):
                raise bad_request("certificatesAndTrustChains must be a list.")
            standard = frozenset({self.ca.root.fingerprint(hashes.SHA256())})
            certificates, findings = third_party.verify_upload(change["body"], change["csrs"], items, now, standard)
            change.update(certificates=certificates, post_warnings=findings, cert_set=change["id"])
            due = now + timedelta(seconds=self.config.durations.third_party_verification)
            self._enter(change, "verify-third-party-cert", "running", now, due)
            return
        answer = body.get("acknowledgement")
        if answer == "deny":
            self.cancel(record, change, now, revert=True)
            return
        if answer != "acknowledge":
            raise bad_request("acknowledgement must be 'acknowledge' or 'deny'.")
        if kind == "lets-encrypt-challenges":
            self._check_domains(record, change, now, now, acknowledged=True)
        elif kind == "pre-verification-warnings-acknowledgement":
            self._after_checks(record, change, now, now)
        elif kind == "post-verification-warnings-acknowledgement":
            self._start_deploy(change, now)
        else:
            expected = cm_info(change)["validationResultHash"]
            if body.get("hash") is not None and body["hash"] != expected:
                raise invalid_state("The hash does not match the current change-management info; read it again.")
            self._deploy_production(change, now)
