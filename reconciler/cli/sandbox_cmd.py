"""`reconcile sandbox`: serve the CPS emulator on localhost over HTTPS."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from reconciler.errors import ConfigError


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to listen on (0 picks a free port).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path(".reconcile/sandbox-server"), show_default=True,
              help="Directory for the sandbox's data, CA, certificate and .edgerc.")
@click.option("--speed", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Virtual clock speed (60 = a CPS hour passes in a minute).")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Delay every CPS request by this many milliseconds.")
@click.option("--quirks", is_flag=True, default=False,
              help="Answer like production in its quieter moods: input updates 204 with no body, "
                   "booleans and ids as strings where real CPS sends them (a client must cope).")
@click.option("--rate-limits", "rate_limits", default="production", show_default=True, metavar="LIMITS",
              help='Per-account request limits: "production" (20 per 2 s and 100 per 2 min, answered 429 '
                   'with Retry-After), "off", or windows like "20/2s,100/120s" (on the virtual clock).')
@click.option("--create-throttle", "create_throttle", default="300", show_default=True, metavar="SECONDS|off",
              help="One enrollment create per contract per this many virtual seconds (409 otherwise), or off.")
@click.option("--validation", type=click.Choice(["look", "trust-ack"]), default="look", show_default=True,
              help="How DV challenges validate: look for them (its own Edge DNS, --zone-file, --dns-server) "
                   "on a schedule and when acknowledged, or trust the acknowledgement (the old behaviour).")
@click.option("--dns-server", metavar="HOST:PORT", default=None,
              help="A DNS server to look up dns-01 TXT records on (e.g. one your RFC 2136 publisher updates).")
@click.option("--zone-file", "zone_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help='A file of TXT records ("NAME TXT VALUE" lines, as a publish hook may append) to look in; '
                   "repeatable.")
def sandbox(host: str, port: int, data_dir: Path, speed: float, latency_ms: float, quirks: bool,
            rate_limits: str, create_throttle: str, validation: str, dns_server: str | None,
            zone_files: tuple[Path, ...]) -> None:
    """Run the CPS sandbox: a faithful, signature-checking emulator of the CPS v2 API.

    On first start it makes a CA and server certificate and writes DATA/.edgerc (section
    [sandbox]) and DATA/ca.pem; data survives restarts. Admin routes (advance the virtual clock,
    request log, faults) live under /_sandbox/. Production's request limits and create throttle
    are on unless switched off; see docs/sandbox.md for everything it enforces.
    """
    from reconciler.heap import freeze_startup_heap
    from reconciler.sandbox.app import create_app
    from reconciler.sandbox.config import SandboxConfig
    from reconciler.sandbox.engine import EngineConfig
    from reconciler.sandbox.faults import FaultRule, LatencyRule
    from reconciler.sandbox.persistence import SandboxDataError
    from reconciler.sandbox.quirks import quirk_rules
    from reconciler.sandbox.ratelimit import parse_rate_limits
    from reconciler.sandbox.server import instructions, make_server, prepare, quiet_uvicorn

    try:
        limits = parse_rate_limits(rate_limits)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--rate-limits") from None
    throttle = _throttle(create_throttle)
    try:
        setup = prepare(data_dir, host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    latency = [LatencyRule(ms=latency_ms)] if latency_ms else []
    try:
        faults = [FaultRule.from_json(rule) for rule in quirk_rules()] if quirks else []
        app = create_app(SandboxConfig(credentials=setup.credentials, data_dir=data_dir, speed=speed,
                                       latency=latency, faults=faults, rate_limits=limits,
                                       engine=EngineConfig(
                                           create_throttle_seconds=throttle,
                                           validation_policy="trust-ack" if validation == "trust-ack" else "look",
                                           dns_resolver=dns_server,
                                           dns_zone_files=tuple(str(f.resolve()) for f in zone_files))))
    except SandboxDataError as exc:
        setup.socket.close()
        raise ConfigError(str(exc)) from None
    freeze_startup_heap()  # code and loaded data: the collector need not walk them on every full pass
    click.echo(instructions(setup))
    sys.stdout.flush()  # the port is news to whoever started us, even when stdout is a pipe
    quiet_uvicorn()
    server = make_server(app, setup, log_level="warning")
    # uvicorn stops gracefully on SIGINT/SIGTERM (saving the data), then re-raises the signal;
    # after that a stop is a normal exit, not an error.
    signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        server.run(sockets=[setup.socket])
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        setup.socket.close()
    click.echo("CPS sandbox stopped; data kept in " + str(data_dir), err=True)


def _throttle(value: str) -> float:
    if value.strip().lower() in ("off", "0"):
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number of seconds or off",
                                 param_hint="--create-throttle") from None
    if seconds < 0:
        raise click.BadParameter("must not be negative", param_hint="--create-throttle")
    return seconds


class _Stopped(Exception):
    """SIGTERM, re-raised by uvicorn after its graceful shutdown."""


def _exit_quietly(signum: int, frame: object) -> None:
    raise _Stopped()
