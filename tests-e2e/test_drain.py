"""ws-gateway drains on SIGTERM, as Kubernetes and supervisord stop it: every socket
of the stopping process is closed with 1001 (clients reconnect), the other gateway
keeps its sockets and takes the reconnects, and the process exits within its budget."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from metricsutil import sample
from wsclient import Client

from switchboard.closecodes import CloseCode, may_reconnect
from ws_gateway.drain import DRAIN_SECONDS


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie until supervisord reaps it: exited all the same.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


async def test_sigterm_closes_every_socket_with_going_away_and_clients_reconnect(fleet, tokens):
    url = f"{fleet.ws_url}/ws/chat/lobby/"
    clients = []
    # Sockets other tests left open count in the gauges too: count ours only.
    base0 = sample(fleet, "ws-gateway-0", "switchboard_gateway_connections", route="chat")
    base1 = sample(fleet, "ws-gateway-1", "switchboard_gateway_connections", route="chat")
    # nginx balances round robin over both gateways: open until each holds some.
    for _ in range(40):
        c = await Client.connect(url, tokens["alice"])
        await c.next_of("history")
        clients.append(c)
        on0 = sample(fleet, "ws-gateway-0", "switchboard_gateway_connections", route="chat") - base0
        on1 = sample(fleet, "ws-gateway-1", "switchboard_gateway_connections", route="chat") - base1
        if len(clients) >= 6 and on0 >= 2 and on1 >= 2:
            break
    assert on0 >= 2 and on1 >= 2, (on0, on1)

    pid = fleet.pid("ws-gateway-0")
    t0 = time.monotonic()
    fleet.kill("ws-gateway-0", signal.SIGTERM)

    async def outcome(c: Client):
        try:
            return await c.closed_with(timeout=DRAIN_SECONDS + 5)
        except TimeoutError:
            return None  # still open: it was on the other gateway

    async def exited() -> float:
        while not gone(pid):
            await asyncio.sleep(0.02)
        return time.monotonic() - t0

    exit_seconds, *codes = await asyncio.gather(exited(), *(outcome(c) for c in clients))
    closed = [code for code in codes if code is not None]
    # Every socket of the drained process got the reconnect code, none got 1006.
    assert closed == [CloseCode.GOING_AWAY] * int(on0), codes
    assert may_reconnect(CloseCode.GOING_AWAY)
    # Within the drain budget, far inside supervisord's 10 s and Kubernetes' grace.
    assert exit_seconds < DRAIN_SECONDS + 2, exit_seconds
    print(f"drain: {int(on0)} sockets closed with 1001; process exited {exit_seconds:.2f} s after SIGTERM")
    # The sockets on the other gateway were not touched.
    survivors = [c for c, code in zip(clients, codes, strict=True) if code is None]
    assert len(survivors) == int(on1)
    await survivors[0].send({"type": "chat_message", "message": "still here", "client_id": f"drain-{pid}"})
    await survivors[0].next_of("chat_message", client_id=f"drain-{pid}")

    # The dropped clients reconnect at once (as @switchboard/client does after its backoff)
    # and land on the gateway that is still up.
    before = sample(fleet, "ws-gateway-1", "switchboard_gateway_connections", route="chat")
    again = []
    for _ in range(int(on0)):
        c = await Client.connect(url, tokens["alice"])
        await c.next_of("history")
        again.append(c)
    after = sample(fleet, "ws-gateway-1", "switchboard_gateway_connections", route="chat")
    assert after - before >= 1
    for c in survivors + again:
        await c.close()
    # supervisord restarts it; leave the fleet whole for the tests after this one.
    fleet.wait_ready(time.time() + 30, ["ws-gateway-0"])
