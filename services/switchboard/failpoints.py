"""Failpoints: named places in a service where the fault campaign can make its process
die (SIGKILL, as a crash or an OOM kill would) between two steps no outside signal
can time, e.g. between the parts of one collab broadcast.

Off unless FAILPOINTS_DIR is set (never in production). Armed by creating a file named
after the failpoint in that directory; the first process to reach the place removes
the file and kills itself, so the restarted process runs on (one kill per arming).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from switchboard.config import env

_DIR = env("FAILPOINTS_DIR")


def hit(name: str) -> None:
    """Die here if `name` is armed."""
    if not _DIR:
        return
    armed = Path(_DIR) / name
    try:
        armed.unlink()
    except FileNotFoundError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def arm(directory: Path, name: str) -> Path:
    """Arm `name` for the processes that read `directory` (tests)."""
    directory.mkdir(parents=True, exist_ok=True)
    armed = directory / name
    armed.touch()
    return armed
