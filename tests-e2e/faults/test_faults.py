"""The fault campaign: one row per fault and load, under a steady load of chat,
notifications and collaborative editing through nginx (campaign.py).

Table-driven: a fault is a row of FAULTS (name, the programs it needs, how to inject
it, extra loads it strikes, and how it proves it struck: a fault that did not happen
fails its row). Services that have not landed yet are named in `needs`, and their rows
skip saying what is missing. Every row runs in `make test` at the reduced scale and in
`make faults` at the full one (campaign.SCALES: 500 sockets); conftest.py prints the
table and writes it as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pg
import pytest
from campaign import LOADS, SCALE, Row, run_fault
from fleetenv import tracebacks
from metricsutil import sample
from wsclient import token

from launcher import SERVICES, Fleet, free_port
from switchboard import failpoints


@dataclass(frozen=True)
class Fault:
    name: str
    needs: tuple[str, ...]  # services (launcher SERVICES names) or programs it needs
    inject: object  # async (fleet, loads) -> note
    loads: tuple[str, ...] = LOADS
    # (rows, loads) -> None: asserts the fault struck (beyond what inject checked).
    struck: object = None


def sockets_were_dropped(rows, loads) -> None:
    assert sum(r.sockets_dropped for r in rows) > 0, "the gateway kill dropped no socket"


def a_report_ran_twice(rows, loads) -> None:
    attempts = loads["reports"].attempts
    assert max(attempts) >= 2, f"no report was run again after the kill: runs {attempts}"


def refuses(port: int) -> bool:
    """Nothing accepts connections on `port` (the evidence that an outage is one)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


async def redis_restart(fleet, loads):
    fleet.ctl("stop", "redis")
    assert refuses(fleet.redis_port), "Redis still accepts connections after its stop"
    await asyncio.sleep(5)
    assert refuses(fleet.redis_port), "Redis came back before the outage ended"
    fleet.ctl("start", "redis")
    return "stop (refusing connections), 5 s, start"


async def redis_restart_mid_report(fleet, loads):
    # Celery's broker and result store are this Redis: a report running (its first
    # progress frame seen) when Redis goes away must still complete, once.
    await loads["reports"].request()
    return "report running; " + await redis_restart(fleet, loads)


def pids_of(fleet, prefix: str) -> dict[str, int]:
    return {p.name: fleet.pid(p.name) for p in fleet.programs if p.name.startswith(prefix)}


async def collab_sigkill_between_parts(fleet, loads):
    # No signal from outside can land between two publishes of one broadcast: the
    # worker kills itself there (switchboard/failpoints.py), after the Yjs update
    # (part 0) went out and before the JSON edits (parts 1..n) did.
    before = pids_of(fleet, "collab-inbox")
    failpoints.arm(Path(fleet.env["FAILPOINTS_DIR"]), "collab.between_parts")
    for _ in range(300):
        await asyncio.sleep(0.1)
        with contextlib.suppress(ValueError, RuntimeError):  # no pid while supervisord restarts it
            if pids_of(fleet, "collab-inbox") != before:
                return "killed itself after part 0 of a broadcast; supervisord restarts it"
    raise AssertionError("the collab worker never reached the failpoint")


async def chat_inbox_sigkill(fleet, loads):
    fleet.kill("chat-inbox", signal.SIGKILL)
    return "supervisord restarts it"


def gateway_sockets(fleet) -> dict[str, float]:
    """Open WebSockets per ws-gateway process, from each one's own metrics."""
    names = [p.name for p in fleet.programs if p.service == "ws-gateway"]
    return {n: sample(fleet, n, "switchboard_gateway_connections") for n in names}


async def gateway_sigkill(fleet, loads):
    # The victim is the gateway holding the most sockets (nginx picked for each).
    held = gateway_sockets(fleet)
    victim = max(held, key=held.get)
    assert held[victim] > 0, held
    fleet.kill(victim, signal.SIGKILL)
    return f"{victim} held {held[victim]:.0f} sockets; clients reconnect through nginx with ?since"


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
        assert (row.lost, row.duplicated, row.leaked, row.order_violations) == (0, 0, 0, 0), row
        assert row.delivered == row.acknowledged, row
        assert row.converged in ("", "yes"), row
        assert "not recovered" not in row.note, row
        if row.load in ("chat", "collab"):  # their clients send again until acknowledged
            assert row.acknowledged == row.sent, row


