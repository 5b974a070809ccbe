"""The monitoring loop, closed: a process that stops answering its scrape fires
SwitchboardProcessDown in Prometheus, Alertmanager delivers it to the dashboard's
webhook, and a staff member's dashboard socket gets the seed's `alert` frame.

compose-test.sh starts `--profile monitoring` with the deployment's own rules and
routes, at test speed only (2 s scrapes, every `for:` 10 s). The stopped process is
one of the two stats publishers, frozen with `docker pause`: it keeps its address in
Docker's DNS, so Prometheus still scrapes it and sees it down (a `compose stop`ped
container leaves DNS discovery, and with it `up`), and the other publisher carries
the dashboard meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest
from wsclient import Client

PROMETHEUS = os.environ.get("SB_PROMETHEUS_URL", "")
VICTIM = "dashboard-publisher"


def firing(job: str) -> list[dict]:
    res = httpx.get(f"{PROMETHEUS}/api/v1/alerts", timeout=5)
    res.raise_for_status()
    return [
        a
        for a in res.json()["data"]["alerts"]
        if a["labels"].get("alertname") == "SwitchboardProcessDown"
        and a["labels"].get("job") == job
        and a["state"] == "firing"
    ]


async def discovered_services(timeout: float = 60) -> dict[str, str | None]:
    """job -> its `service` label, once Prometheus's DNS discovery has found the victim
    and chat-inbox. Prometheus may have started before the containers it looks up had
    DNS names (a CI run read an empty target list), so wait for a later lookup."""
    deadline = time.monotonic() + timeout
    while True:
        res = httpx.get(f"{PROMETHEUS}/api/v1/targets", timeout=5)
        res.raise_for_status()
        services = {t["labels"].get("job"): t["labels"].get("service") for t in res.json()["data"]["activeTargets"]}
        if {VICTIM, "chat-inbox"} <= services.keys() or time.monotonic() > deadline:
            return services
        await asyncio.sleep(1)


async def victims_alert(staff: Client, deadline: float) -> dict:
    """The firing SwitchboardProcessDown frame whose summary names the victim's job. A
    loaded start-up can leave other processes unscraped past the test rules' 10 s
    `for:`; their alerts (and the resolved ones after) reach the socket too, and are not
    the one this test caused (a CI-like run got such a `resolved` frame first)."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"no firing alert naming {VICTIM}; alerts seen: {[f for f in staff.frames if f['type'] == 'alert']}"
            )
        frame = await staff.next_of("alert", timeout=remaining, name="SwitchboardProcessDown", status="firing")
        if VICTIM in frame["message"]:
            return frame


@pytest.mark.skipif(not PROMETHEUS, reason="the stack runs without --profile monitoring")
@pytest.mark.timeout(300)
async def test_a_frozen_process_alerts_the_staff_dashboard_through_prometheus_and_alertmanager(stack, tokens):
    services = await discovered_services()
    assert services.get("chat-inbox") == "chat", "scrape targets carry no `service` label"
    assert services.get(VICTIM) == "dashboard"

    staff = await Client.connect(f"{stack.ws_url}/ws/dashboard/", tokens["admin"])
    victim = stack.containers(VICTIM)[0]
    paused = time.monotonic()
    stack.docker("pause", victim)
    try:
        frame = await victims_alert(staff, deadline=time.monotonic() + 150)
        assert frame["level"] == "warning"
        assert frame["source"] == "alertmanager", frame
        # Prometheus holds it as firing: the frame came from the rule, not elsewhere.
        assert firing(VICTIM)
        # The time from the freeze to the staff socket (2 s scrapes, `for:` 10 s, group_wait 10 s).
        print(f"\nalert loop: frozen -> alert frame on a staff socket in {time.monotonic() - paused:.1f} s")
    finally:
        stack.docker("unpause", victim)
        # Its healthcheck failed while frozen: the suites after this one expect every
        # container healthy, which it is again at its next check.
        stack.wait_healthy(VICTIM, timeout=120)
    await staff.close()
    # Unpaused, the publisher answers its scrape again and the alert clears in Prometheus.
    deadline = time.monotonic() + 60
    while firing(VICTIM):
        assert time.monotonic() < deadline, "the alert still fires a minute after the process came back"
        await asyncio.sleep(2)
