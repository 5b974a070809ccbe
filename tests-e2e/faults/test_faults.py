"""The fault campaign: one row per fault and load, under a steady load of chat,
notifications and collaborative editing through nginx (campaign.py).

Table-driven: a fault is a row of FAULTS (name, the programs it needs, whether it is
fast enough for `make test`, how to inject it, extra loads it strikes). Services that
have not landed yet are named in `needs`, and their rows skip saying what is missing.
`make faults` runs every row (SWITCHBOARD_FAULTS=all); conftest.py prints the table
and writes it as JSON.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass

import pg
import pytest
from campaign import FULL, LOADS, Row, run_fault
from wsclient import token

from launcher import SERVICES, Fleet, free_port


@dataclass(frozen=True)
class Fault:
    name: str
    needs: tuple[str, ...]  # services (launcher SERVICES names) or programs it needs
    fast: bool  # part of `make test`
    inject: object  # async (fleet, loads) -> note
    loads: tuple[str, ...] = LOADS


async def redis_restart(fleet, loads):
    fleet.ctl("stop", "redis")
    await asyncio.sleep(5)
    fleet.ctl("start", "redis")
    return "stop, 5 s, start"


async def chat_inbox_sigkill(fleet, loads):
    fleet.kill("chat-inbox", signal.SIGKILL)
    return "supervisord restarts it"


async def gateway_sigkill(fleet, loads):
    fleet.kill("ws-gateway-0", signal.SIGKILL)
    return "clients reconnect through nginx with ?since"


async def celery_sigkill(fleet, loads):
    # Reports requested, one running (its first progress frame seen): kill the worker.
    # acks_late + task_reject_on_worker_lost leave the task on the broker, which gives
    # it back after CELERY_VISIBILITY_TIMEOUT_SECONDS (fleetenv.py: 10 s).
    await loads["reports"].request()
    fleet.kill("report-worker-celery", signal.SIGKILL)
    return "mid-report; supervisord restarts it, the broker redelivers"


def check(rows: list[Row]) -> None:
    """What every fault must show, for every load."""
    for row in rows:
        assert row.acknowledged > 0, row
        assert (row.lost, row.duplicated) == (0, 0), row
        assert row.delivered == row.acknowledged, row
        assert row.converged in ("", "yes"), row
        assert "not recovered" not in row.note, row


FAULTS = [
    Fault("redis restart", ("chat",), False, redis_restart),
    Fault("chat inbox SIGKILL", ("chat",), True, chat_inbox_sigkill),
    Fault("ws-gateway SIGKILL", ("chat",), False, gateway_sigkill),
    # Celery: acks_late + task_reject_on_worker_lost + a visibility timeout of seconds.
    Fault("celery worker SIGKILL mid-report", ("report-worker",), False, celery_sigkill, (*LOADS, "reports")),
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
    if not (fault.fast or FULL):
        pytest.skip("full campaign only (make faults)")
    rows = await run_fault(fleet, tokens, fault.name, lambda loads: fault.inject(fleet, loads), loads=fault.loads)
    fault_report.rows.extend(rows)
    # The fleet is whole again before the next row.
    fleet.wait_ready(time.time() + 60)
    check(rows)


@pytest.fixture(scope="module")
def pg_fleet(tmp_path_factory, fleet):
    """A second fleet whose services of ON_POSTGRES run on the campaign's own PostgreSQL."""
    if not FULL:  # before booting it: `make test` does not need a second fleet
        pytest.skip("full campaign only (make faults)")
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
    fleet, cluster, on_pg = pg_fleet
    tokens = {name: token(fleet.url, name) for name in ("alice", "bob", "admin")}

    async def restart(loads):
        cluster.stop()
        await asyncio.sleep(5)
        cluster.start()
        not_here = [s for s in ON_POSTGRES if s not in on_pg]
        return f"on PostgreSQL: {', '.join(on_pg)}" + (
            f" (not on this branch: {', '.join(not_here)})" if not_here else ""
        )

    rows = await run_fault(fleet, tokens, "postgresql restart", restart)
    fault_report.rows.extend(rows)
    check(rows)
