from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.spec.certfiles import check_certificate_files, resolve_inside
from reconciler.spec.models import ThirdPartyEnrollmentSpec
from reconciler.x509names import fingerprint

NAMES = ["shop.example.com", "www.shop.example.com"]


def _spec(make_spec: Any, **certs: Any) -> ThirdPartyEnrollmentSpec:
    files = {k: {"certificate": f"certs/{k}.pem", "trust_chain": f"certs/{k}-chain.pem"} for k in certs}
    return ThirdPartyEnrollmentSpec.model_validate(make_spec(
        type="third-party", name="shop", common_name=NAMES[0], sans=NAMES[1:], dual_stack="ecdsa" in certs,
        certificates=files))


def _write(root: Path, key: str, leaf: bytes | None, chain: bytes | None) -> None:
    (root / "certs").mkdir(exist_ok=True)
    if leaf is not None:
        (root / "certs" / f"{key}.pem").write_bytes(leaf)
    if chain is not None:
        (root / "certs" / f"{key}-chain.pem").write_bytes(chain)


def _messages(spec: ThirdPartyEnrollmentSpec, root: Path) -> list[tuple[str, str, str]]:
    return [(".".join(map(str, f.path)), f.severity, f.message) for f in check_certificate_files(spec, root)]


def test_matching_rsa_and_ecdsa_pairs_pass(tmp_path: Path, pki: Any, make_spec: Any) -> None:
    for key in ("rsa", "ecdsa"):
        _write(tmp_path, key, pki.pem(pki.leaf(NAMES, key)), pki.pem(pki.intermediate, pki.root))
    assert _messages(_spec(make_spec, rsa=1, ecdsa=1), tmp_path) == []


def test_missing_files_mean_waiting_not_error(tmp_path: Path, make_spec: Any, pki: Any) -> None:
    found = _messages(_spec(make_spec, rsa=1), tmp_path)
    assert found == [("certificates.rsa.certificate", "info",
                      "waiting for certificate: certs/rsa.pem does not exist yet (it appears once the CSR is signed)")]
    _write(tmp_path, "rsa", pki.pem(pki.leaf(NAMES)), None)
    assert _messages(_spec(make_spec, rsa=1), tmp_path)[0][:2] == ("certificates.rsa.trust_chain", "info")


def test_chain_that_did_not_sign_the_leaf(tmp_path: Path, pki: Any, make_spec: Any) -> None:
    _write(tmp_path, "rsa", pki.pem(pki.leaf(NAMES)), pki.pem(pki.root))
    [(path, severity, message)] = _messages(_spec(make_spec, rsa=1), tmp_path)
    assert (path, severity) == ("certificates.rsa.trust_chain", "error")
    assert "does not match: the certificate: issuer 'CN=Test Intermediate' is not 'CN=Test Root'" in message


def test_forged_issuer_name_fails_the_signature_check(tmp_path: Path, pki: Any, make_spec: Any) -> None:
    # Names match, but the leaf was signed by the root's key, not the intermediate's.
    forged = pki.leaf(NAMES, signer=pki.root_key)
    _write(tmp_path, "rsa", pki.pem(forged), pki.pem(pki.intermediate))
    [(_, _, message)] = _messages(_spec(make_spec, rsa=1), tmp_path)
    assert "signature does not verify" in message


def test_broken_chain_order(tmp_path: Path, pki: Any, make_spec: Any) -> None:
    _write(tmp_path, "rsa", pki.pem(pki.leaf(NAMES)), pki.pem(pki.intermediate, pki.leaf(["x.example.com"])))
    [(_, _, message)] = _messages(_spec(make_spec, rsa=1), tmp_path)
    assert "chain certificate 'CN=Test Intermediate'" in message


@pytest.mark.parametrize("content,fragment", [
    (b"junk", "no PEM certificate"),
    (b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "certs/rsa.pem: "),
])
def test_unparseable_certificate(tmp_path: Path, make_spec: Any, content: bytes, fragment: str, pki: Any) -> None:
    _write(tmp_path, "rsa", content, pki.pem(pki.intermediate))
    [(path, severity, message)] = _messages(_spec(make_spec, rsa=1), tmp_path)
    assert (path, severity) == ("certificates.rsa.certificate", "error") and fragment in message


