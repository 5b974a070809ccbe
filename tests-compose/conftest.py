"""The compose stack for the smoke suite: started by deploy/compose/compose-test.sh
(make compose-test), which passes how to reach it in the environment:

    SB_URL       the gateway, published on 127.0.0.1 only (tests reach nothing else)
    SB_COMPOSE   the compose command with its files, env file and project name
    SB_FLOWER_AUTH  user:password of Flower's basic auth (FLOWER_BASIC_AUTH of the run)

Tests restart and kill containers through that command, as an operator would, and
read a process's own /metrics with `docker exec` (metrics are never published).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests-e2e"))  # reuse wsclient.Client and the collab clients

from stack import Stack  # noqa: E402
from wsclient import token  # noqa: E402


@pytest.fixture(scope="session")
def stack() -> Stack:
    s = Stack.from_env()
    if s is None:
        pytest.skip("the compose smoke suite runs under `make compose-test`")
    return s


@pytest.fixture(scope="session")
def tokens(stack):
    return {name: token(stack.url, name) for name in ("alice", "bob", "admin")}
