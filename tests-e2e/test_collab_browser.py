"""Two people in two browsers (Chromium contexts, each logged in) type into the same
document on the editor page: both end with the same text, each sees the other's
cursor with their name, and the server holds that text too."""

from __future__ import annotations

import httpx
import pytest
from browser import CHROMIUM_ARGS, chromium_path
from collabhelpers import new_document, server_document
from playwright.async_api import async_playwright, expect


async def login(browser, fleet, username: str, path: str):
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{fleet.url}/login/?next={path}")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", "switchboard")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{fleet.url}{path}")
    await expect(page.locator("#status")).to_have_text("live", timeout=20_000)
    await expect(page.locator("#editor")).to_have_attribute("data-synced", "1", timeout=20_000)
    return page


@pytest.mark.timeout(180)
async def test_two_browsers_type_into_one_document_and_see_each_others_cursor(fleet, tokens):
    doc_id = new_document(fleet, tokens, "Hello\n", {"bob": "edit"})
    path = f"/collab/{doc_id}/"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            alice = await login(browser, fleet, "alice", path)
            bob = await login(browser, fleet, "bob", path)
            alice_editor, bob_editor = alice.locator(".cm-content"), bob.locator(".cm-content")
            await expect(alice_editor).to_have_text("Hello", timeout=30_000)

            await alice_editor.click()
            await alice.keyboard.press("Control+End")
            await alice.keyboard.type("from alice. ", delay=20)
            await bob_editor.click()
            await bob.keyboard.press("Control+Home")
            await bob.keyboard.type("bob was here. ", delay=20)
            # And at once, into the same line.
            await alice.keyboard.type("again", delay=15)

            expected = "bob was here. Hello\nfrom alice. again"
            for page in (alice, bob):
                await page.wait_for_function(
                    "expected => window.collab.ytext.toString() === expected", arg=expected, timeout=30_000
                )
            # Each sees the other's caret, labelled with their name, and who is here.
            await expect(alice.locator(".cm-ySelectionInfo", has_text="bob")).to_have_count(1, timeout=30_000)
            await expect(bob.locator(".cm-ySelectionInfo", has_text="alice")).to_have_count(1, timeout=30_000)
            await expect(alice.locator("#present li")).to_have_text(["alice", "bob"], timeout=30_000)
            assert server_document(fleet, tokens, doc_id)["content"] == expected

            # The documents page lists it and leads back to the editor.
            await bob.goto(f"{fleet.url}/collab/")
            await bob.locator(f"a[href='/collab/{doc_id}/']").click()
            await expect(bob.locator(".cm-content")).to_contain_text("bob was here.", timeout=30_000)
        finally:
            await browser.close()


@pytest.mark.timeout(120)
async def test_read_only_user_gets_a_read_only_editor(fleet, tokens):
    doc_id = new_document(fleet, tokens, "look, do not touch", {"bob": "read"})
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            bob = await login(browser, fleet, "bob", f"/collab/{doc_id}/")
            await expect(bob.locator("#doc-role")).to_have_text("read only")
            await bob.locator(".cm-content").click()
            await bob.keyboard.type("nope")
            await bob.wait_for_timeout(500)
            assert await bob.evaluate("window.collab.ytext.toString()") == "look, do not touch"
            assert server_document(fleet, tokens, doc_id)["content"] == "look, do not touch"
        finally:
            await browser.close()


@pytest.mark.timeout(120)
async def test_a_revoked_user_sees_the_editor_closed_and_it_does_not_reconnect(fleet, tokens):
    """The editor page follows the one close-code table (closecodes.py, through
    clients/js): 4403 after a revoke is terminal, the page says so and opens no socket
    again. y-websocket's own rule only said "disconnected", whatever the code."""
    doc_id = new_document(fleet, tokens, "for a while", {"bob": "edit"})
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            bob = await login(browser, fleet, "bob", f"/collab/{doc_id}/")
            res = httpx.post(
                f"{fleet.url}/api/collab/documents/{doc_id}/share/",
                json={"username": "bob", "role": "none"},
                headers={"Authorization": f"Bearer {tokens['alice']}"},
                timeout=15,
            )
            assert res.status_code == 200, res.text
            try:
                await expect(bob.locator("#status")).to_have_text("closed (4403)", timeout=30_000)
            except AssertionError as exc:
                closes = await bob.evaluate("window.collab.closes")
                raise AssertionError(f"the page saw these closes: {closes}") from exc
            assert await bob.evaluate("window.collab.closes") == [4403]
            assert await bob.evaluate("window.collab.provider.shouldConnect") is False
            assert await bob.evaluate("window.collab.provider.ws") is None
        finally:
            await browser.close()