def test_full_chain_in_certificate_file_and_wrong_key_type(tmp_path: Path, pki: Any, make_spec: Any) -> None:
    _write(tmp_path, "rsa", pki.pem(pki.leaf(NAMES), pki.intermediate), pki.pem(pki.intermediate))
    assert "holds 2 certificates" in _messages(_spec(make_spec, rsa=1), tmp_path)[0][2]
    _write(tmp_path, "rsa", pki.pem(pki.leaf(NAMES, "ecdsa")), pki.pem(pki.intermediate))
    assert "does not hold an RSA key" in _messages(_spec(make_spec, rsa=1), tmp_path)[0][2]


def test_expired_is_an_error_and_stale_names_wait(tmp_path: Path, pki: Any, make_spec: Any) -> None:
    # apply would refuse to upload it; validate says so first (and removing the file means waiting).
    _write(tmp_path, "rsa", pki.pem(pki.leaf(NAMES, days=-1)), pki.pem(pki.intermediate))
    assert _messages(_spec(make_spec, rsa=1), tmp_path)[0][1:] == (
        "error", f"certs/rsa.pem expired on {pki.leaf(NAMES, days=-1).not_valid_after_utc:%Y-%m-%d}; put a current "
        "certificate here (or remove the file to wait for a new one)")
    _write(tmp_path, "rsa", pki.pem(pki.leaf(NAMES[:1])), pki.pem(pki.intermediate))
    [(_, severity, message)] = _messages(_spec(make_spec, rsa=1), tmp_path)
    assert severity == "info" and message.startswith("waiting for certificate: certs/rsa.pem does not cover "
                                                     "www.shop.example.com")


def test_an_expired_certificate_state_records_as_uploaded_is_a_warning(tmp_path: Path, pki: Any,
                                                                       make_spec: Any) -> None:
    # Kept in the repository for the record after its upload: nothing will be sent from it, and it
    # must not stop the plan of every other enrollment. State records apply's own fingerprint.
    leaf = pki.leaf(NAMES, days=-1)
    _write(tmp_path, "rsa", pki.pem(leaf), pki.pem(pki.intermediate))
    spec = _spec(make_spec, rsa=1)
    found = check_certificate_files(spec, tmp_path, {fingerprint(leaf)})
    assert [(".".join(map(str, f.path)), f.severity) for f in found] == [("certificates.rsa.certificate", "warning")]
    assert found[0].message.startswith(f"certs/rsa.pem expired on {leaf.not_valid_after_utc:%Y-%m-%d}; it is the "
                                       "certificate uploaded before (state records it)")
    # Another certificate uploaded before does not excuse this one.
    [other] = check_certificate_files(spec, tmp_path, {fingerprint(pki.leaf(NAMES))})
    assert other.severity == "error" and "put a current certificate here" in other.message


def test_an_expired_chain_of_the_uploaded_certificate_is_a_warning_too(tmp_path: Path, pki: Any,
                                                                      make_spec: Any) -> None:
    old_intermediate = pki._cert("Test Intermediate", pki.int_key.public_key(), "Test Root", pki.root_key,
                                 ca=True, days=-1, start_days=-3)
    leaf = pki.leaf(NAMES, days=-1)
    _write(tmp_path, "rsa", pki.pem(leaf), pki.pem(old_intermediate))
    spec = _spec(make_spec, rsa=1)
    assert {f.severity for f in check_certificate_files(spec, tmp_path)} == {"error"}
    assert {f.severity for f in check_certificate_files(spec, tmp_path, {fingerprint(leaf)})} == {"warning"}


def test_resolve_inside(tmp_path: Path) -> None:
    assert resolve_inside(tmp_path, "certs/a.pem") == tmp_path.resolve() / "certs" / "a.pem"
    (tmp_path / "inside").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "inside")
    assert resolve_inside(tmp_path, "link/a.pem") == tmp_path.resolve() / "inside" / "a.pem"
    (tmp_path / "out").symlink_to(tmp_path.parent)
    for bad, why in [("/etc/x.pem", "not absolute"), ("certs/../../x.pem", "'..'"), ("out/x.pem", "symlink"),
                     ("..\\x.pem", "'..'")]:
        with pytest.raises(ValueError, match=why):
            resolve_inside(tmp_path, bad)


