"""Fixtures for the apply room's tests.

`bind_server`: a real BIND (`named`) on 127.0.0.1 and a free port, with one dynamic zone and a
TSIG key, for the RFC 2136 publisher. Under CI=true a missing `named` is a failure, not a skip:
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
import dns.message
import dns.query
import dns.rdatatype
import pytest

ZONE = "example.test."
KEY_NAME = "reconcile-test-key."


@dataclass
class BindServer:
    """Handle on a running named: where it listens and the TSIG key it accepts."""

    port: int
    zone: str
    key_name: str
    secret: str
    directory: Path

    def txt_values(self, name: str) -> set[str]:
        """Ask the server (not a cache) which TXT values it serves at ``name``."""
        response = dns.query.tcp(dns.message.make_query(name, dns.rdatatype.TXT), "127.0.0.1",
                                 port=self.port, timeout=5)
        return {b"".join(r.strings).decode() for rrset in response.answer for r in rrset}


def named_binary() -> str:
    found = shutil.which("named") or (Path("/usr/sbin/named") if Path("/usr/sbin/named").exists() else None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("named (BIND) is not installed; .ci/run installs bind9 — RFC 2136 tests need it")
        pytest.skip("named (BIND) is not installed (apt-get install bind9)")
    return str(found)


def _free_port() -> int:
    # A port free for both TCP and UDP at the moment we ask; named binds it right after.
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port for named")


def start_bind(directory: Path) -> tuple[subprocess.Popen[bytes], BindServer]:
    binary = named_binary()
    port = _free_port()
    secret = base64.b64encode(os.urandom(32)).decode()
    directory.mkdir(parents=True, exist_ok=True)
    zone_file = directory / "example.test.zone"
    zone_file.write_text(
        "$TTL 60\n"
        f"@ IN SOA ns1.{ZONE} hostmaster.{ZONE} 1 3600 600 86400 60\n"
        f"@ IN NS ns1.{ZONE}\n"
        "ns1 IN A 127.0.0.1\n"
    )
    conf = directory / "named.conf"
    conf.write_text(f"""
options {{
    directory "{directory}";
    pid-file "{directory}/named.pid";
    session-keyfile "{directory}/session.key";
    managed-keys-directory "{directory}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "{ZONE}" {{
    type primary;
    file "{zone_file}";
    allow-update {{ key "{KEY_NAME}"; }};
}};
""")
    log = (directory / "named.log").open("wb")
    process = subprocess.Popen([binary, "-g", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    server = BindServer(port=port, zone=ZONE, key_name=KEY_NAME, secret=secret, directory=directory)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError("named exited:\n" + (directory / "named.log").read_text(errors="replace")[-2000:])
        try:
            response = dns.query.tcp(dns.message.make_query(ZONE, dns.rdatatype.SOA), "127.0.0.1",
                                     port=port, timeout=1)
            if response.answer:
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
