"""The fleet for end-to-end tests: booted once per session by the same launcher as
`make run`, on free ports, with its own Redis, behind a real nginx.

Tests reach it only through nginx (`fleet.url`, `fleet.ws_url`), as users do; they use
`fleet.ctl/kill/restart` to stop and crash single processes.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest
from browser import CHROMIUM_ARGS, chromium_path
from fleetenv import E2E_ENV, tracebacks
from wsclient import token

from launcher import Fleet, free_port


@pytest.fixture(scope="session")
def fleet(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("fleet")
    # Shop tokens (the `shop` fixture): an HS256 key made for this run, and a JWKS file the
    # tests add their own key pairs to (every process re-reads it when it changes).
    jwks = run_dir / "shop-jwks.json"
    jwks.write_text('{"keys": []}')
    # FAILPOINTS_DIR: the fault campaign arms failpoints there (switchboard/failpoints.py).
    # The example shop (test_example_shop.py) serves its pages on a port of its own: its
    # origin is allowed to open sockets, as a real shop's site would be.
    gateway_port, example_shop_port = free_port(), free_port()
    env = {
        **E2E_ENV,
        "FAILPOINTS_DIR": str(run_dir / "failpoints"),
        "SHOP_JWT_KEYS": f"e2e-shop:{secrets.token_urlsafe(32)}",
        "SHOP_JWKS": str(jwks),
        "ALLOWED_ORIGINS": ",".join(
            f"http://{host}:{port}" for port in (gateway_port, example_shop_port) for host in ("127.0.0.1", "localhost")
        ),
    }
    fleet = Fleet(run_dir=run_dir, gateway_port=gateway_port, ws_gateway_processes=2, env=env)
    fleet.example_shop_port = example_shop_port
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


class Shop:
    """The shop's back end of this fleet: mints tokens for its own users (HS256 with the
    fleet's SHOP_JWT_KEYS, or RS256/ES256 with key pairs published in its JWKS file)."""

    def __init__(self, fleet):
        from switchboard.config import parse_keyring

        self.kid, self.secret = next(iter(parse_keyring(fleet.setting("SHOP_JWT_KEYS")).items()))
        self.jwks = Path(fleet.setting("SHOP_JWKS"))
        self.published: list = []

    def hs256(self, sub: str, name: str, staff: bool = False, ttl: float = 600) -> str:
        from switchboard.shoptesting import mint_hs256

        return mint_hs256(self.kid, self.secret, sub=sub, name=name, staff=staff, ttl=ttl)

    def publish(self, key) -> None:
        """Add a ShopKey to the JWKS file (keys of earlier tests stay)."""
        from switchboard.shoptesting import write_jwks

        self.published.append(key)
        write_jwks(self.jwks, *self.published)


@pytest.fixture(scope="session")
def shop(fleet):
    return Shop(fleet)


@pytest.fixture
async def browser():
    """Debian's Chromium under Playwright (no browser downloads work here)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()
