"""Each rule in reconciler.spec.validate with a passing and a failing case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from reconciler.spec.models import EnrollmentSpec
from reconciler.spec.validate import MAX_SANS, RepoEntry, check_repo, check_spec

ANY: TypeAdapter[Any] = TypeAdapter(EnrollmentSpec)


def _errors(spec_data: dict[str, Any], root: Path) -> list[tuple[str, str]]:
    return [(".".join(map(str, f.path)), f.message) for f in check_spec(ANY.validate_python(spec_data), root)
            if f.severity == "error"]


def _warnings(spec_data: dict[str, Any], root: Path) -> list[tuple[str, str]]:
    return [(".".join(map(str, f.path)), f.message) for f in check_spec(ANY.validate_python(spec_data), root)
            if f.severity == "warning"]


def test_minimal_specs_pass(make_spec: Any, tmp_path: Path) -> None:
    assert _errors(make_spec(), tmp_path) == []
    assert _errors(make_spec(type="third-party"), tmp_path) == []


def test_san_limit(make_spec: Any, tmp_path: Path) -> None:
    names = [f"h{i}.example.com" for i in range(MAX_SANS - 1)]
    assert _errors(make_spec(sans=names), tmp_path) == []  # 99 + the CN = 100
    assert _errors(make_spec(sans=[*names, "one-more.example.com"]), tmp_path) == [
        ("sans", "101 names (common name included); CPS allows at most 100")]


def test_duplicate_sans(make_spec: Any, tmp_path: Path) -> None:
    assert _errors(make_spec(sans=["a.example.com", "www.example.com"]), tmp_path) == []
    assert _errors(make_spec(sans=["a.example.com", "b.example.com", "A.EXAMPLE.COM"]), tmp_path) == [
        ("sans.2", "'a.example.com' is listed twice (first as sans[0])")]


def test_wildcards_per_validation_type(make_spec: Any, tmp_path: Path) -> None:
    wild = {"sans": ["*.example.com"]}
    assert _errors(make_spec(**wild), tmp_path) == []  # dns-01 is the default
    assert _errors(make_spec(**wild, validation={"method": "http-01"}), tmp_path) == [
        ("sans.0", "wildcard '*.example.com' needs validation.method: dns-01 "
                   "(Let's Encrypt validates wildcards only over DNS)")]
    assert _errors(make_spec(common_name="*.example.com", sans=[], validation={"method": "http-01"}), tmp_path)[0][0] \
        == "common_name"
    assert _errors(make_spec(type="third-party", **wild), tmp_path) == []


def test_dns_name_settings(make_spec: Any, tmp_path: Path) -> None:
    ok = {"clone_dns_names": False, "dns_names": ["example.com"]}
    assert _errors(make_spec(network_configuration=ok), tmp_path) == []
    assert _errors(make_spec(sni_only=False, network_configuration=ok), tmp_path) == [
        ("network_configuration.dns_names", "DNS name settings apply only to sni_only: true enrollments"),
        ("network_configuration.clone_dns_names", "DNS name settings apply only to sni_only: true enrollments")]
    assert _errors(make_spec(network_configuration={"dns_names": ["example.com"]}), tmp_path) == [
        ("network_configuration.dns_names", "dns_names is used only with clone_dns_names: false")]
    assert _errors(make_spec(network_configuration={"clone_dns_names": False}), tmp_path) == [
        ("network_configuration.dns_names", "clone_dns_names is false, so list the names to serve here")]
    assert _errors(make_spec(network_configuration={"clone_dns_names": False, "dns_names": ["x.example.com"]}),
                   tmp_path) == [("network_configuration.dns_names.0",
                                  "'x.example.com' is not one of the certificate's names")]


def test_tls_and_fips(make_spec: Any, tmp_path: Path) -> None:
    nc = {"disallowed_tls_versions": ["TLSv1", "TLSv1_1", "TLSv1_2"], "fips_mode": True}
    assert _errors(make_spec(network_configuration=nc), tmp_path) == []
    nc["disallowed_tls_versions"] = ["TLSv1_2", "TLSv1_3"]
    assert _errors(make_spec(network_configuration=nc), tmp_path) == [
        ("network_configuration.fips_mode", "FIPS mode needs TLSv1_2 or TLSv1_3 allowed")]
    nc["disallowed_tls_versions"] = ["TLSv1", "TLSv1_1", "TLSv1_2", "TLSv1_3"]
    assert _errors(make_spec(network_configuration=nc), tmp_path) == [
        ("network_configuration.disallowed_tls_versions", "every TLS version is disallowed")]


@pytest.mark.parametrize("validation,expected", [
    ({"publisher": "hook"}, [("validation.publisher", "publisher hook needs validation.hook.publish")]),
    ({"publisher": "rfc2136"}, [("validation.publisher", "publisher rfc2136 needs validation.rfc2136 (server, zone)")]),
    ({"publisher": "edgedns"}, [("validation.publisher", "publisher edgedns needs validation.edgedns.zone")]),
    ({"method": "http-01", "publisher": "edgedns", "edgedns": {"zone": "example.com"}},
     [("validation.method", "publisher edgedns publishes DNS records; http-01 needs publisher hook or manual")]),
    ({"publisher": "rfc2136", "rfc2136": {"server": "192.0.2.1", "zone": "example.com", "tsig_key_name": "k"}},
     [("validation.rfc2136", "set both tsig_key_name and tsig_secret_env, or neither")]),
    ({"publisher": "hook", "hook": {"publish": "./p.sh"}}, []),
    ({"method": "http-01", "publisher": "hook", "hook": {"publish": "./p.sh"}}, []),
    ({"publisher": "rfc2136", "rfc2136": {"server": "192.0.2.1", "zone": "example.com.", "tsig_key_name": "k",
                                          "tsig_secret_env": "TSIG"}}, []),
    ({"publisher": "edgedns", "edgedns": {"zone": "example.com"}}, []),
])
def test_publisher_settings(make_spec: Any, tmp_path: Path, validation: dict[str, Any],
                            expected: list[tuple[str, str]]) -> None:
    assert _errors(make_spec(validation=validation), tmp_path) == expected


def test_unused_publisher_settings_warn(make_spec: Any, tmp_path: Path) -> None:
    spec = make_spec(validation={"publisher": "manual", "hook": {"publish": "x"}})
    assert _errors(spec, tmp_path) == []
    assert _warnings(spec, tmp_path) == [("validation.hook", "ignored: publisher is manual")]


def test_third_party_key_types(make_spec: Any, tmp_path: Path) -> None:
    rsa = {"certificate": "certs/r.pem"}
    assert _errors(make_spec(type="third-party", dual_stack=False, certificates={"rsa": rsa}), tmp_path) == []
    assert _errors(make_spec(type="third-party", certificates={"rsa": rsa}), tmp_path) == [
        ("certificates.ecdsa", "dual_stack is true (the default), so an ECDSA certificate is needed too")]
    assert _errors(make_spec(type="third-party", dual_stack=False, certificates={"rsa": rsa, "ecdsa": rsa}),
                   tmp_path) == [("certificates.ecdsa", "set dual_stack: true to use an ECDSA certificate")]
    assert _errors(make_spec(type="third-party", dual_stack=False, certificates={}), tmp_path) == [
        ("certificates.rsa", "an RSA certificate is always needed")]


def test_trust_chain_choice_is_dv_only(make_spec: Any, tmp_path: Path) -> None:
    csr = {"preferred_trust_chain": "intermediate-a"}
    assert _errors(make_spec(csr=csr), tmp_path) == []
    assert _errors(make_spec(type="third-party", csr=csr), tmp_path) == [
        ("csr.preferred_trust_chain", "only DV enrollments choose a trust chain")]


def test_contract_required(make_spec: Any, tmp_path: Path) -> None:
    assert _errors(make_spec(contract_id=None), tmp_path) == [
        ("contract_id", "required: set it here, or default_contract in reconcile.yaml")]


def test_change_management_acknowledgement_without_change_management_warns(make_spec: Any, tmp_path: Path) -> None:
    assert _warnings(make_spec(change_management=True, acknowledge_change_management=True), tmp_path) == []
    assert _warnings(make_spec(acknowledge_change_management=True), tmp_path) == [
        ("acknowledge_change_management", "has no effect without change_management: true")]


def _entries(*specs: dict[str, Any]) -> list[RepoEntry]:
    return [RepoEntry(ANY.validate_python(s), f"f.yaml:{i + 1}") for i, s in enumerate(specs)]


def test_unique_names(make_spec: Any) -> None:
    assert check_repo(_entries(make_spec(name="a"), make_spec(name="b", common_name="b.example.com"))) == []
    found = check_repo(_entries(make_spec(name="a"), make_spec(name="a", common_name="b.example.com")))
    assert [(i, f.path, f.message) for i, f in found] == [(1, ("name",), "'a' is already used by f.yaml:1")]


def test_unique_common_name_per_contract(make_spec: Any) -> None:
    a, b = make_spec(name="a"), make_spec(name="b")
    assert [i for i, _ in check_repo(_entries(a, b))] == [0, 1]
    assert check_repo(_entries(a, make_spec(name="b", contract_id="ctr_other"))) == []
    both = {"allow_duplicate_common_name": True}
    assert check_repo(_entries(make_spec(name="a", **both), make_spec(name="b", **both))) == []
    found = check_repo(_entries(make_spec(name="a", **both), b))
    assert [i for i, _ in found] == [1] and "set allow_duplicate_common_name: true on each" in found[0][1].message
