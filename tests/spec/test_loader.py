from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.cli.validate_cmd import summary
from reconciler.config import load_config
from reconciler.errors import SpecError
from reconciler.spec.loader import check_specs, format_path, load_specs, spec_hash
from reconciler.spec.models import DvEnrollmentSpec, ThirdPartyEnrollmentSpec

CONFIG = """\
default_contract: ctr_1-TEST
variables: {domain: example.com, hosts: [a, b]}
defaults:
  admin_contact: {first_name: Ada, last_name: Lovelace, email: ada@example.com, phone: "1"}
  tech_contact: {first_name: Bob, last_name: B, email: bob@example.com, phone: "2"}
  organization: {name: Ex, phone: "1", address_line_one: St 1, city: C, region: R, postal_code: "1",
                 country_code: US}
  network_configuration: {ocsp_stapling: "off", must_have_ciphers: ak-akamai-2023q1}
  validation: {method: dns-01}
  dual_stack: false
publishers:
  hook: {publish: "echo shared", timeout: 5}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "reconcile.yaml").write_text(CONFIG)
    (tmp_path / "specs").mkdir()
    return tmp_path


def _write(repo: Path, name: str, text: str) -> Path:
    path = repo / "specs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _issues(repo: Path, paths: list[Path] | None = None) -> list[str]:
    return [str(i) for i in check_specs(load_config(cwd=repo), paths).issues]


def test_format_path() -> None:
    assert format_path(("sans", 3)) == "sans[3]"
    assert format_path(("admin_contact", "email")) == "admin_contact.email"
    assert format_path(()) == ""


def test_defaults_are_merged_under_specs_and_spec_wins(repo: Path) -> None:
    _write(repo, "a.yaml", "name: a\ntype: dv\ncommon_name: a.{{ domain }}\n"
                           "network_configuration: {ocsp_stapling: \"on\"}\n")
    _write(repo, "b.yaml", "name: b\ntype: third-party\ncommon_name: b.example.com\ncontract_id: ctr_other\n")
    loaded = load_specs(load_config(cwd=repo)).by_name()
    a, b = loaded["a"].spec, loaded["b"].spec
    assert isinstance(a, DvEnrollmentSpec) and isinstance(b, ThirdPartyEnrollmentSpec)
    assert a.admin_contact.email == "ada@example.com" and a.contract_id == "ctr_1-TEST"
    # nested mappings merge key by key; the spec's own value wins
    assert a.network_configuration.ocsp_stapling == "on"
    assert a.network_configuration.must_have_ciphers == "ak-akamai-2023q1"
    # type-specific defaults reach only their type: dual_stack -> third-party, validation -> dv
    assert b.dual_stack is False and b.contract_id == "ctr_other"


def test_publisher_settings_merge_under_the_chosen_publisher(repo: Path) -> None:
    _write(repo, "a.yaml", "name: a\ntype: dv\ncommon_name: a.example.com\n"
                           "validation: {publisher: hook, hook: {timeout: 9}}\n")
    _write(repo, "b.yaml", "name: b\ntype: dv\ncommon_name: b.example.com\n")
    loaded = load_specs(load_config(cwd=repo)).by_name()
    a, b = loaded["a"].spec, loaded["b"].spec
    assert isinstance(a, DvEnrollmentSpec) and isinstance(b, DvEnrollmentSpec)
    assert a.validation.hook is not None
    assert (a.validation.hook.publish, a.validation.hook.timeout) == ("echo shared", 9)
    assert b.validation.hook is None  # manual publisher: no hook settings merged in


def test_errors_in_defaults_point_at_reconcile_yaml(repo: Path) -> None:
    (repo / "reconcile.yaml").write_text(CONFIG.replace("email: ada@example.com", "email: nobody"))
    _write(repo, "a.yaml", "name: a\ntype: dv\ncommon_name: a.example.com\n")
    _write(repo, "b.yaml", "name: b\ntype: dv\ncommon_name: b.example.com\n")
    # one issue, not one per spec, located in reconcile.yaml
    assert _issues(repo) == ["reconcile.yaml:4: admin_contact.email: 'nobody' is not a valid email address "
                             "(An email address must have an @-sign)"]


def test_unknown_keys_in_defaults_are_errors_not_dropped(repo: Path) -> None:
    (repo / "reconcile.yaml").write_text(CONFIG.replace("defaults:\n", "defaults:\n  sni_onyl: true\n"))
    _write(repo, "a.yaml", "name: a\ntype: dv\ncommon_name: a.example.com\n")
    assert _issues(repo) == ["reconcile.yaml:4: sni_onyl: unknown field 'sni_onyl'; did you mean 'sni_only'?"]


def test_multi_document_and_list_files(repo: Path) -> None:
    _write(repo, "multi.yaml", "name: a\ntype: dv\ncommon_name: a.example.com\n---\n"
                               "- name: b\n  type: dv\n  common_name: b.example.com\n"
                               "- name: c\n  type: dv\n  common_name: c.example.com\n")
    loaded = load_specs(load_config(cwd=repo))
    assert [(s.name, s.file, s.line) for s in loaded.specs] == [
        ("a", "specs/multi.yaml", 1), ("b", "specs/multi.yaml", 5), ("c", "specs/multi.yaml", 8)]
    assert loaded.specs[2].locate(("common_name",)) == ("specs/multi.yaml", 10)
    assert loaded.specs[2].locate(("nope", 1)) == ("specs/multi.yaml", 8)


def test_discovery_yaml_yml_nested_and_hidden(repo: Path) -> None:
    _write(repo, "a.yaml", "name: a\ntype: dv\ncommon_name: a.example.com\n")
    _write(repo, "sub/b.yml", "name: b\ntype: dv\ncommon_name: b.example.com\n")
    _write(repo, ".hidden/c.yaml", "this: would fail\n")
    _write(repo, ".d.yaml", "this: would fail\n")
    _write(repo, "notes.txt", "ignored\n")
    report = check_specs(load_config(cwd=repo))
    assert report.files == 2 and [s.name for s in report.specs] == ["a", "b"] and report.issues == []
    only = check_specs(load_config(cwd=repo), [repo / "specs" / "sub" / "b.yml"])
    assert [s.name for s in only.specs] == ["b"]


def test_missing_specs_dir_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "reconcile.yaml").write_text("parallelism: 2\n")
    assert [str(i) for i in check_specs(load_config(cwd=tmp_path)).issues] == [
        "specs: no such specs directory (specs_dir)"]


def test_all_errors_at_once_in_file_order(repo: Path) -> None:
    _write(repo, "a.yaml", "name: a\ntype: dv\ncommon_name: a.example.com\nsans: [ok.example.com, 'bad name']\n"
                           "geography: mars\n")
    _write(repo, "b.yaml", "name: b\ntype: dv\ncommon_name: {{ nope }}\n")
    _write(repo, "c.yaml", "name: c\ntype: dv\ncommon_name: c.example.com\ncommon_name: again.example.com\n")
    with pytest.raises(SpecError) as info:
        load_specs(load_config(cwd=repo))
    assert [(i.file, i.line, i.field) for i in info.value.issues] == [
        ("specs/a.yaml", 4, "sans[1]"), ("specs/a.yaml", 5, "geography"),
        ("specs/b.yaml", 3, ""), ("specs/c.yaml", 4, "")]
    assert "specs/b.yaml:3: template error: 'nope' is undefined" in str(info.value)


def test_template_line_count_change_is_noted(repo: Path) -> None:
    _write(repo, "a.yaml", "name: a\ntype: dv\ncommon_name: a.example.com\nsans:\n"
                           "{% for h in hosts %}\n  - {{ h }}.example.com\n{% endfor %}\n  - x y.example.com\n")
    [issue] = _issues(repo)
    assert issue.startswith("specs/a.yaml:8: sans[2]: 'x y.example.com' is not a valid hostname")
    assert not issue.endswith("(line approximate: the template changes the line count)")  # line 8 aligns exactly


def test_not_utf8_and_non_mapping_documents(repo: Path) -> None:
    (repo / "specs" / "bin.yaml").write_bytes(b"name: \xff\xfe\n")
    _write(repo, "scalar.yaml", "---\n42\n")
    issues = _issues(repo)
    assert issues[0] == "specs/bin.yaml:1: not UTF-8: byte 0xff cannot be decoded (invalid start byte); save the file as UTF-8"
    assert issues[1] == ("specs/scalar.yaml:2: expected an enrollment (a mapping of fields) or a list of "
                         "enrollments, got int")


def test_notices_hash_and_waiting(repo: Path) -> None:
    _write(repo, "t.yaml", "name: t\ntype: third-party\ncommon_name: t.example.com\n")
    loaded = load_specs(load_config(cwd=repo))
    [spec] = loaded.specs
    assert spec.waiting == ("rsa",)
    assert [n.severity for n in loaded.notices] == ["info"]
    assert str(loaded.notices[0]).startswith("specs/t.yaml:1: certificates.rsa.certificate: waiting for certificate")
    assert spec.spec_hash == spec_hash(spec.spec) and len(spec.spec_hash) == 64
    changed = spec.spec.model_copy(update={"prevent_destroy": True})
    assert spec_hash(changed) != spec.spec_hash


def test_missing_contract_without_default(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "reconcile.yaml").write_text(CONFIG.replace("default_contract: ctr_1-TEST\n", ""))
    (tmp_path / "specs" / "a.yaml").write_text("name: a\ntype: dv\ncommon_name: a.example.com\n")
    assert _issues(tmp_path) == ["specs/a.yaml:1: contract_id: required: set it here, or default_contract "
                                 "in reconcile.yaml"]


def test_examples_in_fixture_config(make_spec: Any) -> None:
    # the fixture config's valid specs load as LoadedSpecs; guards the fixture the CLI tests rely on
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "specs"
    loaded = load_specs(load_config(fixtures / "reconcile.yaml"))
    assert sorted(loaded.by_name()) == ["shop", "www-example-com"]


def test_errors_are_capped_per_file_with_a_count_of_the_rest(repo: Path) -> None:
    _write(repo, "many.yaml", "".join(f"- {i}\n" for i in range(250)))
    _write(repo, "one.yaml", "- 1\n")
    issues = _issues(repo)
    many = [i for i in issues if i.startswith("specs/many.yaml")]
    assert len(many) == 101 and many[99].startswith("specs/many.yaml:100: expected an enrollment")
    assert many[100] == "specs/many.yaml: 150 more errors in this file are not shown; fix these first"
    assert "specs/one.yaml:1: expected an enrollment (a mapping of fields) or a list of enrollments, got int" in issues
    report = check_specs(load_config(cwd=repo))
    assert report.error_count == 251 and report.hidden_errors == {"specs/many.yaml": 150}
    assert summary(report).startswith("251 errors in 2 files")  # the "150 more" line is not an error


def test_symlinked_spec_files_must_stay_in_the_repository(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside") / "evil.yaml"
    outside.write_text("name: evil\ntype: dv\ncommon_name: evil.example.com\n")
    (repo / "specs" / "evil.yaml").symlink_to(outside)
    _write(repo, "real/www.yaml", "name: www\ntype: dv\ncommon_name: www.example.com\n")
    (repo / "specs" / "alias.yaml").symlink_to(repo / "specs" / "real" / "www.yaml")  # inside: read once
    (repo / "specs" / "dangling.yaml").symlink_to(repo / "nowhere.yaml")
    issues = sorted(_issues(repo))
    assert issues == ["specs/dangling.yaml: is a broken or looping symlink",
                      f"specs/evil.yaml: is a symlink to {outside.resolve()}, outside the repository; specs must live in it"]


def test_renewal_window_from_defaults_and_too_late_a_window_refused(repo: Path) -> None:
    (repo / "reconcile.yaml").write_text(CONFIG.replace("  dual_stack: false\n",
                                                        "  dual_stack: false\n  renewal: {before_expiry: 30d}\n"))
    _write(repo, "dv.yaml", "name: dv\ntype: dv\ncommon_name: dv.example.com\n")
    _write(repo, "tp.yaml", "name: tp\ntype: third-party\ncommon_name: tp.example.com\n")
    _write(repo, "tok.yaml", "name: tok\ntype: third-party\ncommon_name: tok.example.com\n"
                             "renewal: {before_expiry: 6w, token: 2026-12-key-rotation}\n")
    loaded = load_specs(load_config(cwd=repo)).by_name()
    tp, tok = loaded["tp"].spec, loaded["tok"].spec
    assert isinstance(tp, ThirdPartyEnrollmentSpec) and isinstance(tok, ThirdPartyEnrollmentSpec)
    assert tp.renewal.before_expiry == 30.0 and tp.renewal.token is None
    assert tok.renewal.before_expiry == 42.0 and tok.renewal.token == "2026-12-key-rotation"
    bad = _write(repo, "late.yaml", "name: late\ntype: third-party\ncommon_name: late.example.com\n"
                                    "renewal:\n  before_expiry: 7d\n")
    issues = _issues(repo, [bad])
    assert len(issues) == 1 and issues[0].startswith("specs/late.yaml:5: renewal.before_expiry:")
    assert "too late: 7 days before expiry CPS pushes" in issues[0]
