"""`reconcile sandbox-sign`: play a customer's CA for the demo and tests.

Made to be a third-party spec's signer hook (``signer: {command: reconcile sandbox-sign}``): it
reads the CSR from ``RECONCILE_CSR_FILE`` and writes the signed certificate and its chain to
``RECONCILE_CERT_FILE`` and ``RECONCILE_CHAIN_FILE`` (flags override the variables). The test CA
is kept under ``<root>/.reconcile/test-ca/`` (``ca.json``, keys included: test material only;
``root.pem`` to trust), so every certificate it signs chains to the same root.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import filelock

from reconciler.cli.context import GlobalOptions
from reconciler.cli.wiring import sandbox_dir
from reconciler.config import load_config
from reconciler.errors import ConfigError
from reconciler.sandbox.ca import CertificateAuthority
from reconciler.sandbox.local import saved_now

CA_DIR = Path(".reconcile") / "test-ca"


def signing_ca(directory: Path) -> CertificateAuthority:
    """The persistent test CA in ``directory`` (made on first use; safe with parallel signers)."""
    directory.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(directory / "ca.json.lock", timeout=60):
        saved = directory / "ca.json"
        if saved.exists():
            return CertificateAuthority.from_json(json.loads(saved.read_text(encoding="utf-8")))
        ca = CertificateAuthority("Reconcile Test CA")
        fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(ca.to_json(), handle)
        (directory / "root.pem").write_text(ca.root_pem, encoding="utf-8")
        return ca


@click.command("sandbox-sign")
@click.option("--csr", "csr_file", envvar="RECONCILE_CSR_FILE", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="CSR to sign (env RECONCILE_CSR_FILE).")
@click.option("--cert", "cert_file", envvar="RECONCILE_CERT_FILE", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="Where to write the certificate (env RECONCILE_CERT_FILE).")
@click.option("--chain", "chain_name", envvar="RECONCILE_CHAIN_FILE", default=None,
              help="Where to write the trust chain (env RECONCILE_CHAIN_FILE; empty: append it to --cert).")
@click.option("--days", type=click.IntRange(1, 825), default=90, show_default=True, help="Validity in days.")
@click.pass_obj
def sandbox_sign(opts: GlobalOptions, csr_file: Path, cert_file: Path, chain_name: str | None, days: int) -> None:
    """Sign a CSR with the persistent test CA (a stand-in for your CA; never for production).

    With --sandbox the certificate is dated by the built-in sandbox's clock (see `reconcile
    sandbox-clock`), as a real CA dates it by CPS's time.
    """
    chain_file = Path(chain_name) if chain_name else None
    config = load_config(opts.config_path)
    try:
        csr_pem = csr_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read CSR {csr_file}: {exc.strerror}") from None
    # Beside the in-process sandbox (--sandbox), sign at its virtual time: a certificate dated by
    # this machine's clock would already be old once the sandbox's clock has been moved on.
    now = saved_now(sandbox_dir(config)) if opts.sandbox else None
    try:
        leaf, chain = signing_ca(config.root / CA_DIR).sign_csr(csr_pem, days=days, now=now)
    except ValueError as exc:
        raise ConfigError(f"{csr_file}: cannot sign: {exc}") from None
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    if chain_file is None:
        cert_file.write_text(leaf + chain, encoding="utf-8")
    else:
        chain_file.parent.mkdir(parents=True, exist_ok=True)
        cert_file.write_text(leaf, encoding="utf-8")
        chain_file.write_text(chain, encoding="utf-8")
    click.echo(f"signed {csr_file} -> {cert_file}" + (f" (chain {chain_file})" if chain_file else ""), err=True)
