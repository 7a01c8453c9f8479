from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cps.credentials import Credentials, load_edgerc
from reconciler.errors import ConfigError

EDGERC = """\
[default]
host = akab-default.luna.akamaiapis.net
client_token = akab-ct-default
client_secret = c2VjcmV0LWRlZmF1bHQ=
access_token = akab-at-default

[other]
host = https://akab-other.luna.akamaiapis.net/
client_token = akab-ct-other
client_secret = c2VjcmV0LW90aGVy
access_token = akab-at-other
max-body = 4096
account_key = 1-ABCDE:1-FGH

[broken]
host = akab-broken.luna.akamaiapis.net
client_token = akab-ct-broken
"""


@pytest.fixture
def edgerc(tmp_path: Path) -> Path:
    path = tmp_path / "edgerc"
    path.write_text(EDGERC)
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AKAMAI_EDGERC", raising=False)
    monkeypatch.delenv("AKAMAI_EDGERC_SECTION", raising=False)


def test_default_section(edgerc: Path) -> None:
    creds = load_edgerc(edgerc)
    assert creds.host == "akab-default.luna.akamaiapis.net"
    assert creds.client_token == "akab-ct-default"
    assert creds.max_body == 131072
    assert creds.account_switch_key is None


def test_named_section_normalises_host_and_reads_options(edgerc: Path) -> None:
    creds = load_edgerc(edgerc, "other")
    assert creds.host == "akab-other.luna.akamaiapis.net"
    assert creds.max_body == 4096
    assert creds.account_switch_key == "1-ABCDE:1-FGH"


def test_flag_overrides_account_key(edgerc: Path) -> None:
    assert load_edgerc(edgerc, "other", account_switch_key="1-X").account_switch_key == "1-X"


def test_environment_chooses_file_and_section(edgerc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKAMAI_EDGERC", str(edgerc))
    monkeypatch.setenv("AKAMAI_EDGERC_SECTION", "other")
    assert load_edgerc(None, None).host == "akab-other.luna.akamaiapis.net"
    # explicit arguments beat the environment
    assert load_edgerc(edgerc, "default").host == "akab-default.luna.akamaiapis.net"


def test_default_path_is_home_edgerc(edgerc: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".edgerc").write_text(EDGERC)
    assert load_edgerc().client_token == "akab-ct-default"


def test_errors_name_file_and_section_but_no_secret(edgerc: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no .edgerc file"):
        load_edgerc(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"no section \[nope\]"):
        load_edgerc(edgerc, "nope")
    with pytest.raises(ConfigError, match="lacks client_secret, access_token") as info:
        load_edgerc(edgerc, "broken")
    assert "akab-ct-broken" not in str(info.value)


def test_repr_hides_secrets() -> None:
    creds = Credentials(host="h", client_token="TOKEN-1", client_secret="SECRET-2", access_token="ACCESS-3",
                        account_switch_key="1-K")
    for text in (repr(creds), str(creds)):
        assert "TOKEN-1" not in text and "SECRET-2" not in text and "ACCESS-3" not in text
        assert "h" in text


def test_loose_permissions_warn_without_showing_a_secret(edgerc: Path, caplog: pytest.LogCaptureFixture) -> None:
    edgerc.chmod(0o600)
    with caplog.at_level("WARNING", logger="reconciler.cps.credentials"):
        load_edgerc(edgerc, "default")
    assert caplog.records == []
    edgerc.chmod(0o644)
    with caplog.at_level("WARNING", logger="reconciler.cps.credentials"):
        credentials = load_edgerc(edgerc, "default")
    (record,) = caplog.records
    assert "chmod 600" in record.getMessage() and "0o644" in record.getMessage()
    assert credentials.client_secret not in record.getMessage()
