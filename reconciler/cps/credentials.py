"""EdgeGrid credentials and ``.edgerc`` loading (parsed by edgegrid-python's ``EdgeRc``).

Secrets are kept out of ``repr`` so that a logged or printed ``Credentials`` never leaks them.
"""

from __future__ import annotations

import configparser
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from akamai.edgegrid import EdgeRc

from reconciler.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_EDGERC = "~/.edgerc"
DEFAULT_SECTION = "default"
DEFAULT_MAX_BODY = 131072
ENV_EDGERC = "AKAMAI_EDGERC"
ENV_SECTION = "AKAMAI_EDGERC_SECTION"
_REQUIRED = ("host", "client_token", "client_secret", "access_token")


@dataclass(frozen=True)
class Credentials:
    """One EdgeGrid API client: the host it talks to and the three secrets that sign requests."""

    host: str
    client_token: str = field(repr=False)
    client_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    max_body: int = DEFAULT_MAX_BODY
    account_switch_key: str | None = None

    def __post_init__(self) -> None:
        # .edgerc files in the wild carry "https://host/" as often as the bare host.
        host = self.host.strip()
        for prefix in ("https://", "http://"):
            if host.startswith(prefix):
                host = host[len(prefix):]
        object.__setattr__(self, "host", host.rstrip("/"))


def resolve_edgerc_path(path: Path | None) -> Path:
    """The flag wins, then ``AKAMAI_EDGERC``, then ``~/.edgerc``."""
    chosen = path if path is not None else Path(os.environ.get(ENV_EDGERC) or DEFAULT_EDGERC)
    return chosen.expanduser()


def resolve_section(section: str | None) -> str:
    """The flag wins, then ``AKAMAI_EDGERC_SECTION``, then ``default``."""
    return section or os.environ.get(ENV_SECTION) or DEFAULT_SECTION


def load_edgerc(path: Path | None = None, section: str | None = None, *,
                account_switch_key: str | None = None) -> Credentials:
    """Read one section of an ``.edgerc`` file into ``Credentials``.

    ``account_switch_key`` (a flag or reconcile.yaml) overrides the section's ``account_key``.
    Raises ``ConfigError`` naming the file and section, never a secret.
    """
    file = resolve_edgerc_path(path)
    name = resolve_section(section)
    if not file.is_file():
        raise ConfigError(f"no .edgerc file at {file} (set --edgerc or {ENV_EDGERC})")
    _warn_if_readable_by_others(file)
    try:
        rc = EdgeRc(str(file))
    except configparser.Error as exc:
        raise ConfigError(f"{file}: not a valid .edgerc file: {type(exc).__name__}") from None
    if not rc.has_section(name):
        known = ", ".join(rc.sections()) or "none"
        raise ConfigError(f"{file}: no section [{name}] (sections: {known})")
    try:
        values = {key: rc.get(name, key).strip() for key in _REQUIRED}
        switch_key = account_switch_key
        if switch_key is None and rc.has_option(name, "account_key"):
            switch_key = rc.get(name, "account_key").strip() or None
        max_body = rc.getint(name, "max_body")
    except configparser.Error as exc:
        raise ConfigError(f"{file}: section [{name}] unreadable: {type(exc).__name__}") from None
    except ValueError:
        raise ConfigError(f"{file}: section [{name}]: max_body is not an integer") from None
    missing = [key for key, value in values.items() if not value]
    if missing:
        raise ConfigError(f"{file}: section [{name}] lacks {', '.join(missing)}")
    return Credentials(max_body=max_body, account_switch_key=switch_key, **values)


def _warn_if_readable_by_others(file: Path) -> None:
    """Warn (once per load) when group or others may read the credentials, as ssh does for keys."""
    mode = file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("%s is accessible by group or others (mode %s); credentials belong in a file "
                       "only you can read: chmod 600 %s", file, oct(mode & 0o777), file)
