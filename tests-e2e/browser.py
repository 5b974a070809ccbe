"""Playwright in Debian's Chromium: the flags this machine's closed network needs,
and a logged-in page helper shared by the browser tests."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium not found: run `make deps` (installs Debian's chromium)")
    return path


async def login(browser, base_url: str, username: str, password: str = "switchboard"):
    context = await browser.new_context(base_url=base_url)
    page = await context.new_page()
    await page.goto("/login/")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(base_url + "/")
    return page
