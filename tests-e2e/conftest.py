"""The fleet for end-to-end tests: booted once per session by the same launcher as
`make run`, on free ports, with its own Redis, behind a real nginx.

Tests reach it only through nginx (`fleet.url`, `fleet.ws_url`), as users do; they use
`fleet.ctl/kill/restart` to stop and crash single processes.
"""

from __future__ import annotations

import os
import shutil

import pytest
from browser import CHROMIUM_ARGS, chromium_path
from fleetenv import E2E_ENV, tracebacks
from wsclient import token

from launcher import Fleet, free_port


@pytest.fixture(scope="session")
def fleet(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("fleet")
    # FAILPOINTS_DIR: the fault campaign arms failpoints there (switchboard/failpoints.py).
    env = {**E2E_ENV, "FAILPOINTS_DIR": str(run_dir / "failpoints")}
    fleet = Fleet(run_dir=run_dir, gateway_port=free_port(), gateway_processes=2, env=env)
    try:
        fleet.start(wait=120)
    except BaseException:  # pytest-timeout's failure too: never leave a fleet behind
        fleet.stop()
        for log in sorted((run_dir / "logs").glob("*.log")):
            print(f"---- {log.name}\n{log.read_text()[-3000:]}")
        raise
    yield fleet
    fleet.stop()
    found = tracebacks(run_dir / "logs")
    if not os.environ.get("KEEP_FLEET") and not found:  # KEEP_FLEET=1 keeps logs for a post-mortem
        shutil.rmtree(run_dir, ignore_errors=True)
    # A crash a test did not notice (a consumer that died, a task that raised) is
    # still a failure of the run: every traceback in a fleet log fails it.
    assert not found, f"{len(found)} traceback(s) in the fleet's logs ({run_dir / 'logs'}):\n" + "\n".join(found[:10])


@pytest.fixture(scope="session")
def tokens(fleet):
    return {name: token(fleet.url, name) for name in ("alice", "bob", "admin")}


@pytest.fixture
async def browser():
    """Debian's Chromium under Playwright (no browser downloads work here)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()
