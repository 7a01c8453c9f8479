"""Fixtures for the apply room's tests.

`bind_server`: a real BIND (`named`) on 127.0.0.1 and a free port, with dynamic zones and a
TSIG key, for the RFC 2136 publisher; `bind_pair`: a primary and a lagging secondary, for the
DV propagation check. One definition of the server (`start_bind`) serves both. Under CI=true a missing `named` is a failure, not a skip:
.ci/run installs it.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rdatatype
import pytest

ZONE = "example.test."
DELEGATED = "delegated.test."  # a second zone, for CNAME-delegated challenges
KEY_NAME = "reconcile-test-key."


@dataclass
class BindServer:
    """Handle on a running named: where it listens and the TSIG key it accepts."""

    port: int
    zone: str
    key_name: str
    secret: str
    directory: Path
    address: str = "127.0.0.1"

    @property
    def where(self) -> str:
        return f"{self.address}:{self.port}"

    def txt_values(self, name: str) -> set[str]:
        """Ask the server (not a cache) which TXT values it serves at ``name``."""
        response = dns.query.tcp(dns.message.make_query(name, dns.rdatatype.TXT), self.address,
                                 port=self.port, timeout=5)
        return {b"".join(r.strings).decode() for rrset in response.answer for r in rrset}

    def notify(self, zone: str = ZONE) -> None:
        """Send this (secondary) server a NOTIFY for ``zone``: it fetches the primary's new serial."""
        message = dns.message.make_query(zone, dns.rdatatype.SOA)
        message.set_opcode(dns.opcode.NOTIFY)
        message.flags |= dns.flags.AA
        dns.query.udp(message, self.address, port=self.port, timeout=5)


def named_binary() -> str:
    found = shutil.which("named") or (Path("/usr/sbin/named") if Path("/usr/sbin/named").exists() else None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("named (BIND) is not installed; .ci/run installs bind9 — RFC 2136 tests need it")
        pytest.skip("named (BIND) is not installed (apt-get install bind9)")
    return str(found)


def _free_port(address: str = "127.0.0.1") -> int:
    # A port free for both TCP and UDP at the moment we ask; named binds it right after.
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port for named")


def _zone_text(zone: str, extra: str) -> str:
    lines = ["$TTL 60", f"@ IN SOA ns1.{ZONE} hostmaster.{ZONE} 1 3600 600 86400 60", f"@ IN NS ns1.{ZONE}"]
    if zone == ZONE:
        lines.append("ns1 IN A 127.0.0.1")
    return "\n".join(lines) + "\n" + extra


def start_bind(directory: Path, *, primary: BindServer | None = None,
               records: str = "") -> tuple[subprocess.Popen[bytes], BindServer]:
    """named on 127.0.0.1 and a free port serving ZONE and DELEGATED (both dynamic, TSIG; NS
    ns1.example.test = 127.0.0.1), or, with ``primary``, a secondary of that server's zones that
    fetches changes only when sent a NOTIFY. ``records``: extra zone-file lines for ZONE (a CNAME
    delegation, for instance).

    (Only 127.0.0.1 is an interface address named can listen on without changing the machine, so
    a second nameserver differs by port, and the zone's NS set names one server.)
    """
    binary = named_binary()
    address = "127.0.0.1"
    port = _free_port(address)
    secret = primary.secret if primary else base64.b64encode(os.urandom(32)).decode()
    directory.mkdir(parents=True, exist_ok=True)
    zones = []
    for zone in (ZONE, DELEGATED):
        zone_file = directory / f"{zone}zone"
        if primary is None:
            zone_file.write_text(_zone_text(zone, records if zone == ZONE else ""))
            zones.append(f"""zone "{zone}" {{
    type primary; file "{zone_file}";
    allow-update {{ key "{KEY_NAME}"; }}; allow-transfer {{ any; }};
}};""")
        else:
            zones.append(f"""zone "{zone}" {{
    type secondary; file "{zone_file}";
    primaries {{ {primary.address} port {primary.port}; }}; allow-notify {{ 127.0.0.0/8; }};
}};""")
    conf = directory / "named.conf"
    conf.write_text(f"""
options {{
    directory "{directory}";
    pid-file "{directory}/named.pid";
    session-keyfile "{directory}/session.key";
    managed-keys-directory "{directory}";
    listen-on port {port} {{ {address}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};
""" + "\n".join(zones) + "\n")
    log = (directory / "named.log").open("wb")
    process = subprocess.Popen([binary, "-g", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    server = BindServer(port=port, zone=ZONE, key_name=KEY_NAME, secret=secret, directory=directory,
                        address=address)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError("named exited:\n" + (directory / "named.log").read_text(errors="replace")[-2000:])
        try:
            answered = [dns.query.tcp(dns.message.make_query(zone, dns.rdatatype.SOA), address,
                                      port=port, timeout=1).answer for zone in (ZONE, DELEGATED)]
            if all(answered):
                return process, server
        except (OSError, dns.exception.DNSException):
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("named did not answer within 15 s")
        time.sleep(0.1)


def stop_bind(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def bind_server(tmp_path: Path) -> Iterator[BindServer]:
    """A real named on loopback with zone example.test. accepting TSIG-signed updates."""
    process, server = start_bind(tmp_path / "bind")
    try:
        yield server
    finally:
        stop_bind(process)


@pytest.fixture
def bind_pair(tmp_path: Path) -> Iterator[tuple[BindServer, BindServer]]:
    """Two nameservers of example.test. on 127.0.0.1 (two ports): a primary taking TSIG updates and
    a secondary that lags until sent ``notify()`` (the primary never notifies)."""
    first, primary = start_bind(tmp_path / "bind1",
                                records=f"_acme-challenge.alias IN CNAME _acme-challenge.alias.{DELEGATED}\n")
    try:
        second, secondary = start_bind(tmp_path / "bind2", primary=primary)
        try:
            yield primary, secondary
        finally:
            stop_bind(second)
    finally:
        stop_bind(first)
