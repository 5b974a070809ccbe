"""A smoke run of the bench's load client against the e2e fleet: it speaks Switchboard's
chat and the gateway's own route, and its bookkeeping adds up. No timing is asserted:
figures belong to `make bench`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_chat import new_room

ROOT = Path(__file__).resolve().parents[1]


def loadclient(fleet, *args: str, target: str = "switchboard") -> dict:
    port = fleet.gateway_port  # through nginx, as users come in
    res = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "loadclient.py"), *args, "--target", target, "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_round_trip_gets_every_stored_echo(fleet, tokens):
    room = new_room(fleet, tokens)
    # 10 frames, each after the previous echo: within the default rate limits.
    result = loadclient(fleet, "roundtrip", "--room", room, "--count", "10", "--warmup", "0", "--uid-base", "9100")
    assert result["count"] == 10
    assert result["timeouts"] == 0
    assert result["errors"] == []


def test_idle_sockets_open_on_the_gateway_route(fleet):
    result = loadclient(
        fleet,
        "idle",
        "--sockets",
        "5",
        "--concurrency",
        "5",
        "--settle",
        "0",
        "--uid-base",
        "9200",
        target="switchboard-tasks",
    )
    assert result["sockets"] == 5
    assert result["failures"] == 0
