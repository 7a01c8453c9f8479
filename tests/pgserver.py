"""A throw-away PostgreSQL server for tests: its own cluster in a temporary directory.

    with PgCluster() as pg:                   # initdb + start on a free 127.0.0.1 port
        dsn = pg.dsn()                        # postgresql://reconcile:<password>@127.0.0.1:PORT/reconcile
        pg.stop("immediate"); pg.start()      # a server crash and its restart, same data
        pg.admin("SELECT 1")                  # as the superuser

The server refuses to run as root, so when the tests run as root every server command runs as the
``postgres`` user (``runuser``), and the directory is that user's. Password authentication
(scram-sha-256) is on for every connection, so a DSN without the password fails: the password is
a canary the leak tests look for. ``fsync=off`` keeps the suite fast (it matters only if the
machine itself crashes; a killed server keeps every committed transaction).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

PASSWORD = "PGCANARYpw+7qZ/x2Lw9=Tk4#e@v"
"""The password of the ``reconcile`` role: distinctive, and full of characters a URL must escape."""
SUPER_PASSWORD = "PGCANARYsuper+3Hn/8Rp2=Wq6"


def binaries() -> Path | None:
    """The directory of initdb/pg_ctl (on PATH, else Debian's /usr/lib/postgresql/N/bin)."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """One PostgreSQL cluster of our own (see the module docstring)."""

    def __init__(self) -> None:
        bin_dir = binaries()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql")
        self.bin = bin_dir
        self.as_postgres = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="reconcile-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.running = False

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        return subprocess.run([*prefix, *args], capture_output=True, text=True, check=check, timeout=timeout,
                              cwd=self.dir, stdin=subprocess.DEVNULL)

    def init(self) -> None:
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        pwfile = self.dir / "pw"
        pwfile.write_text(SUPER_PASSWORD + "\n")
        if self.as_postgres:
            shutil.chown(pwfile, "postgres", "postgres")
        try:
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "scram-sha-256",
                      f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync", "--no-instructions")
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed: {exc.stderr or exc.stdout}") from None
        finally:
            pwfile.unlink()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        done = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                         str(self.dir / "server.log"), "-w", "-t", "60", "start", check=False)
        if done.returncode != 0:
            log = (self.dir / "server.log").read_text(errors="replace")[-2000:] \
                if (self.dir / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr or done.stdout}\n{log}")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean shutdown that ends every session; ``immediate``: a server crash."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)
        self.running = False

    def shell_command(self, action: str) -> str:
        """``pg_ctl`` doing ``action`` ("stop -m fast", "start"), as a shell command line (for hooks)."""
        prefix = "runuser -u postgres -- " if self.as_postgres else ""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        extra = f" -o '{options}' -l {self.dir / 'server.log'}" if action.startswith("start") else ""
        return f"{prefix}{self.bin / 'pg_ctl'} -D {self.data} -w{extra} {action} >/dev/null"

    def setup_roles(self) -> None:
        self.admin(f"CREATE ROLE reconcile LOGIN PASSWORD '{PASSWORD}'")
        self.admin("CREATE DATABASE reconcile OWNER reconcile")

    def dsn(self, database: str = "reconcile", user: str = "reconcile", password: str = PASSWORD) -> str:
        return f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.dsn(database, "postgres", SUPER_PASSWORD), autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def destroy(self) -> None:
        if self.running:
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        try:
            self.init()
            self.start()
            self.setup_roles()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.destroy()
