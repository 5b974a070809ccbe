"""The fault campaign's one table: every test that measures a fault adds a row to
`fault_report`; at the end of the session it is printed and written as JSON
(FAULTS_JSON, var/faults.json by default)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from campaign import Report


@pytest.fixture(scope="session")
def fault_report():
    report = Report()
    yield report
    report.publish(Path(os.environ.get("FAULTS_JSON", "var/faults.json")))
