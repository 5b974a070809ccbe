"""A reconnect storm is queued by the kernel, not dropped: the fleet's listening sockets
(ws-gateway's daphne, nginx in front) keep a burst of connects while the process is
busy, as after a ws-gateway restart when thousands of clients reconnect at once.

Each server is started exactly as the launcher starts it (Fleet.plan()'s command and
environment) and then stopped (SIGSTOP), so it accepts nothing: every connect of the
burst must still be answered by the kernel (SYN-ACK, queued for accept). A connect the
kernel drops instead waits out SYN retransmits (1, 3, 7, 15 s) before it gets another
chance, which is what a client of a storm met.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

import launcher

# Above daphne's and Twisted's default backlog (50) and nginx's (511).
BURST = 700


def somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


pytestmark = pytest.mark.skipif(
    somaxconn() < BURST, reason=f"net.core.somaxconn caps every backlog below {BURST} on this machine"
)


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "LOCAL_SECRETS_FILE", tmp_path / "local-secrets.json")
    f = launcher.Fleet(run_dir=tmp_path / "run", gateway_port=launcher.free_port(), redis_url="redis://127.0.0.1:1/0")
    f.plan()
    return f


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


@contextmanager
def started(fleet: launcher.Fleet, name: str, port: int):
    program = fleet.program(name)
    env = {**os.environ, **fleet.base_env, **program.env}
    proc = subprocess.Popen(
        program.command, env=env, cwd=launcher.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_listening(port, proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(10)


def unanswered_connects(port: int, stopped: list[int]) -> int:
    """How many of BURST connects the kernel leaves unanswered while `stopped` accept nothing."""
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    socks = []
    sel = selectors.DefaultSelector()
    try:
        for _ in range(BURST):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
            sel.register(s, selectors.EVENT_WRITE)
        # On loopback a SYN-ACK comes back at once; what has none within the first SYN
        # timeout (1 s) was dropped by a full accept queue. Waiting longer changes
        # nothing while the server is stopped: the retransmits are dropped too.
        answered = set()
        deadline = time.monotonic() + 0.9
        while len(answered) < BURST and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                answered.add(key.fileobj)
                sel.unregister(key.fileobj)
        return BURST - len(answered)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        for s in socks:
            s.close()


def test_ws_gateway_queues_a_burst_of_connects(fleet):
    gw = fleet.program("ws-gateway-0")
    with started(fleet, gw.name, gw.http_port) as proc:
        assert unanswered_connects(gw.http_port, [proc.pid]) == 0


def test_nginx_queues_a_burst_of_connects(fleet):
    nginx = fleet.program("nginx")
    with started(fleet, "nginx", fleet.gateway_port) as master:
        # The master and its one worker both hold the listening socket; the worker accepts.
        workers = subprocess.run(["pgrep", "-P", str(master.pid)], capture_output=True, text=True).stdout.split()
        assert workers, nginx.command
        assert unanswered_connects(fleet.gateway_port, [master.pid, *map(int, workers)]) == 0
