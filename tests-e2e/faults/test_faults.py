"""The fault campaign: one row per fault, under a steady chat load through nginx.

Table-driven: a fault is a row of FAULTS (name, the programs it needs, whether it is
fast enough for `make test`, how to inject it). Services that have not landed yet are
named in `needs`, and their rows skip saying what is missing; when they land, their
programs appear in the launcher and the rows run. `make faults` runs every row
(SWITCHBOARD_FAULTS=all); conftest.py prints the table and writes it as JSON.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass

import pg
import pytest
from campaign import run_fault
from wsclient import token

from launcher import SERVICES, Fleet, free_port

FULL = os.environ.get("SWITCHBOARD_FAULTS") == "all"


@dataclass(frozen=True)
class Fault:
    name: str
    needs: tuple[str, ...]  # services (launcher SERVICES names) or programs it needs
    fast: bool  # part of `make test`
    inject: object  # async (fleet) -> note


async def redis_restart(fleet):
    fleet.ctl("stop", "redis")
    await asyncio.sleep(5)
    fleet.ctl("start", "redis")
    return "stop, 5 s, start"


async def chat_inbox_sigkill(fleet):
    fleet.kill("chat-inbox", signal.SIGKILL)
    return "supervisord restarts it"


async def gateway_sigkill(fleet):
    fleet.kill("ws-gateway-0", signal.SIGKILL)
    return "clients reconnect through nginx with ?since"


async def not_landed(fleet):  # never called: the row skips
    raise AssertionError


FAULTS = [
    Fault("redis restart", ("chat",), False, redis_restart),
    Fault("chat inbox SIGKILL", ("chat",), True, chat_inbox_sigkill),
    Fault("ws-gateway SIGKILL", ("chat",), False, gateway_sigkill),
    # Celery: acks_late + task_reject_on_worker_lost + a visibility timeout of seconds.
    Fault("celery worker SIGKILL mid-report", ("report-worker",), False, not_landed),
]

# Services the PostgreSQL row puts on the campaign's own cluster (each its own database).
ON_POSTGRES = ("chat", "notification")


def _missing(needs: tuple[str, ...]) -> list[str]:
    names = {s.name for s in SERVICES}
    return [n for n in needs if n not in names]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name.replace(" ", "-") for f in FAULTS])
async def test_fault_loses_and_duplicates_no_acknowledged_message(fleet, tokens, fault, fault_report):
    missing = _missing(fault.needs)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}, not on this branch yet")
    if fault.inject is not_landed:
        pytest.skip(f"{fault.name}: injection lands with {', '.join(fault.needs)}")
    if not (fault.fast or FULL):
        pytest.skip("full campaign only (make faults)")
    row = await run_fault(fleet, tokens, fault.name, lambda: fault.inject(fleet))
    fault_report.rows.append(row)
    # The fleet is whole again before the next row.
    fleet.wait_ready(time.time() + 60)
    assert row.acknowledged > 0, row
    assert (row.lost, row.duplicated) == (0, 0), row
    assert row.delivered == row.acknowledged, row


@pytest.fixture(scope="module")
def pg_fleet(tmp_path_factory, fleet):
    """A second fleet whose services of ON_POSTGRES run on the campaign's own PostgreSQL."""
    missing = pg.available()
    if missing:
        pytest.skip(f"needs {missing}")
    cluster = pg.Cluster()
    cluster.start()
    names = {s.name for s in SERVICES}
    service_env = {
        svc: {"DATABASE_URL": cluster.create_db(svc.replace("-", "_"))} for svc in ON_POSTGRES if svc in names
    }
    run_dir = tmp_path_factory.mktemp("pgfleet")
    fleet = Fleet(
        run_dir=run_dir, gateway_port=free_port(), gateway_processes=2, env=fleet.env, service_env=service_env
    )
    try:
        fleet.start(wait=120)
        yield fleet, cluster, sorted(service_env)
    finally:
        fleet.stop()
        cluster.destroy()


async def test_postgresql_restart_loses_no_acknowledged_message(pg_fleet, fault_report):
    if not FULL:
        pytest.skip("full campaign only (make faults)")
    fleet, cluster, on_pg = pg_fleet
    tokens = {name: token(fleet.url, name) for name in ("alice", "bob", "admin")}

    async def restart():
        cluster.stop()
        await asyncio.sleep(5)
        cluster.start()
        not_here = [s for s in ON_POSTGRES if s not in on_pg]
        return f"on PostgreSQL: {', '.join(on_pg)}" + (
            f" (not on this branch: {', '.join(not_here)})" if not_here else ""
        )

    row = await run_fault(fleet, tokens, "postgresql restart", restart)
    fault_report.rows.append(row)
    assert row.acknowledged > 0, row
    assert (row.lost, row.duplicated) == (0, 0), row
    assert row.delivered == row.acknowledged, row
