"""A throwaway PostgreSQL cluster for the fault campaign, on a free port.

The configured PostgreSQL may not run in CI, and the campaign restarts it, so the test
starts its own (switchboard.pgcluster.PostgresCluster: Debian's PostgreSQL 15 binaries,
run as the `postgres` user when run as root), one database per service. Its port comes
from the launcher, which hands each port out once among the fleet's.
"""

from __future__ import annotations

from launcher import free_port
from switchboard.pgcluster import PostgresCluster
from switchboard.pgcluster import postgres_missing as available

__all__ = ["Cluster", "available"]


class Cluster(PostgresCluster):
    def __init__(self):
        super().__init__(port=free_port())
