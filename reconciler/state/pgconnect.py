"""Reaching the PostgreSQL state database: the driver, the DSN, connections and their errors.

The DSN carries a password, so it comes from the environment only (``state.dsn_env`` in
reconcile.yaml names the variable) and never appears anywhere reconcile writes:

==========================================  =================================================
where it could leak                          what keeps it out
==========================================  =================================================
an error message (libpq quotes the DSN       every driver error is rebuilt as a ``StateError``
in parse errors, sometimes the host/user)    with the DSN and its password masked, and never
                                             chained (``from None``: no traceback carries it)
a hook's environment (DV publisher, signer)  the variable is registered with ``secretenv``, so
                                             hooks are started without it
``repr`` of our objects, logs                ``Dsn`` shows only the variable's name
==========================================  =================================================

Sessions: every connection turns on TCP keepalives on both sides (libpq's, and the server's
``tcp_keepalives_*`` / ``tcp_user_timeout`` for this session), so that a runner whose network
is cut loses its session, and with it its lock, within about half a minute instead of the
kernel's two hours.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, unquote

from reconciler import secretenv
from reconciler.errors import ConfigError, StateError

if TYPE_CHECKING:
    import psycopg

EXTRA = "cps-reconciler[postgres]"
CONNECT_TIMEOUT = 10
"""Seconds to wait for the server to answer a connection."""
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
SERVER_KEEPALIVE = ("SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; "
                    "SET tcp_keepalives_count = 3; SET tcp_user_timeout = 30000")
MASK = "***"


def driver() -> Any:
    """The psycopg module, or a ConfigError naming the extra to install."""
    try:
        import psycopg
    except ImportError:
        raise ConfigError(f"state backend postgres needs the PostgreSQL driver psycopg 3, which is not installed: "
                          f"pip install '{EXTRA}'") from None
    return psycopg


@dataclass(frozen=True)
class Dsn:
    """A connection string read from the environment variable ``env`` (only its name is shown)."""

    env: str
    value: str = field(repr=False)

    @classmethod
    def from_env(cls, env: str) -> Dsn:
        value = os.environ.get(env, "")
        if not value.strip():
            raise ConfigError(f"state backend postgres: the environment variable {env} (state.dsn_env in "
                              "reconcile.yaml) is not set; it must hold the connection string, e.g. "
                              "postgresql://USER:PASSWORD@HOST:5432/DBNAME")
        secretenv.hide(env)
        return cls(env, value)

    def secrets(self) -> list[str]:
        """Every form of the DSN and of its password that a message could quote, longest first."""
        found = {self.value, self.value.strip()}
        for password in _passwords(self.value):
            found.update({password, quote(password, safe=""), quote_plus(password), unquote(password)})
        return sorted((s for s in found if s), key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, MASK)
        return text


_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@?#]*?:([^/@?#]*)@", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def _passwords(dsn: str) -> list[str]:
    found = []
    url = _URL_PASSWORD.match(dsn.strip())
    if url:
        found.append(url.group(1))
    for match in _KV_PASSWORD.finditer(dsn):
        value = match.group(1)
        found.append(value)
        if value.startswith("'") and value.endswith("'"):
            found.append(re.sub(r"\\(.)", r"\1", value[1:-1]))
    if "password=" in dsn:  # URL query form: ...?password=...
        for part in re.split(r"[?&]", dsn):
            if part.startswith("password="):
                found.append(part.removeprefix("password="))
    return found


def connect(dsn: Dsn, where: str) -> psycopg.Connection[Any]:
    """An autocommit connection with keepalives on both ends, or a StateError saying why not."""
    pg = driver()
    try:
        pg.conninfo.conninfo_to_dict(dsn.value)
    except pg.Error:
        # libpq's parse errors quote the text around the mistake, which may be the password.
        raise StateError(f"{where}: the connection string in ${dsn.env} cannot be parsed (it is not shown: it "
                         "may hold a password); expected postgresql://USER:PASSWORD@HOST:PORT/DBNAME or "
                         "key=value pairs") from None
    try:
        conn: psycopg.Connection[Any] = pg.connect(
            dsn.value, autocommit=True, connect_timeout=CONNECT_TIMEOUT, application_name="reconcile", **KEEPALIVE)
    except pg.Error as exc:
        raise failure(exc, dsn, f"{where}: cannot connect to the state database (${dsn.env})") from None
    try:
        conn.execute(SERVER_KEEPALIVE)
    except pg.Error as exc:
        conn.close()
        raise failure(exc, dsn, f"{where}: cannot set up the session") from None
    return conn


def failure(exc: BaseException, dsn: Dsn, doing: str) -> StateError:
    """A StateError for a driver error ``exc`` while ``doing``: one masked line, nothing chained."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return StateError(dsn.mask(f"{doing}: {detail}"))


def lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the session is gone (server stopped, network cut, terminated)."""
    pg = driver()
    if isinstance(exc, pg.OperationalError):
        return True
    return isinstance(exc, pg.InterfaceError) and "closed" in str(exc)
