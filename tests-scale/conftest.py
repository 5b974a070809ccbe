"""The scale test's stack and its one table: started by `make scale-test`
(deploy/compose/compose-test.sh with the compose fleet at composegen.scale_test_replicas()
and this suite), which passes SB_URL and SB_COMPOSE as for the smoke suite.
Every test adds rows to `scale_report`; at the end they are printed and written as
JSON (SCALE_JSON, var/scale.json by default), and each row's lease changes from its fault on
beside it (scale-leases.json)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests-compose"))
sys.path.insert(0, str(ROOT / "tests-e2e"))
sys.path.insert(0, str(ROOT / "tests-e2e" / "faults"))

import campaign  # noqa: E402
from campaign import Report  # noqa: E402
from stack import stack, tokens  # noqa: E402,F401  (the suite's fixtures)

# Three rooms of the same three users: each user sends 6 frames/s over its sockets,
# far under RATE_USER_PER_SECOND (20) with the collab editors and resends on top.
campaign.SEND_INTERVAL = 0.5

COLUMNS = [
    "fault",
    "load",
    "sent",
    "acknowledged",
    "lost",
    "duplicated",
    "order_violations",
    "seconds_to_owned",
    "seconds_to_recover",
    "converged",
]


@pytest.fixture(scope="session")
def scale_report():
    path = Path(os.environ.get("SCALE_JSON", ROOT / "var" / "scale.json"))
    # Each row's lease changes from the fault on (test_scale.Owned.save), this run's only.
    path.with_name("scale-leases.json").unlink(missing_ok=True)
    report = Report()
    yield report
    report.publish(path, COLUMNS)
