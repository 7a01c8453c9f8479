"""Publishers: hook (real subprocesses), manual (files + next-run confirmation), RFC 2136 (real BIND)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from reconciler.apply.publishers.base import DNS_01, HTTP_01, ChallengeRecord
from reconciler.apply.publishers.hook import HookPublisher
from reconciler.apply.publishers.ledger import ChallengeLedger
from reconciler.apply.publishers.manual import ManualPublisher
from reconciler.apply.publishers.rfc2136 import Rfc2136Publisher, Rfc2136Settings
from reconciler.errors import PublisherError

pytestmark = pytest.mark.anyio


def dns_record(domain: str = "www.example.test", value: str = "tXtVaLuE-1") -> ChallengeRecord:
    return ChallengeRecord(enrollment="www", domain=domain, type=DNS_01, token="tok-" + domain,
                           value=value, record_name=f"_acme-challenge.{domain}.")


def http_record(domain: str = "www.example.test") -> ChallengeRecord:
    return ChallengeRecord(enrollment="www", domain=domain, type=HTTP_01, token="htok",
                           value="htok.keyauth", path=f"http://{domain}/.well-known/acme-challenge/htok")


# A hook script that appends its environment (the documented variables) as one JSON line.
RECORDER = (
    f"{sys.executable} -c \"import json, os; "
    "open('calls.jsonl', 'a').write(json.dumps({k: v for k, v in os.environ.items() "
    "if k.startswith('RECONCILE_')}) + '\\n')\""
)


def read_calls(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_hook_runs_once_per_challenge_with_documented_env(tmp_path: Path) -> None:
    publisher = HookPublisher(RECORDER, cleanup=RECORDER.replace("calls.jsonl", "cleanup.jsonl"),
                              cwd=tmp_path, timeout=20)
    records = [dns_record("www.example.test", "v1"), dns_record("example.test", "v2")]
    result = await publisher.publish(records)
    assert result.ready
    calls = read_calls(tmp_path / "calls.jsonl")
    assert calls == [
        {"RECONCILE_ENROLLMENT": "www", "RECONCILE_DOMAIN": "www.example.test",
         "RECONCILE_CHALLENGE_TYPE": "dns-01", "RECONCILE_RECORD_NAME": "_acme-challenge.www.example.test.",
         "RECONCILE_RECORD_VALUE": "v1", "RECONCILE_TOKEN": "tok-www.example.test", "RECONCILE_PATH": "",
         "RECONCILE_RESPONSE_BODY": "v1"},
        {"RECONCILE_ENROLLMENT": "www", "RECONCILE_DOMAIN": "example.test",
         "RECONCILE_CHALLENGE_TYPE": "dns-01", "RECONCILE_RECORD_NAME": "_acme-challenge.example.test.",
         "RECONCILE_RECORD_VALUE": "v2", "RECONCILE_TOKEN": "tok-example.test", "RECONCILE_PATH": "",
         "RECONCILE_RESPONSE_BODY": "v2"},
    ]
    await publisher.cleanup(records)
    assert [c["RECONCILE_DOMAIN"] for c in read_calls(tmp_path / "cleanup.jsonl")] == [
        "www.example.test", "example.test"]


async def test_hook_http01_env(tmp_path: Path) -> None:
    await HookPublisher(RECORDER, None, cwd=tmp_path).publish([http_record()])
    (call,) = read_calls(tmp_path / "calls.jsonl")
    assert call["RECONCILE_CHALLENGE_TYPE"] == "http-01"
    assert call["RECONCILE_PATH"] == "http://www.example.test/.well-known/acme-challenge/htok"
    assert call["RECONCILE_RESPONSE_BODY"] == "htok.keyauth"
    assert call["RECONCILE_RECORD_NAME"] == "" and call["RECONCILE_RECORD_VALUE"] == ""


async def test_hook_failure_names_domain_and_shows_output(tmp_path: Path) -> None:
    publisher = HookPublisher("echo 'zone is read-only' >&2; exit 7", None, cwd=tmp_path)
    with pytest.raises(PublisherError) as info:
        await publisher.publish([dns_record()])
    message = str(info.value)
    assert "www.example.test" in message and "status 7" in message and "zone is read-only" in message


async def test_hook_timeout_kills_the_command(tmp_path: Path) -> None:
    publisher = HookPublisher("sleep 30; touch finished", None, cwd=tmp_path, timeout=0.5)
    with pytest.raises(PublisherError, match="timed out"):
        await publisher.publish([dns_record()])
    assert not (tmp_path / "finished").exists()


async def test_hook_finds_this_installations_scripts_first_on_path(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo signer is `reconcile sandbox-sign`: it must resolve without an activated venv.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    await HookPublisher('command -v reconcile > found.txt', None, cwd=tmp_path).publish([dns_record()])
    assert (tmp_path / "found.txt").read_text().strip() == str(Path(sys.executable).parent / "reconcile")


async def test_cleanup_without_command_does_nothing(tmp_path: Path) -> None:
    await HookPublisher(RECORDER, None, cwd=tmp_path).cleanup([dns_record()])
    assert read_calls(tmp_path / "calls.jsonl") == []


async def test_rfc2136_publisher_refuses_http01(tmp_path: Path) -> None:
    settings = Rfc2136Settings(server="127.0.0.1", zone="example.test.", tsig_key_name="k",
                               tsig_secret_env="S")
    publisher = Rfc2136Publisher(settings, environ={"S": "c2VjcmV0c2VjcmV0"})
    with pytest.raises(PublisherError, match="cannot publish http-01"):
        await publisher.publish([http_record()])


async def test_manual_writes_then_waits_for_confirmation_or_the_check(tmp_path: Path) -> None:
    ledger = ChallengeLedger(tmp_path / "challenges", "www")
    records = [dns_record("www.example.test", "v1"), dns_record("example.test", "v2")]

    ledger.record(enrollment_id=1, change_id=2, publisher="manual", records=records, run_id="run-1")
    first = await ManualPublisher(ledger, run_id="run-1").publish(records)
    assert not first.ready and first.waiting_for == "DNS publication of 2 challenge(s)"
    zone = (tmp_path / "challenges" / "www.zone").read_text()
    assert '_acme-challenge.www.example.test.\t60\tIN\tTXT\t"v1"' in zone
    assert '_acme-challenge.example.test.\t60\tIN\tTXT\t"v2"' in zone
    data = json.loads((tmp_path / "challenges" / "www.json").read_text())
    assert data["change_id"] == 2 and {c["value"] for c in data["challenges"]} == {"v1", "v2"}

    # Same run asking again (the workflow re-read the change): still waiting.
    assert not (await ManualPublisher(ledger, run_id="run-1").publish(records)).ready
    # The next run with the same challenges, check off: a later run is no confirmation.
    ledger.record(enrollment_id=1, change_id=2, publisher="manual", records=records, run_id="run-2")
    waiting = await ManualPublisher(ledger, run_id="run-2").publish(records)
    assert not waiting.ready and "reconcile challenges www --confirm-published" in waiting.details[-1]
    # ...but with the propagation check on it is ready: the check decides what gets acknowledged.
    assert (await ManualPublisher(ledger, run_id="run-2", confirmation_required=False).publish(records)).ready
    assert ledger.confirm() is not None
    ledger.record(enrollment_id=1, change_id=2, publisher="manual", records=records, run_id="run-3")
    assert ledger.read().confirmed_at is not None  # type: ignore[union-attr]  # same records keep it
    assert (await ManualPublisher(ledger, run_id="run-3").publish(records)).ready
    # New challenge values start over, and drop the confirmation.
    changed = [dns_record("www.example.test", "v3")]
    ledger.record(enrollment_id=1, change_id=2, publisher="manual", records=changed, run_id="run-4")
    assert ledger.read().confirmed_at is None  # type: ignore[union-attr]
    assert not (await ManualPublisher(ledger, run_id="run-4").publish(changed)).ready


async def test_rfc2136_publish_and_cleanup_against_real_bind(bind_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = Rfc2136Settings(server="127.0.0.1", port=bind_server.port, zone=bind_server.zone,
                               tsig_key_name=bind_server.key_name, tsig_secret_env="TEST_TSIG", ttl=30)
    publisher = Rfc2136Publisher(settings, environ={"TEST_TSIG": bind_server.secret})
    records = [dns_record("www.example.test", "value-one"), dns_record("www.example.test", "value-two"),
               dns_record("api.example.test", "value-three")]
    assert (await publisher.publish(records)).ready
    assert bind_server.txt_values("_acme-challenge.www.example.test.") == {"value-one", "value-two"}
    assert bind_server.txt_values("_acme-challenge.api.example.test.") == {"value-three"}

    await publisher.cleanup(records[:1])
    assert bind_server.txt_values("_acme-challenge.www.example.test.") == {"value-two"}
    await publisher.cleanup(records)
    await publisher.cleanup(records)  # twice: already gone is fine
    assert bind_server.txt_values("_acme-challenge.www.example.test.") == set()
    assert "secret" not in repr(publisher).lower()


async def test_rfc2136_wrong_key_is_refused_by_bind(bind_server) -> None:  # type: ignore[no-untyped-def]
    settings = Rfc2136Settings(server="127.0.0.1", port=bind_server.port, zone=bind_server.zone,
                               tsig_key_name=bind_server.key_name, tsig_secret_env="TEST_TSIG")
    wrong = "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyE="
    publisher = Rfc2136Publisher(settings, environ={"TEST_TSIG": wrong})
    with pytest.raises(PublisherError) as info:
        await publisher.publish([dns_record()])
    assert wrong not in str(info.value)
    assert bind_server.txt_values("_acme-challenge.www.example.test.") == set()


async def test_rfc2136_name_outside_zone_and_missing_secret(bind_server) -> None:  # type: ignore[no-untyped-def]
    settings = Rfc2136Settings(server="127.0.0.1", port=bind_server.port, zone=bind_server.zone,
                               tsig_key_name=bind_server.key_name, tsig_secret_env="TEST_TSIG")
    with pytest.raises(PublisherError, match="TEST_TSIG"):
        Rfc2136Publisher(settings, environ={})
    publisher = Rfc2136Publisher(settings, environ={"TEST_TSIG": bind_server.secret})
    with pytest.raises(PublisherError, match="not inside zone"):
        await publisher.publish([dns_record("www.other.test")])


async def test_rfc2136_unsigned_update_is_refused_by_bind(bind_server) -> None:  # type: ignore[no-untyped-def]
    settings = Rfc2136Settings(server="127.0.0.1", port=bind_server.port, zone=bind_server.zone)
    with pytest.raises(PublisherError, match="REFUSED"):
        await Rfc2136Publisher(settings).publish([dns_record()])