def _self_signed(pki: Any, names: list[str]) -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(65537, 2048)
    return pki._cert(names[0], key.public_key(), names[0], key, ca=False, names=names)


def test_a_self_signed_leaf_given_as_its_own_trust_chain_is_an_error(tmp_path: Path, pki: Any,
                                                                      make_spec: Any) -> None:
    leaf = _self_signed(pki, NAMES)
    _write(tmp_path, "rsa", pki.pem(leaf), pki.pem(leaf))
    [(path, severity, message)] = _messages(_spec(make_spec, rsa=1), tmp_path)
    assert (path, severity) == ("certificates.rsa.trust_chain", "error")
    assert "certs/rsa-chain.pem holds the certificate itself, which is self-signed" in message
    # on its own (no chain file yet) a self-signed leaf is a warning: nothing trusts it
    (tmp_path / "certs" / "rsa-chain.pem").unlink()
    assert ("certificates.rsa.certificate", "warning") in [m[:2] for m in _messages(_spec(make_spec, rsa=1), tmp_path)]


def test_the_trust_chain_holding_a_ca_signed_leaf_is_an_error_too(tmp_path: Path, pki: Any, make_spec: Any) -> None:
    leaf = pki.leaf(NAMES)
    _write(tmp_path, "rsa", pki.pem(leaf), pki.pem(leaf, pki.intermediate))
    [(path, severity, message)] = _messages(_spec(make_spec, rsa=1), tmp_path)
    assert (path, severity) == ("certificates.rsa.trust_chain", "error") and "holds the certificate itself" in message


class _Signed:
    """A key, a CSR from it, and a certificate for it signed by the test intermediate."""

    def __init__(self, pki: Any, key_type: str = "rsa") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.hazmat.primitives.serialization import Encoding
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(65537, 2048) if key_type == "rsa" else ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAMES[0])]))
               .sign(key, hashes.SHA256()))
        self.csr_pem = csr.public_bytes(Encoding.PEM)
        self.cert = pki._cert(NAMES[0], key.public_key(), "Test Intermediate", pki.int_key, ca=False, names=NAMES)


def _issued(state_dir: Path, key: str, signed: _Signed) -> None:
    (state_dir / "csr").mkdir(parents=True, exist_ok=True)
    (state_dir / "csr" / f"shop.{key}.csr.pem").write_bytes(signed.csr_pem)


def test_a_key_mismatch_is_an_error_as_soon_as_one_slots_file_exists(tmp_path: Path, pki: Any,
                                                                       make_spec: Any) -> None:
    state_dir = tmp_path / "state"
    issued, other = _Signed(pki), _Signed(pki)
    _issued(state_dir, "rsa", issued)
    _issued(state_dir, "ecdsa", _Signed(pki, "ecdsa"))
    spec = _spec(make_spec, rsa=1, ecdsa=1)  # dual stack: the ECDSA files are not there yet
    _write(tmp_path, "rsa", pki.pem(other.cert), pki.pem(pki.intermediate, pki.root))
    found = [(".".join(map(str, f.path)), f.severity, f.message)
             for f in check_certificate_files(spec, tmp_path, (), state_dir)]
    assert [f[:2] for f in found] == [("certificates.rsa.certificate", "error"),
                                      ("certificates.ecdsa.certificate", "info")]
    assert found[0][2].startswith("certs/rsa.pem: its public key is not the one in the RSA CSR CPS issued "
                                  "(state/csr/shop.rsa.csr.pem): it was signed from another CSR")
    # the certificate signed from the issued CSR passes
    _write(tmp_path, "rsa", pki.pem(issued.cert), None)
    assert [f.severity for f in check_certificate_files(spec, tmp_path, (), state_dir)] == ["info"]
    # the one uploaded before, kept in the repository while CPS asks for a new signature: waiting, not wrong
    _write(tmp_path, "rsa", pki.pem(other.cert), None)
    [rsa, _] = check_certificate_files(spec, tmp_path, (fingerprint(other.cert),), state_dir)
    assert rsa.severity == "info" and rsa.message.startswith("waiting for certificate: certs/rsa.pem is the "
                                                             "certificate uploaded before")
