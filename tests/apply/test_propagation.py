"""The DV propagation check against real servers: two BIND nameservers (one lagging), a CNAME
delegation to another zone, and a real local HTTP server for http-01."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reconciler.apply.propagation import ChallengeChecker, DnsCheckSettings, HttpCheckSettings
from reconciler.apply.publishers.base import DNS_01, HTTP_01, ChallengeRecord
from reconciler.apply.publishers.rfc2136 import Rfc2136Publisher, Rfc2136Settings

from .conftest import DELEGATED, BindServer, _free_port

pytestmark = pytest.mark.anyio

Pair = tuple[BindServer, BindServer]


def txt(name: str, value: str) -> ChallengeRecord:
    return ChallengeRecord(enrollment="www", domain=name.removeprefix("_acme-challenge.").rstrip("."),
                           type=DNS_01, token="t", value=value, record_name=name)


def publisher(server: BindServer, zone: str | None = None) -> Rfc2136Publisher:
    settings = Rfc2136Settings(server=server.address, port=server.port, zone=zone or server.zone,
                               tsig_key_name=server.key_name, tsig_secret_env="TSIG")
    return Rfc2136Publisher(settings, environ={"TSIG": server.secret})


def discovering(primary: BindServer, **extra: float) -> ChallengeChecker:
    """Discovery as in the world (SOA walk, NS set, addresses), with BIND as the resolver it asks."""
    return ChallengeChecker(DnsCheckSettings(resolver=primary.where, port=primary.port, query_timeout=1.0,
                                             **extra))  # type: ignore[arg-type]


async def test_discovers_the_zones_nameservers_by_soa_and_ns(bind_server: BindServer) -> None:
    record = txt("_acme-challenge.www.example.test.", "token-value-1")
    before = await discovering(bind_server).look([record])
    (check,) = before.checks
    assert [a.server for a in check.answers] == ["ns1.example.test (127.0.0.1)"]
    assert before.lines() == ["_acme-challenge.www.example.test.: not served by 1 of 1 nameserver(s): "
                              "ns1.example.test (127.0.0.1): NXDOMAIN"]
    assert before.progress() == "waiting for 1/1 nameservers to serve _acme-challenge.www.example.test"
    assert (await publisher(bind_server).publish([record])).ready
    after = await discovering(bind_server).look([record])
    assert after.visible and after.checks[0].answers[0].values == ("token-value-1",)


async def test_names_the_nameserver_that_lags(bind_pair: Pair) -> None:
    primary, secondary = bind_pair
    record = txt("_acme-challenge.www.example.test.", "token-value-1")
    assert (await publisher(primary).publish([record])).ready
    checker = ChallengeChecker(DnsCheckSettings(nameservers=(primary.where, secondary.where), query_timeout=1.0))
    report = await checker.look([record])
    assert not report.visible
    assert [a.ok for a in report.checks[0].answers] == [True, False]
    assert report.lines() == ["_acme-challenge.www.example.test.: not served by 1 of 2 nameserver(s): "
                              f"{secondary.where}: NXDOMAIN"]
    assert report.progress() == "waiting for 1/2 nameservers to serve _acme-challenge.www.example.test"
    secondary.notify()  # the zone transfer the primary did not trigger
    done = await checker.wait_visible([record], timeout=10)
    assert done.visible and all(a.ok for a in done.checks[0].answers)


async def test_wait_visible_waits_for_the_lagging_server(bind_pair: Pair) -> None:
    primary, secondary = bind_pair
    record = txt("_acme-challenge.api.example.test.", "token-value-2")
    await publisher(primary).publish([record])
    heard: list[str] = []

    def progress(line: str) -> None:
        heard.append(line)
        if len(heard) == 2:
            secondary.notify()

    checker = ChallengeChecker(DnsCheckSettings(nameservers=(primary.where, secondary.where), interval=0.05,
                                                query_timeout=1.0))
    report = await checker.wait_visible([record], timeout=15, progress=progress)
    assert report.visible, report.lines()
    assert heard[0] == "waiting for 1/2 nameservers to serve _acme-challenge.api.example.test"
    assert secondary.txt_values("_acme-challenge.api.example.test.") == {"token-value-2"}


async def test_times_out_naming_record_and_server(bind_pair: Pair) -> None:
    primary, secondary = bind_pair
    record = txt("_acme-challenge.www.example.test.", "never-published")
    checker = ChallengeChecker(DnsCheckSettings(nameservers=(primary.where, secondary.where), interval=0.05,
                                                query_timeout=1.0))
    report = await checker.wait_visible([record], timeout=0.3)
    assert not report.visible
    line = report.lines()[0]
    assert line.startswith("_acme-challenge.www.example.test.: not served by 2 of 2 nameserver(s)")
    assert f"{primary.where}: NXDOMAIN" in line and f"{secondary.where}: NXDOMAIN" in line


async def test_other_values_are_shown(bind_server: BindServer) -> None:
    await publisher(bind_server).publish([txt("_acme-challenge.www.example.test.", "an-old-value")])
    report = await ChallengeChecker(DnsCheckSettings(nameservers=(bind_server.where,))).look(
        [txt("_acme-challenge.www.example.test.", "the-new-value")])
    assert report.lines() == [f"_acme-challenge.www.example.test.: not served by 1 of 1 nameserver(s): "
                              f"{bind_server.where}: serves 'an-old-value'"]


async def test_follows_a_cname_delegation_to_another_zone(bind_pair: Pair) -> None:
    primary, secondary = bind_pair
    # The user delegated _acme-challenge.alias.example.test to delegated.test (zone file CNAME).
    record = txt("_acme-challenge.alias.example.test.", "delegated-value")
    target = f"_acme-challenge.alias.{DELEGATED}"

    checker = ChallengeChecker(DnsCheckSettings(nameservers=(primary.where, secondary.where), interval=0.05,
                                                query_timeout=1.0))
    before = await checker.look([record])
    (check,) = before.checks
    assert not check.visible and check.via == (target,) and check.asked == target
    assert f"(via {target})" in before.lines()[0]

    # The publisher writes where the CNAME points; the check follows it there.
    await publisher(primary, DELEGATED).publish([txt(target, "delegated-value")])
    secondary.notify(DELEGATED)
    after = await checker.wait_visible([record], timeout=10)
    assert after.visible, after.lines()
    # Discovery (SOA walk of the target's zone) follows the same delegation.
    assert (await discovering(primary).look([record])).visible
    assert after.checks[0].answers[0].values == ("delegated-value",)


async def test_unknown_zone_and_silent_server_are_reported_not_raised(bind_server: BindServer) -> None:
    report = await discovering(bind_server).look([txt("_acme-challenge.www.nowhere.invalid.", "v")])
    assert not report.visible and "cannot find the DNS zone of _acme-challenge.www.nowhere.invalid." in \
        report.lines()[0]
    silent = f"127.0.0.1:{_free_port('127.0.0.1')}"
    report = await ChallengeChecker(DnsCheckSettings(nameservers=(silent,), query_timeout=0.3)).look(
        [txt("_acme-challenge.www.example.test.", "v")])
    assert not report.visible and report.checks[0].answers[0].error


# -- http-01 -----------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    routes: dict[tuple[str, str], tuple[int, dict[str, str], bytes]] = {}
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        host = (self.headers.get("Host") or "").split(":")[0]
        self.seen.append((host, self.path))
        status, headers, body = self.routes.get((host, self.path), (404, {}, b"not found"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def web() -> Iterator[tuple[str, type[_Handler]]]:
    """A real HTTP server on 127.0.0.1 answering per (Host, path), like a web server with vhosts."""
    handler = type("Handler", (_Handler,), {"routes": {}, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def token(domain: str = "www.example.test", name: str = "tok") -> ChallengeRecord:
    return ChallengeRecord(enrollment="www", domain=domain, type=HTTP_01, token=name, value=f"{name}.keyauth",
                           path=f"http://{domain}/.well-known/acme-challenge/{name}")


async def test_http01_served_redirected_and_wrong(web: tuple[str, type[_Handler]], tmp_path: Path) -> None:
    address, handler = web
    checker = ChallengeChecker(http_settings=HttpCheckSettings(connect_to=address, interval=0.05))
    handler.routes[("www.example.test", "/.well-known/acme-challenge/tok")] = (200, {}, b"tok.keyauth\n")
    # Redirected to Akamai's DCV host (redirectFullPath), served there: the CA follows; so do we.
    handler.routes[("api.example.test", "/.well-known/acme-challenge/red")] = (
        302, {"Location": "http://dcv.example.test/.well-known/acme-challenge/red"}, b"")
    handler.routes[("dcv.example.test", "/.well-known/acme-challenge/red")] = (200, {}, b"red.keyauth")
    handler.routes[("old.example.test", "/.well-known/acme-challenge/bad")] = (200, {}, b"stale-body")

    report = await checker.look([token(), token("api.example.test", "red"), token("old.example.test", "bad"),
                                 token("gone.example.test", "x")])
    ok, redirected, wrong, missing = report.checks
    assert ok.visible and redirected.visible
    assert redirected.via == ("http://dcv.example.test/.well-known/acme-challenge/red",)
    assert ("www.example.test", "/.well-known/acme-challenge/tok") in handler.seen
    assert not wrong.visible and wrong.summary().endswith("serves 'stale-body'")
    assert not missing.visible and missing.summary().endswith("HTTP 404")
    assert report.progress() == ("waiting for http://old.example.test/.well-known/acme-challenge/bad to serve "
                                 "the token (and 1 more record(s))")

    async def fix_later() -> None:
        await asyncio.sleep(0.2)
        handler.routes[("old.example.test", "/.well-known/acme-challenge/bad")] = (200, {}, b"bad.keyauth")

    fixing = asyncio.create_task(fix_later())
    report = await checker.wait_visible([token("old.example.test", "bad")], timeout=10)
    await fixing
    assert report.visible


async def test_http01_refuses_redirects_the_ca_would_not_follow(web: tuple[str, type[_Handler]]) -> None:
    address, handler = web
    handler.routes[("www.example.test", "/.well-known/acme-challenge/tok")] = (
        301, {"Location": "http://www.example.test:8080/.well-known/acme-challenge/tok"}, b"")
    report = await ChallengeChecker(http_settings=HttpCheckSettings(connect_to=address)).look([token()])
    assert not report.visible and "ports 80 and 443" in report.lines()[0]
