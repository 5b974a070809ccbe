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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import Stack, stack, tokens  # noqa: E402,F401  (the suite's fixtures)
