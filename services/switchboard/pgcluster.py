"""A throwaway PostgreSQL cluster in a temporary directory on a free port: the
`postgres` test fixture's (switchboard.testing), the fault campaign's PostgreSQL row
(tests-e2e/faults/pg.py) and `bench/run.py --db postgres`.

Debian's PostgreSQL 15 server binaries (deploy/system-deps.sh installs them), run as
the `postgres` user when this is root (initdb refuses root); one database per
`create_db`, as compose gives each service its own. Never the machine's own server.
No Django import here: the bench imports it outside any service's settings.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def postgres_missing() -> str | None:
    """None when a PostgreSQL cluster can be started here, else what is missing."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL binaries ({PG_BIN}/initdb)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "runuser (to run initdb as the postgres user)"
    return None


class PostgresCluster:
    """A PostgreSQL cluster in a temporary directory on a free port, one database per
    `create_db`. Run as the `postgres` user when this is root (initdb refuses root)."""

    def __init__(self, port: int | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
        self.port = port or free_port()
        self.data = self.dir / "data"

    def _run(self, *cmd: str) -> None:
        if os.geteuid() == 0:
            cmd = ("runuser", "-u", "postgres", "--", *cmd)
        subprocess.run(cmd, check=True, capture_output=True, cwd="/")

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        if not self.data.exists():
            self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "pg.log"),
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_db(self, name: str) -> str:
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