FAULTS = [
    Fault("redis restart", ("chat",), redis_restart),
    Fault(
        "redis restart with a report in flight",
        ("report-worker",),
        redis_restart_mid_report,
        (*LOADS, "reports"),
    ),
    Fault("chat inbox SIGKILL", ("chat",), chat_inbox_sigkill),
    Fault("collab inbox SIGKILL between the parts of a broadcast", ("collab",), collab_sigkill_between_parts),
    Fault("ws-gateway SIGKILL", ("chat",), gateway_sigkill, struck=sockets_were_dropped),
    # Celery: acks_late + task_reject_on_worker_lost + a visibility timeout of seconds.
    Fault(
        "celery worker SIGKILL mid-report",
        ("report-worker",),
        celery_sigkill,
        (*LOADS, "reports"),
        struck=a_report_ran_twice,
    ),
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
    struck = {}

    async def inject(loads):
        struck["loads"] = loads
        return await fault.inject(fleet, loads)

    rows = await run_fault(fleet, tokens, fault.name, inject, loads=fault.loads, scale=SCALE)
    fault_report.rows.extend(rows)
    # The fleet is whole again before the next row.
    fleet.wait_ready(time.time() + 60)
    check(rows)
    if fault.struck:
        fault.struck(rows, struck["loads"])


@pytest.fixture(scope="module")
def pg_fleet(tmp_path_factory, fleet):
    """A second fleet whose services of ON_POSTGRES run on the campaign's own PostgreSQL."""
    missing = pg.available()
    if missing:  # `make test` and `make faults` install it (deploy/system-deps.sh)
        pytest.fail(f"the PostgreSQL row needs {missing}: run deploy/system-deps.sh (make deps)")
    cluster = pg.Cluster()
    cluster.start()
    names = {s.name for s in SERVICES}
    service_env = {
        svc: {"DATABASE_URL": cluster.create_db(svc.replace("-", "_"))} for svc in ON_POSTGRES if svc in names
    }
    run_dir = tmp_path_factory.mktemp("pgfleet")
    fleet = Fleet(
        run_dir=run_dir, gateway_port=free_port(), ws_gateway_processes=2, env=fleet.env, service_env=service_env
    )
    try:
        fleet.start(wait=120)
        yield fleet, cluster, sorted(service_env)
    finally:
        fleet.stop()
        cluster.destroy()
    found = tracebacks(run_dir / "logs")
    assert not found, f"{len(found)} traceback(s) in the PostgreSQL fleet's logs:\n" + "\n".join(found[:10])


async def test_postgresql_restart_loses_no_acknowledged_message(pg_fleet, fault_report):
    fleet, cluster, on_pg = pg_fleet
    tokens = {name: token(fleet.url, name) for name in ("alice", "bob", "admin")}

    async def restart(loads):
        cluster.stop()
        assert refuses(cluster.port), "PostgreSQL still accepts connections after its stop"
        await asyncio.sleep(5)
        cluster.start()
        not_here = [s for s in ON_POSTGRES if s not in on_pg]
        return f"on PostgreSQL: {', '.join(on_pg)}" + (
            f" (not on this branch: {', '.join(not_here)})" if not_here else ""
        )

    rows = await run_fault(fleet, tokens, "postgresql restart", restart, scale=SCALE)
    fault_report.rows.extend(rows)
    check(rows)


def test_a_supervisorctl_command_that_fails_raises(fleet):
    """A fault that stops a program must know it stopped: Fleet.ctl returned the
    output of a failed command (`ERROR (no such process)`) as if it had worked."""
    with pytest.raises(RuntimeError, match="no such process"):
        fleet.ctl("stop", "no-such-program")
    assert "RUNNING" in fleet.ctl("status", "redis", check=False)
