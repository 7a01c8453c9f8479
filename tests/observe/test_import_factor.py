"""import's spec writing and --factor-defaults, offline: enrollments as CPS returns them, a real repository on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from reconciler.config import load_config
from reconciler.cps.mapping import cps_view, observed_view, spec_to_wire
from reconciler.cps.models import Enrollment
from reconciler.observe.factor import propose, spec_body
from reconciler.observe.factor_yaml import add_keys
from reconciler.observe.importer import ImportResult, write_specs
from reconciler.spec.loader import load_specs
from reconciler.state.model import State
from tests.apply.sandbox_rig import CONTRACT, ORG, PERSON, dv_spec, tp_spec


def _enrollment(eid: int, spec: Any) -> Enrollment:
    return Enrollment.model_validate({**spec_to_wire(spec), "id": eid, "location": f"/cps/v2/enrollments/{eid}"})


def _import(root: Path, enrollments: list[Enrollment], *, factor: bool, config_text: str | None) -> ImportResult:
    if config_text is not None:
        (root / "reconcile.yaml").write_text(config_text)
    (root / "specs").mkdir(exist_ok=True)
    config = load_config(cwd=root)
    return write_specs(enrollments, State(), config, CONTRACT, config.specs_dir, factor_defaults=factor)


def _loads_as_cps_holds(root: Path, enrollments: list[Enrollment], result: ImportResult) -> None:
    loaded = {s.spec.name: s.spec for s in load_specs(load_config(cwd=root)).specs}
    for item, enrollment in zip(result.imported, sorted(enrollments, key=lambda e: e.enrollment_id), strict=True):
        assert cps_view(loaded[item.name]) == observed_view(enrollment, contract_id=CONTRACT), item.name


def test_a_default_the_enrollment_lacks_is_pinned_to_null(tmp_path: Path) -> None:
    config = yaml.safe_dump({"defaults": {"admin_contact": {"title": "Head of Operations"},
                                          "csr": {"country_code": "US"}, "organization": {"address_line_two": "Suite 1"}}})
    enrollments = [_enrollment(1, dv_spec())]  # contacts without a title, an empty CSR subject
    result = _import(tmp_path, enrollments, factor=False, config_text=config)
    written = yaml.safe_load(result.imported[0].file.read_text())
    assert written["admin_contact"]["title"] is None and written["csr"] == {"country_code": None}
    assert written["organization"]["address_line_two"] is None
    _loads_as_cps_holds(tmp_path, enrollments, result)


def test_shared_values_are_counted_only_among_the_types_that_have_the_field() -> None:
    docs = [("dv", {"dual_stack": None, "geography": "core", "contract_id": "c"}),
            ("third-party", {"dual_stack": True, "geography": "core", "contract_id": "c"}),
            ("third-party", {"dual_stack": True, "geography": "core", "contract_id": "c"})]
    docs[0][1].pop("dual_stack")
    factoring = propose(docs, {"admin_contact": "scalar"}, None)
    assert factoring.defaults == {("dual_stack",): True, ("geography",): "core"}
    assert factoring.default_contract == "c"
    blocked = propose([("dv", {"admin_contact": {"email": "a"}})] * 2, {"admin_contact": "x", "sni_only": False}, "c")
    assert blocked.defaults == {} and blocked.conflicts == [("admin_contact", "email")]
    assert not propose([("dv", {"sni_only": True})] * 2, {"sni_only": False}, "c").defaults


def test_spec_body_leaves_out_what_defaults_supply_and_drops_emptied_mappings() -> None:
    doc = {"name": "a", "type": "dv", "contract_id": "c", "admin_contact": dict(PERSON), "csr": {},
           "organization": dict(ORG)}
    defaults = {"admin_contact": {**PERSON, "title": "T"}, "organization": {"name": "Other"}}
    body = spec_body(doc, "dv", defaults, "c", factor=True)
    assert body == {"name": "a", "type": "dv", "admin_contact": {"title": None}, "organization": ORG}


def test_mixed_types_factor_type_specific_values_and_plan_loads_unchanged(tmp_path: Path) -> None:
    enrollments = [_enrollment(1, dv_spec("a", "a.example.com")), _enrollment(2, dv_spec("b", "b.example.com")),
                   _enrollment(3, tp_spec("c", "c.example.com")), _enrollment(4, tp_spec("d", "d.example.com"))]
    result = _import(tmp_path, enrollments, factor=True, config_text=None)  # no reconcile.yaml yet
    config = yaml.safe_load((tmp_path / "reconcile.yaml").read_text())
    assert config["default_contract"] == CONTRACT
    assert config["defaults"]["dual_stack"] is True and config["defaults"]["admin_contact"] == PERSON
    third_party = yaml.safe_load((tmp_path / "specs" / "c.example.com.yaml").read_text())
    assert "dual_stack" not in third_party and "admin_contact" not in third_party
    _loads_as_cps_holds(tmp_path, enrollments, result)


def test_a_default_that_would_change_an_existing_spec_stays_in_the_imported_specs(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    existing = {"name": "old", "type": "dv", "common_name": "old.example.com", "contract_id": CONTRACT,
                "admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG}
    (tmp_path / "specs" / "old.yaml").write_text(yaml.safe_dump(existing))
    before = {s.spec.name: s.spec_hash for s in load_specs(load_config(cwd=tmp_path)).specs}
    enrollments = [_enrollment(i, dv_spec(f"n{i}", f"n{i}.example.com", change_management=True, geography="china+core"))
                   for i in (1, 2)]
    result = _import(tmp_path, enrollments, factor=True, config_text="default_contract: " + CONTRACT + "\n")
    assert any("would change existing specs): change_management, geography" in n for n in result.notes), result.notes
    defaults = yaml.safe_load((tmp_path / "reconcile.yaml").read_text())["defaults"]
    assert "change_management" not in defaults and "geography" not in defaults and defaults["organization"] == ORG
    written = yaml.safe_load(result.imported[0].file.read_text())
    assert written["change_management"] is True and written["geography"] == "china+core"
    after = load_specs(load_config(cwd=tmp_path)).specs
    assert {s.spec.name: s.spec_hash for s in after if s.spec.name == "old"} == before
    _loads_as_cps_holds(tmp_path, enrollments, result)


def test_a_flow_style_defaults_mapping_is_not_rewritten(tmp_path: Path) -> None:
    text = "default_contract: " + CONTRACT + "\ndefaults: {geography: core}  # keep me\n"
    enrollments = [_enrollment(i, dv_spec(f"n{i}", f"n{i}.example.com")) for i in (1, 2)]
    result = _import(tmp_path, enrollments, factor=True, config_text=text)
    assert (tmp_path / "reconcile.yaml").read_text() == text
    assert any("write those mappings in block style" in n and "admin_contact.email" in n for n in result.notes)
    assert result.factored == []
    written = yaml.safe_load(result.imported[0].file.read_text())
    assert written["admin_contact"] == PERSON and "geography" not in written and "contract_id" not in written
    _loads_as_cps_holds(tmp_path, enrollments, result)


def test_add_keys_after_a_folded_scalar_and_into_nested_blocks_keeps_every_line() -> None:
    text = ("a:\n  b:\n    c: 1  # one\n  d: >-\n    folded\n    text\n\n# about e\ne: [1]\n")
    edit = add_keys(text, {"a": {"b": {"x": "on"}, "y": {"z": "02142"}}, "f": 2})
    assert edit.refused == []
    assert yaml.safe_load(edit.text) == {"a": {"b": {"c": 1, "x": "on"}, "d": "folded text", "y": {"z": "02142"}},
                                         "e": [1], "f": 2}
    assert [line for line in edit.text.splitlines() if line in text.splitlines()] == text.splitlines()
    refused = add_keys(text, {"e": {"x": 1}})
    assert refused.text == text and refused.refused == [("e", "x")]
