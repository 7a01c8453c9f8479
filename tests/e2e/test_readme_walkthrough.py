"""The README walkthrough, run exactly as written: from an empty directory to deployed certificates.

The convention the README states (``bash`` blocks run, ``yaml`` blocks starting ``# file: PATH`` are
written) is implemented once, in ``tests/e2e/walkthrough.py``; here it runs at the sandbox's default
speed, with nothing from the test environment's RECONCILE_*/AKAMAI_* variables.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.walkthrough import clean_env, run_steps, section, steps

README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough_section(text: str) -> str:
    return section(text, "Walkthrough")


def test_the_walkthrough_is_extracted_as_documented() -> None:
    found = steps(walkthrough_section(README.read_text(encoding="utf-8")))
    files = [s.path for s in found if s.path]
    commands = [s.command for s in found if s.command]
    assert files == ["reconcile.yaml", "specs/www.yaml", "specs/shop.yaml"]
    assert commands[0].startswith("mkdir ") and any("apply" in c for c in commands)
    assert [c for c in commands if "plan --detailed-exitcode" in c][-1].endswith("plan --detailed-exitcode")
    assert commands[-1].startswith("reconcile --sandbox status")


def test_readme_walkthrough_from_an_empty_directory_deploys_a_dv_and_a_third_party_certificate(
        tmp_path: Path) -> None:
    found = steps(walkthrough_section(README.read_text(encoding="utf-8")))
    cwd, outputs = run_steps(found, tmp_path, clean_env(), name="README walkthrough")

    final_plans = [out for command, out in outputs if "plan --detailed-exitcode" in command]
    assert "No changes" in final_plans[-1]
    status = outputs[-1][1]
    header, *lines = status.splitlines()
    rows = {line.split()[0]: line for line in lines if line.strip()}
    assert set(rows) == {"www", "shop"}, status
    for name, kind in (("www", "dv"), ("shop", "third-party")):
        row = rows[name]
        assert row.split()[2] == kind and row.split()[-1] == "none", status
        staging, production = row[header.index("STAGING"):].split()[:2]
        assert re.fullmatch(r"\d+d", staging) and re.fullmatch(r"\d+d", production), status
    assert "(cps)" in rows["www"] and "NOT RENEWING" in rows["shop"], status
    assert cwd != tmp_path and (cwd / "certs" / "shop" / "rsa.pem").is_file()
    assert "_acme-challenge.www.example.com. TXT" in (cwd / ".reconcile" / "dns-published.txt").read_text()
