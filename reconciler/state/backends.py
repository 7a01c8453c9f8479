"""Which backend keeps the state: reconcile.yaml's ``state:`` block turned into a store.

    state: {backend: file}                                   (default) files under state_path
    state: {backend: postgres, workspace: NAME,              a PostgreSQL database; the DSN is read
            dsn_env: RECONCILE_STATE_DSN}                    from that environment variable

Every command opens its store here, so that all of them agree on where the state is.
"""

from __future__ import annotations

from reconciler.config import Config, PostgresStateConfig
from reconciler.state.backend import StateBackend
from reconciler.state.filebackend import FileBackend
from reconciler.state.store import StateStore


def postgres_backend(settings: PostgresStateConfig) -> StateBackend:
    """The PostgreSQL backend for ``settings`` (the DSN read from its environment variable now)."""
    from reconciler.state.pgbackend import PostgresBackend
    from reconciler.state.pgconnect import Dsn, driver

    driver()  # a missing driver is named before the DSN is looked for
    return PostgresBackend(Dsn.from_env(settings.dsn_env), settings.workspace, settings.schema_name)


def backend_for(config: Config) -> StateBackend:
    """The backend reconcile.yaml names."""
    if isinstance(config.state, PostgresStateConfig):
        return postgres_backend(config.state)
    return FileBackend(config.state_path)


def open_store(config: Config) -> StateStore:
    """The state store every command uses (not yet locked, nothing read yet)."""
    return StateStore(config.state_path, backend=backend_for(config))
