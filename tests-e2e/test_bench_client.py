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


def test_fanout_split_over_client_processes_counts_every_delivery_once(tmp_path):
    """The fan-out's receivers in two client processes against the floor (bench/floor.py
    on its own Redis): every message reaches every receiver once and the merged figures
    say so, with a latency sample per delivery (none counted twice, none lost)."""
    import socket
    import time

    sys.path.insert(0, str(ROOT / "deploy"))
    from launcher import free_port, redis_server

    redis_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONWARNINGS": "ignore",
        "SWITCHBOARD_SECRET_KEY": "bench-only-secret-key-0123456789abcdef0123456789",
        "SWITCHBOARD_JWT_KEYS": "bench:bench-only-jwt-key-0123456789abcdef0123456789",
    }
    procs = [
        subprocess.Popen([redis_server(), "--port", str(redis_port), "--save", "", "--appendonly", "no"]),
    ]
    try:
        time.sleep(0.5)
        floor = [sys.executable, str(ROOT / "bench" / "floor.py"), "--port", str(port)]
        procs.append(subprocess.Popen([*floor, "--redis", f"redis://127.0.0.1:{redis_port}/0"], env=env))
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline, "the floor did not listen"
                time.sleep(0.1)
        res = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "loadclient.py"), "fanout", "--target", "floor"]
            + ["--port", str(port), "--receivers", "9", "--users", "3", "--duration", "0.5", "--client-procs", "2"]
            + ["--pids", ",".join(str(p.pid) for p in procs)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        result = json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
    assert result["client_procs"] == 2
    assert result["receivers"] == 9
    assert result["lost"] == 0
    assert result["duplicated"] == 0
    assert result["max"]["deliveries"] == result["max"]["messages"] * 9
    assert result["paced"]["samples"] == result["paced"]["messages"] * 9
    assert len(result["max"]["client_cpus"]) == 3  # the sender's process and two receiving ones
