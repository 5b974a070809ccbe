"""A compose stack driven from outside, as an operator would: through its compose
command (restart, scale, ps) and docker (kill, exec, inspect, network). Used by the
smoke suite (tests-compose/) and the scale test (tests-scale/)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests-e2e"))  # reuse wsclient.Client and the collab clients

from wsclient import token  # noqa: E402

DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")


@dataclass
class Stack:
    url: str
    compose_cmd: list[str]

    @classmethod
    def from_env(cls) -> Stack | None:
        """The stack deploy/compose/compose-test.sh started (SB_URL, SB_COMPOSE), once its
        gateway answers; None outside such a run."""
        if not os.environ.get("SB_URL"):
            return None
        s = cls(os.environ["SB_URL"], shlex.split(os.environ["SB_COMPOSE"]))
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{s.url}/healthz", timeout=3):
                    return s
            except OSError:
                assert time.monotonic() < deadline, "the gateway does not answer"
                time.sleep(1)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :]

    def compose(self, *args: str, timeout: float = 180) -> str:
        res = subprocess.run(
            [*self.compose_cmd, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
        )
        assert res.returncode == 0, f"{args}: {res.stderr[-2000:]}"
        return res.stdout

    def containers(self, service: str | None = None) -> list[str]:
        """Container ids of a service (of the whole project when None)."""
        return sorted(self.compose("ps", "-q", *([service] if service else [])).split())

    def docker(self, *args: str, check: bool = True) -> str:
        res = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=120, check=False)
        if check:
            assert res.returncode == 0, f"docker {args}: {res.stderr[-2000:]}"
        return res.stdout

    def logs(self, container: str) -> str:
        """What the container wrote, stdout and stderr."""
        res = subprocess.run([DOCKER, "logs", container], capture_output=True, text=True, timeout=120, check=False)
        return res.stdout + res.stderr

    def health(self, container: str) -> str:
        state = json.loads(self.docker("inspect", "--format", "{{json .State}}", container))
        return (state.get("Health") or {}).get("Status") or state["Status"]

    def wait_healthy(self, service: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            states = [self.health(c) for c in self.containers(service)]
            if states and all(s == "healthy" for s in states):
                return
            assert time.monotonic() < deadline, f"{service}: {states}"
            time.sleep(1)

    def crash(self, container: str) -> None:
        """SIGKILL the container's main process from the host, as a crash would."""
        pid = int(self.docker("inspect", "--format", "{{.State.Pid}}", container))
        os.kill(pid, signal.SIGKILL)

    def metric(self, container: str, name: str) -> float:
        """Sum of one metric's samples from a container's own /metrics (port 9100)."""
        probe = "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9100/metrics',timeout=5).read().decode())"
        text = self.docker("exec", container, "python", "-c", probe)
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " ")
        )


# The fixtures of both suites (their conftest.py imports them).
@pytest.fixture(scope="session")
def stack() -> Stack:
    s = Stack.from_env()
    if s is None:
        pytest.skip("runs under `make compose-test` or `make scale-test`, which start the stack")
    return s


@pytest.fixture(scope="session")
def tokens(stack):
    return {name: token(stack.url, name) for name in ("alice", "bob", "admin")}
