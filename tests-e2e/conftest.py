"""The fleet for end-to-end tests: booted once per session by the same launcher as
`make run`, on free ports, with its own Redis, behind a real nginx.

Tests reach it only through nginx (`fleet.url`, `fleet.ws_url`), as users do; they use
`fleet.ctl/kill/restart` to stop and crash single processes.
"""

from __future__ import annotations

import os
import shutil

import pytest
from wsclient import token

from launcher import Fleet, free_port

E2E_ENV = {
    # Short enough that a test of the timeout waits seconds, not minutes.
    "CONNECT_TIMEOUT_SECONDS": "3",
    "PRESENCE_TTL_SECONDS": "6",
    "PRESENCE_HEARTBEAT_SECONDS": "2",
    # A slow client is closed after a few hundred KB, so its test sends seconds of load.
    "WS_SEND_BUFFER_BYTES": "262144",
    # collab: small enough that the suite's edits cross it several times.
    "COLLAB_COMPACT_UPDATES": "20",
    # dashboard: a tick a second and a 3 s lease, so counting ticks and a publisher
    # handover take seconds; the webhook secret the Alertmanager-format tests send.
    "DASHBOARD_STATS_INTERVAL_SECONDS": "1",
    "DASHBOARD_LEASE_SECONDS": "3",
    "ALERT_WEBHOOK_SECRET": "e2e-alertmanager-secret",
    # reports: steps paced so a kill lands mid-report; a killed worker's task comes
    # back after 10 s (above the longest e2e report, so none runs twice while alive).
    "REPORT_STEP_SECONDS": "0.4",
    "CELERY_VISIBILITY_TIMEOUT_SECONDS": "10",
}


@pytest.fixture(scope="session")
def fleet(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("fleet")
    fleet = Fleet(run_dir=run_dir, gateway_port=free_port(), gateway_processes=2, env=E2E_ENV)
    try:
        fleet.start(wait=120)
    except BaseException:  # pytest-timeout's failure too: never leave a fleet behind
        fleet.stop()
        for log in sorted((run_dir / "logs").glob("*.log")):
            print(f"---- {log.name}\n{log.read_text()[-3000:]}")
        raise
    yield fleet
    fleet.stop()
    if not os.environ.get("KEEP_FLEET"):  # KEEP_FLEET=1 keeps logs for a post-mortem
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def tokens(fleet):
    return {name: token(fleet.url, name) for name in ("alice", "bob", "admin")}
