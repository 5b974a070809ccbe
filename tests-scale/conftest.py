"""The scale test's stack and its one table: started by `make scale-test`
(deploy/compose/scale-test.sh: the compose fleet at composegen.scale_test_replicas(),
through compose-test.sh), which passes SB_URL and SB_COMPOSE as for the smoke suite.
Every test adds rows to `scale_report`; at the end they are printed and written as
JSON (SCALE_JSON, var/scale.json by default)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests-compose"))
sys.path.insert(0, str(ROOT / "tests-e2e"))
sys.path.insert(0, str(ROOT / "tests-e2e" / "faults"))

from campaign import Report, print_table  # noqa: E402
from stack import Stack  # noqa: E402
from wsclient import token  # noqa: E402

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
def stack() -> Stack:
    s = Stack.from_env()
    if s is None:
        pytest.skip("the scale test runs under `make scale-test`")
    return s


@pytest.fixture(scope="session")
def tokens(stack):
    return {name: token(stack.url, name) for name in ("alice", "bob", "admin")}


@pytest.fixture(scope="session")
def scale_report():
    report = Report()
    yield report
    if not report.rows:
        return
    print("\n" + print_table(report.rows, COLUMNS))
    out = Path(os.environ.get("SCALE_JSON", ROOT / "var" / "scale.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.as_json())
