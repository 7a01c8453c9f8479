"""Credentials never leak: the scanner itself, then every artefact of real runs scanned for them.

The runs use ``CANARY`` credentials (tests/secretscan.py) seeded into the sandbox, so any hit in
stdout, stderr, DEBUG logs, the project directory or temporary files is a real leak.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from reconciler.cps.credentials import Credentials
from tests.secretscan import (
    CANARY,
    SecretScan,
    assert_no_secrets,
    canary_credentials,
    scan_for_secrets,
    secret_forms,
)

SECRET = CANARY["client_secret"]


# -- the scanner ---------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", [b"", b"x", b"xy", b"Authorization: Basic abc"])
def test_scanner_finds_base64_at_any_alignment_inside_longer_text(prefix: bytes) -> None:
    blob = base64.b64encode(prefix + SECRET.encode() + b"::trailing bytes")
    findings = scan_for_secrets(CANARY, texts={"blob": blob})
    assert {f.secret for f in findings} == {"client_secret"}
    assert "base64" in {f.form.split("/")[0] for f in findings}
    url_blob = base64.urlsafe_b64encode(prefix + CANARY["access_token"].encode() + b"!")
    assert {f.form.split("/")[0] for f in scan_for_secrets(CANARY, texts=[url_blob])} >= {"base64url"}


def test_scanner_finds_encoded_and_cut_forms_in_binary_files(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "url.bin").write_bytes(b"\x00\xff" + quote(SECRET, safe="").encode() + b"\x00")
    (nested / "data.json").write_text(json.dumps({"k": SECRET}).replace("/", "\\/"))
    (nested / "cut.log").write_text("secret=" + SECRET[:len(SECRET) // 2] + "...")
    (nested / "hex.txt").write_text(SECRET.encode().hex())
    (tmp_path / "utf16.txt").write_bytes(("x" + CANARY["client_token"]).encode("utf-16-le"))
    (tmp_path / "clean.txt").write_text("nothing here " * 100)
    found = {(Path(f.where).name, f.secret, f.form) for f in scan_for_secrets(CANARY, paths=[tmp_path])}
    assert ("url.bin", "client_secret", "url") in found
    assert ("data.json", "client_secret", "json-slash") in found
    assert ("cut.log", "client_secret", "fragment-head") in found
    assert ("hex.txt", "client_secret", "hex") in found
    assert ("utf16.txt", "client_token", "utf-16") in found
    assert not any(name == "clean.txt" for name, _, _ in found)


def test_scanner_excludes_and_never_prints_the_secret(tmp_path: Path) -> None:
    (tmp_path / ".edgerc").write_text(f"client_secret = {SECRET}\n")
    (tmp_path / "out.log").write_text(f"oops {SECRET}")
    assert_no_secrets(CANARY, paths=[tmp_path / ".edgerc"], exclude=[tmp_path / ".edgerc"])
    with pytest.raises(AssertionError) as leaked:
        assert_no_secrets(CANARY, paths=[tmp_path], exclude=[tmp_path / ".edgerc"])
    message = str(leaked.value)
    assert "out.log" in message and ".edgerc" not in message
    assert not scan_for_secrets(CANARY, texts={"assertion": message})


def test_scanner_refuses_short_secrets_and_has_long_forms() -> None:
    with pytest.raises(ValueError, match="shorter than"):
        scan_for_secrets(["abc"], texts=["abc"])
    forms = secret_forms(SECRET)
    assert all(len(form) >= 12 for form in forms.values())
    assert forms["url"] != forms["raw"]  # '+', '/', '=' make every encoding distinct


def test_secret_scan_collects_then_checks(tmp_path: Path) -> None:
    scan = SecretScan()
    scan.add_secrets(canary_credentials("127.0.0.1"))
    scan.add_text("stdout", "fine")
    scan.add_path(tmp_path)
    scan.check()
    scan.add_text("stdout", f"now leaking {CANARY['access_token']}")
    with pytest.raises(AssertionError, match=r"stdout#2@\d+: access_token \(raw\)"):
        scan.check()
    assert isinstance(canary_credentials("h"), Credentials)
