"""A fixed plan with every kind and section, shared by the rendering and saved-plan tests."""

from __future__ import annotations

from reconciler.plan.model import Action, Drift, FieldChange, LiveFacts, PendingInfo, Plan, Unmanaged

CTR = "ctr_1-AB123"


def sample_plan() -> Plan:
    """One plan with every kind and section, fixed values only."""
    sans = FieldChange(path="sans", old=["api.example.com"], new=["api.example.com", "v2.example.com"],
                       field_class="certificate")
    ocsp = FieldChange(path="network_configuration.ocsp_stapling", old="off", new="on", field_class="network")
    actions = (
        Action(name="www", kind="create", reason="new", summary="new dv enrollment for www.example.com",
               contract_id=CTR, common_name="www.example.com", validation="dv", new_certificate=True,
               spec_hash="h-www", facts=LiveFacts(),
               steps=("create enrollment", "publish DV challenges (dns-01 via hook)", "acknowledge DV challenges",
                      "wait for domain validation", "wait for deployment")),
        Action(name="api", kind="update", reason="spec-changed", summary="enrollment 10001: sans",
               contract_id=CTR, common_name="api.example.com", validation="dv", enrollment_id=10001,
               changes=(sans,), new_certificate=True, spec_hash="h-api",
               facts=LiveFacts(enrollment_id=10001, enrollment_hash="fp1"),
               steps=("update enrollment (new certificate)", "wait for deployment")),
        Action(name="shop", kind="update-network", reason="drift", summary="enrollment 10002: ocsp",
               contract_id=CTR, common_name="shop.example.com", validation="third-party", enrollment_id=10002,
               changes=(ocsp,), spec_hash="h-shop", facts=LiveFacts(enrollment_id=10002, enrollment_hash="fp2"),
               steps=("update enrollment (network settings: current certificate redeployed, no new one)",)),
        Action(name="blog", kind="continue", reason="awaiting-input",
               summary="change 20004 waits for lets-encrypt-challenges", contract_id=CTR,
               common_name="blog.example.com", validation="dv", enrollment_id=10004,
               pending=PendingInfo(change_id=20004, status="coodinate-domain-validation", state="awaiting-input",
                                   waiting_for=("lets-encrypt-challenges",), waits_on="apply"),
               steps=("publish DV challenges (dns-01 via hook)", "acknowledge DV challenges")),
        Action(name="cdn", kind="in-progress", reason="waiting-on-cps",
               summary="change 20005: CPS is working (deploy-production)", contract_id=CTR,
               common_name="cdn.example.com", validation="dv", enrollment_id=10005,
               pending=PendingInfo(change_id=20005, status="deploy-production", state="running"),
               steps=("wait for deployment (deploy-production)",)),
        Action(name="old", kind="delete", reason="removed-from-specs",
               summary="enrollment 10006 (old.example.com) is no longer in the specs; deleted after www "
                       "(which take(s) over its names)", contract_id=CTR,
               common_name="old.example.com", enrollment_id=10006, successors=("www",),
               handover=("www.example.com",), dropped_names=("old.example.com",),
               steps=("wait until www serve(s) www.example.com from a deployed certificate",
                      "delete enrollment 10006; old.example.com leave(s) the network", "remove state entry")),
        Action(name="blog2", kind="move", reason="renamed", summary="blog -> blog2: enrollment 10004 (detected: "
               "same CN and contract)", contract_id=CTR, common_name="blog.example.com", validation="dv",
               enrollment_id=10004, moved_from="blog", entry_name="blog",
               steps=("rename state entry blog -> blog2 (nothing changes in CPS)",)),
        Action(name="legacy", kind="replace", reason="immutable-field",
               summary="enrollment 10007: sni_only cannot change in place: a new enrollment replaces it, the old "
                       "one goes only after the new one is deployed", contract_id=CTR,
               common_name="legacy.example.com", validation="dv", enrollment_id=10007, new_certificate=True,
               allow_duplicate_cn=True,
               changes=(FieldChange(path="sni_only", old=True, new=False, field_class="immutable"),),
               steps=("keep enrollment 10007 in state as legacy@10007 (still serving) until the new one is deployed",
                      "create a new enrollment (allow-duplicate-cn: the old one keeps the CN until it goes)",
                      "wait for deployment", "then legacy@10007: see its own action below")),
        Action(name="legacy@10007", kind="delete", reason="replaced",
               summary="enrollment 10007 (legacy.example.com) is replaced by legacy: deleted once legacy is "
                       "deployed", contract_id=CTR, common_name="legacy.example.com", enrollment_id=10007,
               successors=("legacy",), handover=("legacy.example.com",), entry_name="legacy",
               steps=("wait until legacy serve(s) legacy.example.com from a deployed certificate",
                      "delete enrollment 10007", "remove state entry")),
    )
    blocked = (
        Action(name="ghost", kind="adopt", reason="several-same-cn",
               summary="2 unbound enrollment(s) with CN ghost.example.com", contract_id=CTR,
               common_name="ghost.example.com", validation="dv",
               blocked="enrollments 10008, 10009 all have CN ghost.example.com in ctr_1-AB123 and none is bound "
                       "in state: reconciler will not guess which (if any) is this spec's",
               remedy="bind the right one with `reconcile import --contract ctr_1-AB123 --enrollment-id ID`"),
    )
    return Plan(
        created_at="2025-01-02T03:04:05Z", state_lineage="0b6c3f4e-lineage", state_serial=12,
        warnings=("--target limits this plan",), actions=actions, blocked=blocked,
        drift=(Drift(name="shop", kind="changed", enrollment_id=10002, changes=(ocsp,),
                     message="changed outside reconciler; the update below puts the spec back"),),
        unmanaged=(Unmanaged(enrollment_id=9999, common_name="stray.example.com", contract_id=CTR),),
        unchanged=("quiet",),
    )
