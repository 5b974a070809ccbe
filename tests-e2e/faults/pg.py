"""A throwaway PostgreSQL cluster for the fault campaign, on a free port.

The configured PostgreSQL may not run in CI, and the campaign restarts it, so the test
starts its own with Debian's PostgreSQL 15 binaries (initdb, pg_ctl) as the `postgres`
user when run as root (initdb refuses root), one database per service.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from launcher import free_port

BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> str | None:
    """None when a cluster can be started here, else what is missing."""
    if not (BIN / "initdb").exists():
        return f"PostgreSQL binaries ({BIN}/initdb)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "runuser (to run initdb as the postgres user)"
    return None


class Cluster:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
        self.port = free_port()
        self.data = self.dir / "data"

    def _run(self, *cmd: str) -> None:
        if os.geteuid() == 0:
            cmd = ("runuser", "-u", "postgres", "--", *cmd)
        subprocess.run(cmd, check=True, capture_output=True, cwd="/")

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        if not self.data.exists():
            self._run(str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        self._run(
            str(BIN / "pg_ctl"),
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
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_db(self, name: str) -> str:
        self._run(str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
